import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { qcatNodeArgs } from './qcat-build.js';

const root = new URL('../..', import.meta.url).pathname;

const run = randomBytes(4).toString('hex');

/**
 * The Redis key prefix of this spec file's processes unless the spec names one: files run in
 * parallel, and a process that inherits REDIS_URL must not share `qcat:` with another file's.
 * Per file, not per module: a worker runs its files one after another with their modules shared
 * (vitest.config.ts, `isolate: false`), and a file's processes must not find the Redis views of
 * the file before it.
 */
const redisPrefix = (): string =>
  `qcat-test:process:${run}:${createHash('sha256')
    .update(expect.getState().testPath ?? '')
    .digest('hex')
    .slice(0, 12)}:`;

export interface QcatProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** kill -9: no shutdown code runs. */
  crash(): Promise<void>;
  /** SIGTERM; answers the exit code. */
  stop(): Promise<number | null>;
}

/** `qcat serve` as a real child process (the run's build of the sources); resolves once it listens. */
export async function startQcat(
  env: Record<string, string>,
  timeoutMs = 90_000,
  args: readonly string[] = [],
): Promise<QcatProcess> {
  const child = spawn(process.execPath, qcatNodeArgs('serve', ...args), {
    cwd: root,
    env: {
      ...process.env,
      PORT: '0',
      LOG_LEVEL: 'info',
      QCAT_REDIS_PREFIX: redisPrefix(),
      // Three spec files run at once against one server's 100 connections (ADR 020).
      DATABASE_POOL_MAX: '5',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
  const deadline = Date.now() + timeoutMs;
  while (!output.includes('Server listening')) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`qcat serve exited:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`qcat serve did not start in ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    child,
    pid: child.pid ?? 0,
    output: () => output,
    crash: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
