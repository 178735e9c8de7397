import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNginxEdge, freePort, type NginxEdge } from './support/nginx-edge.js';
import { qcatNodeArgs } from './support/qcat-build.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { describeNeeding, toolPath } from './support/tools.js';

/**
 * ops/rolling-upgrade.sh on native processes: two real `qcat serve` behind the real nginx of
 * ops/nginx, under a steady load of requests through nginx, each replaced in turn by a new
 * process. The script is the one operators run; only its platform file differs from
 * ops/upgrade/compose.sh (processes instead of containers, a file instead of Docker's DNS).
 */

const root = new URL('..', import.meta.url).pathname;

/** The native platform: replicas are `qcat serve` processes, nginx is this test's. */
const platform = (dir: string, edge: NginxEdge, databaseUrl: string): string => `
# shellcheck shell=bash
STATE=${JSON.stringify(dir)}
list_replicas() { cat "$STATE/replicas"; }
start_replica() {
  local port
  port="$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")"
  if [ -n "\${QCAT_TEST_BROKEN_REPLICA:-}" ]; then
    # A new version that never gets ready.
    node -e 'setInterval(() => {}, 1000)' >"$STATE/replica-$port.log" 2>&1 &
  else
    (cd ${JSON.stringify(root)} && exec env PORT="$port" HOST=127.0.0.1 DATABASE_POOL_MAX=5 DATABASE_URL=${JSON.stringify(databaseUrl)} \\
      PAPER_TRADING=off RATE_LIMIT_PER_MINUTE=1000000 LOG_LEVEL=warn REDIS_URL= \\
      node ${qcatNodeArgs('serve')
        .map((arg) => JSON.stringify(arg))
        .join(' ')}) >"$STATE/replica-$port.log" 2>&1 &
  fi
  echo "$!" >>"$STATE/started"
  echo "$! 127.0.0.1:$port" >>"$STATE/all"
  echo "$! 127.0.0.1:$port"
}
replica_ready() { curl -fsS -o /dev/null "http://$2/health/ready"; }
stop_replica() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1"
}
write_upstream() {
  local address servers=""
  for address in "$@"; do servers="$servers    server $address max_fails=3 fail_timeout=10s;\\n"; done
  printf 'upstream qcat {\\n    least_conn;\\n%b    keepalive 32;\\n}\\n' "$servers" >${JSON.stringify(join(edge.prefix, 'upstream/qcat.conf'))}
  # What a later upgrade finds serving.
  : >"$STATE/replicas.next"
  for address in "$@"; do grep -F " $address" "$STATE/all" | tail -1 >>"$STATE/replicas.next"; done
  mv "$STATE/replicas.next" "$STATE/replicas"
}
reload_nginx() { ${JSON.stringify(toolPath('nginx'))} ${edge.args.map((a) => JSON.stringify(a)).join(' ')} -s reload; }
finish_upstream() { :; }
`;

interface Load {
  ok: number;
  failed: string[];
  stop(): Promise<void>;
}

/** `workers` loops of GET requests through nginx, each on a new connection, until stopped. */
function steadyLoad(edge: NginxEdge, workers: number): Load {
  const load: Load = { ok: 0, failed: [], stop: async () => undefined };
  let running = true;
  const once = (path: string) =>
    new Promise<void>((resolve) => {
      const url = new URL(path, edge.https);
      const outgoing = request(
        {
          hostname: url.hostname,
          port: url.port,
          path: url.pathname,
          agent: false,
          ca: edge.certificate,
          servername: 'localhost',
          timeout: 30_000,
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status === 200) load.ok++;
            else load.failed.push(`${path}: ${status}`);
            resolve();
          });
        },
      );
      outgoing.on('error', (error) => {
        load.failed.push(`${path}: ${error.message}`);
        resolve();
      });
      outgoing.end();
    });
  // Paced under nginx's per-client limit (50 requests/s, ops/nginx/conf.d/qcat.conf): every
  // request comes from 127.0.0.1, and a 429 from the limit is not what this test is about.
  const loops = Array.from({ length: workers }, async (_, n) => {
    while (running) {
      await once(n % 2 === 0 ? '/health/ready' : '/health/live');
      await new Promise((resolve) => setTimeout(resolve, (workers * 1000) / 40));
    }
  });
  load.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return load;
}

function runUpgrade(
  platformFile: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'bash',
      [join(root, 'ops/rolling-upgrade.sh'), '--platform', platformFile],
      {
        env: { ...process.env, QCAT_UPGRADE_DRAIN_SECONDS: '2', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => {
      resolve({ code, output });
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const upstreamPorts = (edge: NginxEdge): string[] =>
  [
    ...readFileSync(join(edge.prefix, 'upstream/qcat.conf'), 'utf8').matchAll(
      /server 127\.0\.0\.1:(\d+)/g,
    ),
  ]
    .map((match) => match[1] ?? '')
    .sort();

describeNeeding(['nginx', 'openssl', 'curl'], 'rolling upgrade behind nginx', () => {
  let database: TestDatabase | undefined;
  let started: NginxEdge | undefined;
  const edgeOf = (): NginxEdge => {
    if (!started) throw new Error('beforeAll did not finish');
    return started;
  };
  const first: QcatProcess[] = [];
  const firstPorts: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'qcat-rolling-'));
  let platformFile = '';

  beforeAll(async () => {
    database = await createTestDatabase('rolling');
    const url = database.url;
    mkdirSync(join(dir, 'state'));
    for (let n = 0; n < 2; n++) {
      const port = String(await freePort());
      first.push(
        await startQcat(
          {
            DATABASE_URL: url,
            PORT: port,
            PAPER_TRADING: 'off',
            RATE_LIMIT_PER_MINUTE: '1000000',
            REDIS_URL: '',
          },
          120_000,
        ),
      );
      firstPorts.push(port);
    }
    mkdirSync(join(dir, 'nginx'));
    const edge = await startNginxEdge(
      join(dir, 'nginx'),
      firstPorts.map((port) => `127.0.0.1:${port}`),
    );
    const serving = first.map((p, n) => `${p.pid} 127.0.0.1:${firstPorts[n] ?? ''}\n`).join('');
    writeFileSync(join(dir, 'state/replicas'), serving);
    writeFileSync(join(dir, 'state/all'), serving);
    writeFileSync(join(dir, 'state/started'), '');
    platformFile = join(dir, 'native.sh');
    writeFileSync(platformFile, platform(join(dir, 'state'), edge, url));
    started = edge;
  }, 300_000);

  afterAll(async () => {
    // Every process this file started, whatever failed: they hold connections to the server.
    for (const process of first) if (alive(process.pid)) await process.crash();
    let startedPids = '';
    try {
      startedPids = readFileSync(join(dir, 'state/started'), 'utf8');
    } catch {
      // beforeAll stopped before the upgrades: no replica of theirs
    }
    for (const line of startedPids.split('\n')) {
      const pid = Number(line);
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await started?.stop();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces every replica, one at a time, and no request under load fails', async () => {
    const edge = edgeOf();
    const load = steadyLoad(edge, 4);
    const upgrade = await runUpgrade(platformFile);
    await load.stop();
    console.log(
      `rolling upgrade: ${load.ok} requests through nginx while 2 replicas were replaced, ${load.failed.length} failed`,
      [...new Set(load.failed)].slice(0, 5),
    );
    const logs = readdirSync(join(dir, 'state'))
      .filter((name) => name.startsWith('replica-'))
      .map((name) => `${name}:\n${readFileSync(join(dir, 'state', name), 'utf8').slice(-2000)}`)
      .join('\n');
    expect(upgrade.output, logs).toContain('done: 2 replica(s) upgraded, one at a time');
    expect(upgrade.code).toBe(0);
    expect(load.failed).toEqual([]);
    expect(load.ok).toBeGreaterThan(100);
    // Both old processes are gone; nginx sends to two new ones.
    for (const process of first) expect(alive(process.pid)).toBe(false);
    const now = upstreamPorts(edge);
    expect(now).toHaveLength(2);
    for (const port of firstPorts) expect(now).not.toContain(port);
    // One at a time: the log says each replacement started only after the previous one ended.
    const order = upgrade.output
      .split('\n')
      .filter((line) => /started \d+|replaced \d+/.test(line))
      .map((line) => (line.includes('started') ? 'start' : 'replaced'));
    expect(order).toEqual(['start', 'replaced', 'start', 'replaced']);
    // Requests reached the old and the new replicas.
    const served = new Set(
      [...readFileSync(edge.accessLog, 'utf8').matchAll(/"upstream":"127\.0\.0\.1:(\d+)/g)].map(
        (match) => match[1],
      ),
    );
    for (const port of [...firstPorts, ...now]) expect(served).toContain(port);
  }, 600_000);

  it('rolls back when the new replica is not ready, and keeps serving', async () => {
    const edge = edgeOf();
    const before = upstreamPorts(edge);
    const load = steadyLoad(edge, 2);
    const upgrade = await runUpgrade(platformFile, {
      QCAT_TEST_BROKEN_REPLICA: '1',
      QCAT_UPGRADE_READY_TIMEOUT: '5',
    });
    await load.stop();
    expect(upgrade.code).toBe(1);
    expect(upgrade.output).toContain('rolled back');
    expect(upstreamPorts(edge)).toEqual(before);
    expect(load.failed).toEqual([]);
    expect(load.ok).toBeGreaterThan(10);
    const broken = Number(
      readFileSync(join(dir, 'state/started'), 'utf8').trim().split('\n').at(-1),
    );
    expect(alive(broken)).toBe(false);
  }, 300_000);
});
