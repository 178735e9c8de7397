/**
 * HTTP read path: the real QCAT server (`qcat serve`) answering `GET /api/v1/audit/events?limit=50`
 * from the PostgreSQL audit-trail read model, against a bare Fastify 5 app (no plugins) whose one
 * route returns a constant JSON object, measured in one run with the same autocannon settings.
 * The bare app also serves QCAT's answer as constant bytes (`/same`, a reference only): what
 * writing an answer of that size costs by itself.
 *
 *   npm run bench:api
 *   npm run bench:api -- --events=100000 --connections=50 --seconds=10 --warmup-seconds=3 \
 *       --rounds=2 --limit=50 --log-level=warn --redis=off --floor=on --uncached=on \
 *       --writes-per-second=0
 *
 * Process layout: each server runs in its own child process, forked the same way (node with this
 * run's tsx loader): QCAT as `ops/cli.ts serve`, exactly what `qcat serve` runs, configured through
 * its environment; the bare app as this file with `--serve=bare`. A third server, the floor
 * (`--serve=floor`, on unless `--floor=off`), is a reference only, not part of the targets: bare
 * Fastify routes that run (a) the read route's SELECT through pg and return the same JSON, and
 * (b) `SELECT 1`, so what one PostgreSQL round trip and the rows cost on this machine is told
 * apart from what QCAT adds. autocannon, the
 * load generator, runs in this process's main thread, so it never shares a thread with a server
 * under test (the machine's CPUs are still shared: PostgreSQL, the children and autocannon). All servers are up
 * for the whole measurement; the idle ones only wait. Their logs go to files, not through this
 * process.
 *
 * QCAT's database: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL; one
 * fresh database, dropped at the end. `--events` events are appended through QCAT's own
 * appendToStream (several categories, types and actors, as the command handler writes them), then
 * one `auditor` API key is issued through the command handler (an event, like `qcat keys create`).
 * The server's projections build the audit trail from position 0; measuring starts only once every
 * projection has reached the head (checked in `qcat_projections` and through
 * `GET /api/v1/projections`), after VACUUM ANALYZE and CHECKPOINT.
 *
 * The full request path of the read route is measured, as deployed: authentication (bearer API
 * key), the rate limit (RATE_LIMIT_PER_MINUTE raised to 1,000,000,000: every request comes from
 * 127.0.0.1), query validation, and the read-model answer cache (ADR 009, on by default): the
 * first request runs the SQL and serialises, the next ones are served from the cache while the
 * audit trail does not change (nothing writes during the measurement; every append would make
 * the next request a miss). How many were hits is printed (the server's own
 * http_read_cache_lookups_total). A second QCAT process on the same database with the cache off
 * (READ_CACHE_MB=0, `--uncached=off` leaves it out) is measured as a reference: every request
 * runs the SQL and the serialisation, so the cost of the path without the cache is told too.
 * `--writes-per-second=N` appends N events a second to the log while the QCAT servers are loaded
 * (off by default): each batch the audit trail projects empties its cached answers, so the hit
 * rate and the throughput of a read model that keeps changing are measured. LOG_LEVEL is `warn` unless `--log-level` says
 * otherwise (at `info` Fastify writes two log lines per request). Redis is off unless
 * `--redis=on` (then REDIS_URL, else redis://127.0.0.1:6379, with a prefix of its own that is
 * deleted at the end): without Redis the rate limit is counted in the process, as in the
 * single-process deployment.
 *
 * Each round runs, for each server in turn, a warm-up of `--warmup-seconds` (discarded) and then
 * `--seconds` measured, with `--connections` connections and no pipelining. Latency is taken per
 * response at the load generator (sub-millisecond; autocannon's own histogram has 1 ms steps).
 * Targets (issue #4): read req/s ≥ 40% of bare req/s, read p99 < 10 ms. Any non-2xx answer or
 * request error, warm-up included, makes the run invalid: it is reported loudly and the exit code
 * is 1. The last line of output is one JSON object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ApiKeyService } from '../api/auth/api-key-service.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { toError } from '../core/errors.js';
import type { NewEvent } from '../core/eventstore/event-store.js';
import { allProjections } from '../projections/registry.js';
import {
  LatencySamples,
  checkpoint,
  cleanup,
  createDatabase,
  describeServer,
  execute,
  formatInt,
  formatMs,
  formatPercent,
  now,
  numberOption,
  onCleanup,
  option,
  orderPlaced,
  printTable,
  round,
  seedThroughStore,
  serverInfo,
  startServer,
  type Seeding,
} from './support.js';

const TARGET_RATIO = 0.4;
const TARGET_P99_MS = 10;
const RATE_LIMIT_PER_MINUTE = 1_000_000_000;
const ROOT = join(dirname(import.meta.filename), '..');

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

// ---------------------------------------------------------------------------------------------
// Child modes. The bare app: Fastify 5, no plugins, no logger, one route returning a constant.

async function listenUntilStopped(app: FastifyInstance, onStop = async () => {}): Promise<void> {
  await app.listen({ port: Number(process.env['PORT']), host: '127.0.0.1' });
  const stop = (): void => {
    void app
      .close()
      .then(onStop)
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function serveBare(): Promise<void> {
  const app = Fastify();
  app.get('/', async () => ({ hello: 'world' }));
  // QCAT's answer, as bytes read once: the same size on the wire, none of the work.
  const same = readFileSync(process.env['BODY_FILE'] ?? '');
  app.get('/same', (_request, reply) => {
    void reply.type('application/json; charset=utf-8').send(same);
  });
  await listenUntilStopped(app);
}

/**
 * The floor (reference only): what the read route costs with nothing but its SQL and its JSON. The
 * same SELECT as api/routes/audit.ts without filters, through a pg pool of 10 like QCAT's, the same
 * mapping, Fastify's default serialiser; no auth, rate limit, validation, hooks or zod. And one
 * round trip alone: `SELECT 1`.
 */
async function serveFloor(): Promise<void> {
  const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });
  pool.on('error', () => undefined);
  const app = Fastify();
  const limit = Number(process.env['LIMIT']);
  app.get('/audit', async () => {
    const { rows } = await pool.query<AuditRow>(
      `SELECT position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id
         FROM qcat_read.audit_trail ORDER BY position LIMIT $1`,
      [limit + 1],
    );
    const page = rows.slice(0, limit);
    return {
      events: page.map((row) => ({
        position: row.position,
        recordedAt: row.recorded_at.toISOString(),
        streamId: row.stream_id,
        category: row.category,
        revision: row.revision,
        type: row.type,
        eventId: row.event_id,
        actor: row.actor,
        correlationId: row.correlation_id,
        causationId: row.causation_id,
      })),
      nextCursor: rows.length > limit ? (page.at(-1)?.position ?? null) : null,
    };
  });
  app.get('/select1', async () => (await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]);
  await listenUntilStopped(app, () => pool.end());
}

interface AuditRow {
  position: string;
  recorded_at: Date;
  stream_id: string;
  category: string;
  revision: string;
  type: string;
  event_id: string;
  actor: string;
  correlation_id: string | null;
  causation_id: string | null;
}

// ---------------------------------------------------------------------------------------------
// Child processes: forked alike, logs to a file, CPU time read from /proc.

interface Child {
  label: string;
  url: string;
  process: ChildProcess;
  /** user + system CPU seconds so far (Linux /proc), or null elsewhere. */
  cpuSeconds(): number | null;
  stop(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux (`getconf CLK_TCK`)

function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is 3rd overall, utime 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

let logFolder: string | undefined;
/** Where the servers' logs go: a temporary folder, removed by `cleanup()`. */
function logDir(): string {
  if (logFolder === undefined) {
    const folder = mkdtempSync(join(tmpdir(), 'qcat-bench-api-'));
    onCleanup(() => {
      rmSync(folder, { recursive: true, force: true });
      return Promise.resolve();
    });
    logFolder = folder;
  }
  return logFolder;
}

const tail = (file: string, lines = 40): string =>
  readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');

/** Forks `module` with `args`, waits until `readyPath` answers 200 (at most 60 s). */
async function startChild(
  label: string,
  module: string,
  args: string[],
  env: Record<string, string>,
  readyPath: string,
): Promise<Child> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(logDir(), `${label}.log`);
  const log = openSync(logFile, 'a');
  const child = fork(module, args, {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', log, log, 'ipc'],
  });
  closeSync(log);
  const state: { exited: string | null } = { exited: null };
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      state.exited = `exit code ${String(code)}, signal ${String(signal)}`;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (state.exited !== null) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([exit.then(() => false), sleep(15_000).then(() => true)]);
    if (killed) child.kill('SIGKILL');
  };
  onCleanup(stop);
  const deadline = now() + 60_000;
  for (;;) {
    if (state.exited !== null) {
      throw new Error(
        `${label} server stopped (${state.exited}) before it answered:\n${tail(logFile)}`,
      );
    }
    const ok = await fetch(`${url}${readyPath}`).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) break;
    if (now() > deadline) throw new Error(`${label} server did not answer within 60 s`);
    await sleep(100);
  }
  return { label, url, process: child, cpuSeconds: () => processCpuSeconds(child.pid), stop };
}

// ---------------------------------------------------------------------------------------------
// Whole-machine CPU from /proc/stat (Linux).

interface CpuTicks {
  busy: number;
  total: number;
}

function machineTicks(): CpuTicks | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding through QCAT: what the command handler writes (actor, correlation and causation ids,
// schema version), several categories, types and actors. The categories are the bench's own: the
// audit trail records every event, and no domain projection (strategies, approvals, ...) takes
// these for its own events and stops on them.

const CATEGORIES = ['benchorder', 'benchfill', 'benchrisk', 'benchaccount'] as const;
const TYPES = ['OrderPlaced', 'OrderAccepted', 'OrderFilled', 'OrderCancelled'] as const;

const seed = (store: PostgresEventStore, total: number): Promise<Seeding> =>
  seedThroughStore(
    store,
    { total, callers: 4, eventsPerAppend: 250, streams: 1000 },
    (index, count, caller) => {
      const command = randomUUID();
      const metadata = {
        actor: `user-${index % 25}`,
        correlationId: command,
        causationId: command,
        schemaVersion: 1,
      };
      return {
        streamId: `${CATEGORIES[index % CATEGORIES.length]!}-seed_${index % 1000}`,
        events: Array.from({ length: count }, (_, i): NewEvent => {
          const sequence = index * 250 + i;
          return {
            type: TYPES[sequence % TYPES.length]!,
            data: orderPlaced(caller, sequence),
            metadata,
          };
        }),
      };
    },
  );

// ---------------------------------------------------------------------------------------------
// Load.

interface Settings {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
}

interface Target {
  label: string;
  child: Child;
  path: string;
  headers: Record<string, string>;
}

interface Tally {
  responses: number;
  seconds: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latency: LatencySamples;
  /** Worst p99 of autocannon's own histogram over the measured runs (1 ms steps). */
  autocannonP99Ms: number;
  perRound: number[];
  serverCpuSeconds: number;
  generatorCpuSeconds: number;
  machineBusyTicks: number;
  machineTotalTicks: number;
}

const newTally = (): Tally => ({
  responses: 0,
  seconds: 0,
  non2xx: 0,
  errors: 0,
  timeouts: 0,
  statusCodes: {},
  latency: new LatencySamples(),
  autocannonP99Ms: 0,
  perRound: [],
  serverCpuSeconds: 0,
  generatorCpuSeconds: 0,
  machineBusyTicks: 0,
  machineTotalTicks: 0,
});

/** Bad answers of any run, warm-ups included: one is enough to make the whole run invalid. */
interface Failures {
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
}

function fire(
  target: Target,
  connections: number,
  seconds: number,
  latency: LatencySamples | null,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${target.child.url}${target.path}`,
        connections,
        duration: seconds,
        pipelining: 1,
        headers: target.headers,
      },
      (error: unknown, result) => {
        if (error) reject(toError(error));
        else resolve(result);
      },
    );
    if (latency) {
      instance.on('response', (_client, _status, _bytes, responseTime) => {
        latency.add(responseTime);
      });
    }
  });
}

function noteFailures(failures: Failures, result: autocannon.Result): void {
  failures.non2xx += result.non2xx;
  failures.errors += result.errors;
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    if (code.startsWith('2')) continue;
    failures.statusCodes[code] = (failures.statusCodes[code] ?? 0) + (stats.count ?? 0);
  }
}

async function measure(
  target: Target,
  tally: Tally,
  settings: Settings,
  failures: Failures,
  round_: number,
): Promise<void> {
  const warmup = await fire(target, settings.connections, settings.warmupSeconds, null);
  noteFailures(failures, warmup);
  const serverCpu = target.child.cpuSeconds();
  const generatorCpu = process.cpuUsage();
  const ticks = machineTicks();
  const result = await fire(target, settings.connections, settings.seconds, tally.latency);
  const serverCpuAfter = target.child.cpuSeconds();
  const generatorUsed = process.cpuUsage(generatorCpu);
  const ticksAfter = machineTicks();
  noteFailures(failures, result);
  const responses = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  tally.responses += responses;
  tally.seconds += result.duration;
  tally.non2xx += result.non2xx;
  tally.errors += result.errors;
  tally.timeouts += result.timeouts;
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    tally.statusCodes[code] = (tally.statusCodes[code] ?? 0) + (stats.count ?? 0);
  }
  tally.autocannonP99Ms = Math.max(tally.autocannonP99Ms, result.latency.p99);
  tally.perRound.push(responses / result.duration);
  if (serverCpu !== null && serverCpuAfter !== null) {
    tally.serverCpuSeconds += serverCpuAfter - serverCpu;
  }
  tally.generatorCpuSeconds += (generatorUsed.user + generatorUsed.system) / 1e6;
  if (ticks && ticksAfter) {
    tally.machineBusyTicks += ticksAfter.busy - ticks.busy;
    tally.machineTotalTicks += ticksAfter.total - ticks.total;
  }
  const busy =
    ticks && ticksAfter && ticksAfter.total > ticks.total
      ? formatPercent((ticksAfter.busy - ticks.busy) / (ticksAfter.total - ticks.total))
      : 'n/a';
  const serverShare =
    serverCpu !== null && serverCpuAfter !== null
      ? formatPercent((serverCpuAfter - serverCpu) / result.duration)
      : 'n/a';
  console.log(
    `  round ${round_}, ${target.label}: ${formatInt(responses / result.duration)} req/s over ${result.duration.toFixed(1)} s, non-2xx ${result.non2xx + warmup.non2xx}, errors ${result.errors + warmup.errors} (warm-up ${settings.warmupSeconds} s included); server CPU ${serverShare} of a core, machine ${busy} busy`,
  );
}

interface Figures {
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  responses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  perRoundReqPerSec: number[];
  autocannonP99Ms: number;
  /** Share of one core. */
  serverCpu: number | null;
  generatorCpu: number;
  /** Share of all CPUs, every process. */
  machineBusy: number | null;
}

function figures(tally: Tally): Figures {
  const stats = tally.latency.stats();
  return {
    reqPerSec: tally.responses / tally.seconds,
    p50Ms: stats.p50Ms,
    p90Ms: stats.p90Ms,
    p99Ms: stats.p99Ms,
    maxMs: stats.maxMs,
    responses: tally.responses,
    non2xx: tally.non2xx,
    errors: tally.errors,
    timeouts: tally.timeouts,
    statusCodes: tally.statusCodes,
    perRoundReqPerSec: tally.perRound,
    autocannonP99Ms: tally.autocannonP99Ms,
    serverCpu: tally.serverCpuSeconds === 0 ? null : tally.serverCpuSeconds / tally.seconds,
    generatorCpu: tally.generatorCpuSeconds / tally.seconds,
    machineBusy:
      tally.machineTotalTicks === 0 ? null : tally.machineBusyTicks / tally.machineTotalTicks,
  };
}

const figuresJson = (f: Figures): Record<string, unknown> => ({
  reqPerSec: round(f.reqPerSec, 0),
  p50Ms: round(f.p50Ms, 3),
  p90Ms: round(f.p90Ms, 3),
  p99Ms: round(f.p99Ms, 3),
  maxMs: round(f.maxMs, 3),
  responses: f.responses,
  non2xx: f.non2xx,
  errors: f.errors,
  timeouts: f.timeouts,
  statusCodes: f.statusCodes,
  perRoundReqPerSec: f.perRoundReqPerSec.map((value) => round(value, 0)),
  autocannonP99MsWorstRound: f.autocannonP99Ms,
  serverCpu: f.serverCpu === null ? null : round(f.serverCpu, 3),
  generatorCpu: round(f.generatorCpu, 3),
  machineBusy: f.machineBusy === null ? null : round(f.machineBusy, 3),
});

// ---------------------------------------------------------------------------------------------

/** The cache's own counters, from the server's /metrics. */
async function readCacheLookups(
  url: string,
): Promise<{ hit: number; shared: number; miss: number; bypass: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (result: string): number =>
    Number(
      new RegExp(`^http_read_cache_lookups_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(
        text,
      )?.[1] ?? 0,
    );
  return {
    hit: value('hit'),
    shared: value('shared'),
    miss: value('miss'),
    bypass: value('bypass'),
  };
}

async function waitForProjections(
  databaseUrl: string,
  names: readonly string[],
  head: bigint,
): Promise<number> {
  const started = now();
  for (;;) {
    const rows = await execute<{ name: string; checkpoint: string; error: string | null }>(
      databaseUrl,
      'SELECT name, checkpoint::text AS checkpoint, error_message AS error FROM qcat_projections',
    ).catch(() => []);
    const failed = rows.filter((row) => row.error !== null && names.includes(row.name));
    if (failed.length > 0) {
      throw new Error(
        `projections stopped: ${failed.map((row) => `${row.name}: ${row.error ?? ''}`).join('; ')}`,
      );
    }
    const reached = names.every((name) => {
      const row = rows.find((candidate) => candidate.name === name);
      return row !== undefined && BigInt(row.checkpoint) >= head;
    });
    if (reached) return (now() - started) / 1000;
    if (now() - started > 300_000) {
      throw new Error(`projections did not reach position ${head} within 300 s`);
    }
    await sleep(100);
  }
}

async function main(): Promise<Record<string, unknown>> {
  const events = numberOption('events', 100_000);
  const limit = numberOption('limit', 50);
  const settings: Settings = {
    connections: numberOption('connections', 50),
    seconds: numberOption('seconds', 10),
    warmupSeconds: numberOption('warmup-seconds', 3),
    rounds: numberOption('rounds', 2),
  };
  const logLevel = option('log-level', 'warn');
  const redisChoice = option('redis', 'off');
  if (redisChoice !== 'on' && redisChoice !== 'off') throw new Error('--redis must be on or off');
  const redisUrl =
    redisChoice === 'on' ? process.env['REDIS_URL']?.trim() || 'redis://127.0.0.1:6379' : '';
  const redisPrefix = `qcat-bench-${randomBytes(3).toString('hex')}:`;
  const withFloor = option('floor', 'on') !== 'off';
  const withUncached = option('uncached', 'on') !== 'off';
  // 0 (the default) writes nothing; numberOption only takes positive numbers.
  const writesPerSecond =
    option('writes-per-second', '0') === '0' ? 0 : numberOption('writes-per-second', 1);

  const server = await startServer();
  const info = await serverInfo(server);
  const idle = machineTicks();
  await sleep(1000);
  const idleAfter = machineTicks();
  const busyBefore =
    idle && idleAfter && idleAfter.total > idle.total
      ? (idleAfter.busy - idle.busy) / (idleAfter.total - idle.total)
      : null;
  console.log(`bench:api — ${describeServer(server, info)}`);
  console.log(
    `  machine busy in the second before the run: ${busyBefore === null ? 'n/a' : formatPercent(busyBefore)} of all CPUs${busyBefore !== null && busyBefore > 0.2 ? ' — something else is running: expect disturbed figures' : ''}`,
  );

  // Seed the log and issue the key the load uses, before the server starts.
  const database = await createDatabase(server, 'api');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);
  let seeding: Seeding;
  let token: string;
  let head: bigint;
  try {
    console.log(`\n  seeding ${formatInt(events)} events through appendToStream...`);
    seeding = await seed(store, events);
    console.log(
      `  seeded ${formatInt(seeding.events)} events in ${seeding.seconds.toFixed(1)} s (${formatInt(seeding.eventsPerSec)} events/s)`,
    );
    const commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(pool),
    });
    const issued = await new ApiKeyService(commands).issue('bench-auditor', 'auditor', 'bench');
    token = issued.token;
    head = issued.result.position;
    console.log(`  issued API key ${issued.keyId} (role auditor: audit:read) at position ${head}`);
  } finally {
    await pool.end();
    await store.close();
  }

  if (redisUrl) {
    onCleanup(async () => {
      const redis = new Redis(redisUrl, { lazyConnect: true });
      await redis.connect();
      try {
        for await (const keys of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 })) {
          const batch = keys as string[];
          if (batch.length > 0) await redis.del(...batch);
        }
      } finally {
        redis.disconnect();
      }
    });
  }

  const qcatEnv: Record<string, string> = {
    DATABASE_URL: database.url,
    HOST: '127.0.0.1',
    EVENT_STORE: 'postgres',
    LOG_LEVEL: logLevel,
    RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT_PER_MINUTE),
    REDIS_URL: redisUrl,
    QCAT_REDIS_PREFIX: redisPrefix,
    CORS_ORIGINS: '',
  };
  const startedAt = now();
  const qcat = await startChild(
    'qcat',
    join(ROOT, 'ops/cli.ts'),
    ['serve'],
    qcatEnv,
    '/health/live',
  );
  const projectionNames = allProjections(redisPrefix)
    .filter((projection) => projection.kind === 'postgres' || redisUrl !== '')
    .map((projection) => projection.name);
  await waitForProjections(database.url, projectionNames, head);
  const catchUpSeconds = (now() - startedAt) / 1000;
  console.log(
    `  QCAT up; projections ${projectionNames.join(', ')} reached position ${head} ${catchUpSeconds.toFixed(1)} s after start`,
  );
  const uncached = withUncached
    ? await startChild(
        'qcat-uncached',
        join(ROOT, 'ops/cli.ts'),
        ['serve'],
        { ...qcatEnv, READ_CACHE_MB: '0' },
        '/health/live',
      )
    : null;

  // Checks outside the measurement: the API agrees that nothing lags, and the route answers 200.
  const authorization = `Bearer ${token}`;
  const statusResponse = await fetch(`${qcat.url}/api/v1/projections`, {
    headers: { authorization },
  });
  if (statusResponse.status !== 200) {
    throw new Error(`GET /api/v1/projections answered ${statusResponse.status}`);
  }
  const statuses = (await statusResponse.json()) as { name: string; state: string; lag: string }[];
  // Led by the other QCAT process (the uncached one may win a process manager's lease): fine.
  const lagging = statuses.filter(
    (status) => status.lag !== '0' || !['running', 'led_elsewhere'].includes(status.state),
  );
  if (lagging.length > 0) throw new Error(`projections not caught up: ${JSON.stringify(lagging)}`);
  const [counted] = await execute<{ rows: string }>(
    database.url,
    'SELECT count(*)::text AS rows FROM qcat_read.audit_trail',
  );
  const auditRows = Number(counted?.rows ?? 0);
  await execute(database.url, 'VACUUM ANALYZE');
  await checkpoint(database.url);

  const path = `/api/v1/audit/events?limit=${limit}`;
  const probe = await fetch(`${qcat.url}${path}`, { headers: { authorization } });
  const page = (await probe.json()) as { events?: unknown[]; nextCursor?: string | null };
  if (probe.status !== 200 || page.events?.length !== limit || !page.nextCursor) {
    throw new Error(
      `GET ${path} answered ${probe.status} with ${page.events?.length ?? 0} events: not a full page`,
    );
  }
  // The bare server also serves QCAT's answer as a constant: what the bytes alone cost.
  const bodyFile = join(logDir(), 'answer.json');
  writeFileSync(
    bodyFile,
    await (await fetch(`${qcat.url}${path}`, { headers: { authorization } })).text(),
  );
  const bare = await startChild(
    'bare',
    import.meta.filename,
    ['--serve=bare'],
    { BODY_FILE: bodyFile },
    '/',
  );
  const floor = withFloor
    ? await startChild(
        'floor',
        import.meta.filename,
        ['--serve=floor'],
        { DATABASE_URL: database.url, LIMIT: String(limit) },
        '/audit',
      )
    : null;
  if (uncached) {
    const plain = await fetch(`${uncached.url}${path}`, { headers: { authorization } });
    if (plain.headers.get('x-qcat-read-cache') !== null) {
      throw new Error('the cache-off process answered through a cache');
    }
    if (JSON.stringify(await plain.json()) !== JSON.stringify(page)) {
      throw new Error('QCAT with the cache off does not answer what QCAT with the cache answers');
    }
  }
  const bareBody = await (await fetch(`${bare.url}/`)).text();
  if (floor) {
    const floorPage = await (await fetch(`${floor.url}/audit`)).json();
    if (JSON.stringify(floorPage) !== JSON.stringify(page)) {
      throw new Error('the floor route does not answer what QCAT answers');
    }
  }

  const layout = `each server in its own child process (node + tsx, forked alike: QCAT as ops/cli.ts serve${uncached ? ' (twice: cache on, cache off)' : ''}, bare${floor ? ' and floor' : ''} as this file --serve=...); autocannon in the parent process main thread`;
  console.log(`\n  process layout: ${layout}`);
  console.log(
    `  read:  QCAT GET ${path} as auditor, answer 200 with ${limit} events (${formatInt(Buffer.byteLength(JSON.stringify(page)))} bytes JSON); audit_trail has ${formatInt(auditRows)} rows; read-model answer cache on (default)`,
  );
  if (uncached) {
    console.log(
      '  uncached: the same route from a second QCAT process on the same database with READ_CACHE_MB=0 (reference only): SQL and serialisation on every request',
    );
  }
  console.log(
    `         LOG_LEVEL=${logLevel}, RATE_LIMIT_PER_MINUTE=${formatInt(RATE_LIMIT_PER_MINUTE)} (raised for the bench; default 1,200), Redis ${redisUrl ? `on (${redisUrl}, prefix ${redisPrefix}): rate limit counted in Redis` : 'off: rate limit counted in the process'}`,
  );
  console.log(`  bare:  Fastify 5 GET /, no plugins, no logger, answers ${bareBody}`);
  console.log(
    "         and GET /same: QCAT's answer above as a constant Buffer (reference only: the cost of the bytes)",
  );
  if (floor) {
    console.log(
      `  floor: Fastify 5, no plugins, pg pool of 10 as QCAT's (references only): GET /audit runs the same SELECT and answers the same JSON, nothing else; GET /select1 runs SELECT 1`,
    );
  }
  console.log(
    `  load:  autocannon, ${settings.connections} connections, pipelining 1, ${settings.rounds} round(s) of [${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured] per server\n`,
  );

  const targets: Target[] = [
    { label: 'bare', child: bare, path: '/', headers: {} },
    { label: 'same', child: bare, path: '/same', headers: {} },
    { label: 'read', child: qcat, path, headers: { authorization } },
    ...(uncached ? [{ label: 'uncached', child: uncached, path, headers: { authorization } }] : []),
    ...(floor
      ? [
          { label: 'floor', child: floor, path: '/audit', headers: {} },
          { label: 'select1', child: floor, path: '/select1', headers: {} },
        ]
      : []),
  ];
  const tallies = new Map(targets.map((target) => [target.label, newTally()]));
  const failures: Failures = { non2xx: 0, errors: 0, statusCodes: {} };
  // With --writes-per-second: events appended while QCAT's read routes are loaded, so every
  // projected batch empties the audit trail's cached answers (what a busy log does to the cache).
  const writer =
    writesPerSecond > 0
      ? await PostgresEventStore.connect({ connectionString: database.url, migrate: false })
      : null;
  let written = 0;
  let writeSeconds = 0;
  const writing = (active: boolean): (() => Promise<void>) => {
    if (!writer || !active) return () => Promise.resolve();
    const started = now();
    let pending = Promise.resolve();
    const timer = setInterval(() => {
      pending = pending.then(async () => {
        await writer.appendToStream(`benchwrite-w${written % 10}`, [
          {
            type: 'OrderPlaced',
            data: orderPlaced(0, written),
            metadata: { actor: 'bench-writer' },
          },
        ]);
        written++;
      });
    }, 1000 / writesPerSecond);
    return async () => {
      clearInterval(timer);
      await pending;
      writeSeconds += (now() - started) / 1000;
    };
  };
  for (let round_ = 1; round_ <= settings.rounds; round_++) {
    for (const target of targets) {
      const stop = writing(target.child === qcat || target.child === uncached);
      await measure(target, tallies.get(target.label)!, settings, failures, round_);
      await stop();
    }
  }
  await writer?.close();
  const cacheLookups = await readCacheLookups(qcat.url);
  await qcat.stop();
  await uncached?.stop();
  await bare.stop();
  await floor?.stop();

  const bareFigures = figures(tallies.get('bare')!);
  const sameFigures = figures(tallies.get('same')!);
  const readFigures = figures(tallies.get('read')!);
  const floorTally = tallies.get('floor');
  const floorFigures = floorTally ? figures(floorTally) : null;
  const select1Tally = tallies.get('select1');
  const select1Figures = select1Tally ? figures(select1Tally) : null;
  const uncachedTally = tallies.get('uncached');
  const uncachedFigures = uncachedTally ? figures(uncachedTally) : null;
  const lookups = cacheLookups.hit + cacheLookups.shared + cacheLookups.miss + cacheLookups.bypass;
  // Shared answers ran no SQL of their own: they count with the hits.
  const hitRate = lookups === 0 ? 0 : (cacheLookups.hit + cacheLookups.shared) / lookups;
  const ratio = readFigures.reqPerSec / bareFigures.reqPerSec;
  const valid = failures.non2xx === 0 && failures.errors === 0;
  const ratioMet = ratio >= TARGET_RATIO;
  const p99Met = readFigures.p99Ms < TARGET_P99_MS;

  const cpu = (value: number | null): string => (value === null ? 'n/a' : formatPercent(value));
  const row = (label: string, f: Figures): string[] => [
    label,
    formatInt(f.reqPerSec),
    formatMs(f.p50Ms),
    formatMs(f.p90Ms),
    formatMs(f.p99Ms),
    formatMs(f.maxMs),
    formatInt(f.responses),
    formatInt(f.non2xx),
    formatInt(f.errors),
    cpu(f.serverCpu),
    cpu(f.generatorCpu),
    cpu(f.machineBusy),
  ];
  console.log(
    `\nResults (${settings.connections} connections, ${settings.rounds} × ${settings.seconds} s each; latency in ms at the load generator)`,
  );
  printTable(
    [
      'server',
      'req/s',
      'p50',
      'p90',
      'p99',
      'max',
      'responses',
      'non-2xx',
      'errors',
      'server CPU',
      'autocannon CPU',
      'machine busy',
    ],
    [
      row('bare: Fastify GET /', bareFigures),
      row("same bytes: Fastify, QCAT's answer as a constant", sameFigures),
      row(`read: QCAT GET ${path}`, readFigures),
      ...(uncachedFigures ? [row('uncached: the same, READ_CACHE_MB=0', uncachedFigures)] : []),
      ...(floorFigures ? [row('floor: Fastify + same SELECT', floorFigures)] : []),
      ...(select1Figures ? [row('floor: Fastify + SELECT 1', select1Figures)] : []),
    ],
  );
  console.log('  (server and autocannon CPU: share of one core; machine busy: share of all CPUs)');
  console.log(
    `  read ÷ same bytes: ${formatPercent(readFigures.reqPerSec / sameFigures.reqPerSec)}; same bytes ÷ bare: ${formatPercent(sameFigures.reqPerSec / bareFigures.reqPerSec)} — what writing a ${formatInt(Buffer.byteLength(JSON.stringify(page)))}-byte answer costs by itself`,
  );
  if (writesPerSecond > 0) {
    console.log(
      `  writes while QCAT was loaded: ${formatInt(written)} events appended in ${writeSeconds.toFixed(1)} s (${formatInt(written / writeSeconds)}/s asked ${formatInt(writesPerSecond)}/s), each batch projected empties the cached audit answers`,
    );
  }
  console.log(
    `  read-model answer cache of the read server, whole run (warm-ups and checks included): ${formatInt(cacheLookups.hit)} hits, ${formatInt(cacheLookups.shared)} shared, ${formatInt(cacheLookups.miss)} misses, ${formatInt(cacheLookups.bypass)} bypasses — ${formatPercent(hitRate)} without SQL of their own`,
  );
  if (uncachedFigures) {
    console.log(
      `  uncached ÷ bare: ${formatPercent(uncachedFigures.reqPerSec / bareFigures.reqPerSec)}, p99 ${formatMs(uncachedFigures.p99Ms)} ms — the same route when every request runs its SQL (what a read model that changes between every two requests would give)`,
    );
  }
  if (floorFigures && select1Figures) {
    console.log(
      `  uncached ÷ floor (same SELECT): ${uncachedFigures ? formatPercent(uncachedFigures.reqPerSec / floorFigures.reqPerSec) : 'n/a'} — what auth, rate limit, validation, hooks and zod serialisation leave of a bare route doing the same SQL`,
    );
    console.log(
      `  floor ÷ bare: same SELECT ${formatPercent(floorFigures.reqPerSec / bareFigures.reqPerSec)}, SELECT 1 ${formatPercent(select1Figures.reqPerSec / bareFigures.reqPerSec)} — the most any route with one PostgreSQL query per request can reach here`,
    );
  }
  console.log('\nTargets');
  printTable(
    ['target', 'measured', 'goal', ''],
    [
      [
        'read req/s ÷ bare req/s',
        formatPercent(ratio),
        `≥ ${formatPercent(TARGET_RATIO)}`,
        ratioMet ? 'MET' : 'MISSED',
      ],
      [
        'read p99 (ms)',
        formatMs(readFigures.p99Ms),
        `< ${formatMs(TARGET_P99_MS)}`,
        p99Met ? 'MET' : 'MISSED',
      ],
    ],
  );
  if (!valid) {
    console.error(
      `\n!!! INVALID RUN: ${failures.non2xx} non-2xx answers and ${failures.errors} request errors (warm-ups included); status codes ${JSON.stringify(failures.statusCodes)}. These figures do not measure the read path.`,
    );
    process.exitCode = 1;
  }

  return {
    benchmark: 'api',
    server: { version: info.version, source: server.source, cpus: info.cpus, node: info.node },
    machineBusyBefore: busyBefore === null ? null : round(busyBefore, 3),
    layout,
    settings: { ...settings, pipelining: 1, limit },
    qcat: {
      route: `GET ${path}`,
      role: 'auditor',
      logLevel,
      rateLimitPerMinute: RATE_LIMIT_PER_MINUTE,
      redis: redisUrl !== '',
      auditRows,
      seeding: {
        events: seeding.events,
        seconds: round(seeding.seconds, 2),
        eventsPerSec: round(seeding.eventsPerSec, 0),
      },
      catchUpSeconds: round(catchUpSeconds, 2),
    },
    bare: figuresJson(bareFigures),
    sameBytes: figuresJson(sameFigures),
    read: figuresJson(readFigures),
    readCache: { ...cacheLookups, hitRate: round(hitRate, 4) },
    writes:
      writesPerSecond > 0
        ? { asked: writesPerSecond, appended: written, seconds: round(writeSeconds, 1) }
        : null,
    uncached: uncachedFigures ? figuresJson(uncachedFigures) : null,
    uncachedRatio: uncachedFigures
      ? round(uncachedFigures.reqPerSec / bareFigures.reqPerSec, 3)
      : null,
    floor: floorFigures ? figuresJson(floorFigures) : null,
    floorSelect1: select1Figures ? figuresJson(select1Figures) : null,
    ratio: round(ratio, 3),
    uncachedOverFloor:
      floorFigures && uncachedFigures
        ? round(uncachedFigures.reqPerSec / floorFigures.reqPerSec, 3)
        : null,
    targets: {
      ratio: { actual: round(ratio, 3), min: TARGET_RATIO, met: ratioMet },
      p99Ms: { actual: round(readFigures.p99Ms, 3), max: TARGET_P99_MS, met: p99Met },
    },
    valid,
    failures,
    met: valid && ratioMet && p99Met,
  };
}

const serve = option('serve', '');
if (serve === 'bare') {
  await serveBare();
} else if (serve === 'floor') {
  await serveFloor();
} else {
  let summary: Record<string, unknown> | undefined;
  try {
    summary = await main();
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
  if (summary) console.log(`\n${JSON.stringify(summary)}`);
}
