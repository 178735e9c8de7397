import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';

const root = new URL('..', import.meta.url).pathname;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
  });

interface Started {
  child: ChildProcess;
  output: () => string;
}

/** `qcat serve` as `npm start` runs it, with no DATABASE_URL: the embedded default. */
async function serve(dataDir: string, port: number): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'ops/cli.ts', 'serve'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: '',
      QCAT_DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  while (!output.includes('Server listening')) {
    if (child.exitCode !== null)
      throw new Error(`qcat serve exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`qcat serve did not start in 90 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, output: () => output };
}

async function stop(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once('exit', resolve));
  started.child.kill('SIGTERM');
  return exited;
}

describe('npm start without DATABASE_URL (embedded PostgreSQL)', () => {
  const parent = mkdtempSync(join(tmpdir(), 'qcat-e2e-'));
  chmodSync(parent, 0o711); // the embedded server's postgres user must pass through
  const dataDir = join(parent, 'data');
  afterAll(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('starts a real PostgreSQL, serves /health, keeps the log across a restart and stops cleanly', async () => {
    const port = await freePort();
    const first = await serve(dataDir, port);
    try {
      expect(first.output()).toContain('DATABASE_URL is not set; starting the embedded server');
      expect(first.output()).toContain('Redis: REDIS_URL is not set');
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(await health.json()).toMatchObject({ status: 'ok', headPosition: '0' });

      // Write one event straight into the embedded server (its port is in the log, its password beside it).
      const pgPort = /127\.0\.0\.1:(\d+)\/qcat/.exec(first.output())?.[1];
      expect(pgPort).toBeDefined();
      const password = readFileSync(join(dataDir, 'postgres-password'), 'utf8').trim();
      const store = await PostgresEventStore.connect({
        connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/qcat`,
      });
      await store.appendToStream(`e2e-${randomUUID()}`, [
        { type: 'Probe', data: {}, metadata: { actor: 'e2e' } },
      ]);
      await store.close();
      expect(first.output()).not.toContain(password);
    } finally {
      expect(await stop(first)).toBe(0);
    }

    if (process.getuid?.() === 0) {
      // As root the cluster runs as the postgres user, which must own it.
      expect(statSync(join(dataDir, 'postgres')).uid).not.toBe(0);
    }

    const second = await serve(dataDir, port);
    try {
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(await health.json()).toMatchObject({ status: 'ok', headPosition: '1' });
    } finally {
      expect(await stop(second)).toBe(0);
    }
  }, 240_000);
});
