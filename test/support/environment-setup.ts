import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { findTool, installHint, strict, TOOLS, type Need, type ToolName } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis specs may use (their own key prefixes): REDIS_URL or a throw-away one; '' if none. */
    testRedisUrl: string;
  }
}

/**
 * The integration tier's one setup step, run by `npm test` itself so that it works on a fresh
 * machine: installs the Debian packages of missing tools when it can (root, apt-get, and
 * QCAT_TEST_INSTALL is not `no`), starts a throw-away Redis when REDIS_URL is unset, and says what
 * is still missing (those specs skip, naming it; in CI they fail).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redisGiven =
    process.env['TEST_REDIS_URL']?.trim() || process.env['REDIS_URL']?.trim() || undefined;
  installMissingPackages(redisGiven ? [] : ['redis-server']);
  let redis: ThrowAwayRedis | undefined;
  if (!redisGiven && findTool('redis-server')) redis = await startRedis();
  project.provide('testRedisUrl', redisGiven ?? redis?.url ?? '');

  const missing: Need[] = (Object.keys(TOOLS) as ToolName[]).filter((name) => !findTool(name));
  if (!redisGiven && !redis) missing.push('redis');
  if (missing.length > 0) {
    console.warn(
      `test setup: missing ${missing.join(', ')}; the tests that need them are ${
        strict() ? 'FAILURES (CI=true)' : 'skipped'
      }. To run them: ${installHint(missing)}`,
    );
  }
  return async () => {
    await redis?.stop();
  };
}

/** apt-get, once, for the packages of the tools not installed; only as root and when asked. */
function installMissingPackages(alsoWanted: ToolName[]): void {
  const wanted: ToolName[] = [
    'promtool',
    'amtool',
    'alertmanager',
    'nginx',
    'docker-compose',
    'psql',
    'openssl',
    'chromium',
    'curl',
    'jq',
    ...alsoWanted,
  ];
  const packages = [
    ...new Set(wanted.filter((name) => !findTool(name)).map((name) => TOOLS[name].debianPackage)),
  ];
  if (packages.length === 0) return;
  const why = `missing Debian packages: ${packages.join(' ')}`;
  if (process.env['QCAT_TEST_INSTALL'] === 'no') {
    console.warn(`test setup: ${why}; not installing them (QCAT_TEST_INSTALL=no)`);
    return;
  }
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
    console.warn(`test setup: ${why}; installing needs root and apt-get`);
    return;
  }
  console.warn(`test setup: ${why}; installing them with apt-get (QCAT_TEST_INSTALL=no to skip)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install =
    update.status === 0
      ? spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
          stdio: 'inherit',
          env,
        })
      : update;
  if (install.status !== 0) console.warn('test setup: apt-get failed; going on without them');
}

interface ThrowAwayRedis {
  url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** redis-server on a free local port, nothing persisted; stopped by the teardown (or our exit). */
async function startRedis(): Promise<ThrowAwayRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    findTool('redis-server') ?? 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => undefined); // not up yet: connect() says so
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      break;
    } catch (error) {
      client.disconnect();
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the throw-away redis-server on port ${port} did not start`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  console.warn(`test setup: REDIS_URL is unset; started a throw-away Redis at ${url}`);
  return {
    url,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
