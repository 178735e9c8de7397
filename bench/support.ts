/**
 * Shared helpers for the benchmarks: which PostgreSQL server to use, throw-away databases on it,
 * latency percentiles and result tables. Nothing here asserts: benchmarks report, they do not fail.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { EventStore, NewEvent } from '../core/eventstore/event-store.js';
import { startEmbeddedPostgres } from '../ops/embedded-postgres.js';

// ---------------------------------------------------------------------------------------------
// Clean-up: databases and the embedded server are removed at the end, on Ctrl-C too.

const cleanups: (() => Promise<void>)[] = [];

/** Runs `fn` at the end of the run (last registered, first run). */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** Runs every registered clean-up once; failures are reported, never thrown. */
export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (error) {
      console.error(`clean-up failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: dropping the benchmark databases...`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Server and databases.

export interface BenchServer {
  /** Connection string of a database on the server that may create and drop databases. */
  url: string;
  source: 'BENCH_DATABASE_URL' | 'TEST_DATABASE_URL' | 'embedded';
}

/**
 * `BENCH_DATABASE_URL`, else `TEST_DATABASE_URL`, else an embedded PostgreSQL in a temporary
 * folder that is stopped and removed by `cleanup()`.
 */
export async function startServer(): Promise<BenchServer> {
  for (const source of ['BENCH_DATABASE_URL', 'TEST_DATABASE_URL'] as const) {
    const url = process.env[source]?.trim();
    if (url) return { url, source };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'qcat-bench-pg-'));
  onCleanup(() => {
    rmSync(dataDir, { recursive: true, force: true });
    return Promise.resolve();
  });
  const server = await startEmbeddedPostgres({ dataDir, persistent: false, database: 'postgres' });
  onCleanup(() => server.stop());
  return { url: server.url, source: 'embedded' };
}

const withDatabase = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  /** Drops it now; `cleanup()` drops it anyway (idempotent). */
  drop(): Promise<void>;
}

/** A fresh, empty database on the server, dropped by `cleanup()` at the latest. */
export async function createDatabase(server: BenchServer, label: string): Promise<BenchDatabase> {
  const name = `qcat_bench_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(3).toString('hex')}`;
  await withClient(server.url, (client) =>
    client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`),
  );
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    await withClient(server.url, async (client) => {
      // A closed pg.Pool resolves end() before its sockets are gone; a backend terminated by
      // DROP ... WITH (FORCE) meanwhile reaches the client as an 'error' event, which crashes the
      // process when that pool has no error listener (Emmett's has none). Let them leave first.
      for (let attempt = 0; attempt < 50; attempt++) {
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
          [name],
        );
        if ((rows[0]?.n ?? 0) === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    });
    dropped = true;
  };
  onCleanup(drop);
  return { name, url: withDatabase(server.url, name), drop };
}

export interface ServerInfo {
  version: string;
  fsync: string;
  synchronousCommit: string;
  sharedBuffers: string;
  cpus: number;
  node: string;
}

export async function serverInfo(server: BenchServer): Promise<ServerInfo> {
  return withClient(server.url, async (client) => {
    const { rows } = await client.query<{
      version: string;
      fsync: string;
      synchronous_commit: string;
      shared_buffers: string;
    }>(`SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
               current_setting('synchronous_commit') AS synchronous_commit,
               current_setting('shared_buffers') AS shared_buffers`);
    const row = rows[0]!;
    return {
      version: row.version,
      fsync: row.fsync,
      synchronousCommit: row.synchronous_commit,
      sharedBuffers: row.shared_buffers,
      cpus: cpus().length,
      node: process.version,
    };
  });
}

export function describeServer(server: BenchServer, info: ServerInfo): string {
  const where =
    server.source === 'embedded' ? 'embedded' : `${server.source} (${redact(server.url)})`;
  return `PostgreSQL ${info.version} [${where}], fsync=${info.fsync}, synchronous_commit=${info.synchronousCommit}, shared_buffers=${info.sharedBuffers}; Node ${info.node}, ${info.cpus} CPUs`;
}

const redact = (url: string): string => {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
};

/**
 * Flushes dirty pages before a timed phase, so one contender does not pay for the previous one's
 * writes. Needs superuser (or pg_checkpoint); skipped silently otherwise.
 */
export async function checkpoint(url: string): Promise<void> {
  await withClient(url, (client) => client.query('CHECKPOINT')).catch(() => undefined);
}

/** Runs one statement in its own connection. */
export async function execute<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<R[]> {
  return withClient(url, async (client) => (await client.query<R>(sql, values)).rows);
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/** Milliseconds, sub-millisecond resolution. */
export const now = (): number => performance.now();

export interface LatencyStats {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Latency samples in a growable typed array (no per-sample allocation while timing). */
export class LatencySamples {
  private data = new Float64Array(1024);
  private size = 0;

  add(ms: number): void {
    if (this.size === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.size++] = ms;
  }

  /** The samples in ascending order (a copy). */
  sorted(): Float64Array {
    return this.data.slice(0, this.size).sort();
  }

  stats(): LatencyStats {
    const sorted = this.sorted();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: sorted.length,
      meanMs: sorted.length === 0 ? 0 : sum / sorted.length,
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    };
  }
}

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(fraction * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Starts `count` workers at once and resolves when all are done; rejects on the first failure. */
export async function runWorkers(
  count: number,
  worker: (index: number) => Promise<void>,
): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, index) => worker(index)));
}

// ---------------------------------------------------------------------------------------------
// Printing.

export const formatInt = (value: number): string => Math.round(value).toLocaleString('en-US');
export const formatMs = (value: number): string => value.toFixed(2);
export const formatRatio = (value: number): string => `${value.toFixed(2)}×`;
export const formatPercent = (value: number): string => `${(value * 100).toFixed(0)}%`;

/** Rounds for the JSON summary line. */
export const round = (value: number, digits = 2): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export interface Target {
  label: string;
  actual: number;
  min: number;
  format: (value: number) => string;
}

export interface TargetResult {
  actual: number;
  min: number;
  met: boolean;
}

export function checkTarget(target: Target): TargetResult {
  return { actual: round(target.actual, 3), min: target.min, met: target.actual >= target.min };
}

/** One line per target: the figure, the target and `met` or `MISSED`. */
export function printTargets(targets: readonly Target[]): void {
  const width = Math.max(...targets.map((target) => target.label.length));
  for (const target of targets) {
    const met = target.actual >= target.min;
    console.log(
      `  ${target.label.padEnd(width)}  ${target.format(target.actual).padStart(10)}   target ≥ ${target.format(target.min).padEnd(8)} ${met ? 'met' : 'MISSED'}`,
    );
  }
}

/** A plain text table; the first column is left-aligned, the others right-aligned. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  console.log(`  ${line(header)}`);
  console.log(`  ${widths.map((width) => '-'.repeat(width)).join('  ')}`);
  for (const row of rows) console.log(`  ${line(row)}`);
}

/** `--name=value` from the command line, else `fallback`. */
export function option(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  const found = process.argv.find((arg) => arg.startsWith(prefix));
  return found === undefined ? fallback : found.slice(prefix.length);
}

export function numberOption(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)).replace(/_/g, ''));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

export const listOption = (name: string, fallback: string): string[] =>
  option(name, fallback)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

// ---------------------------------------------------------------------------------------------
// Events: the same shape for every contender.

export type OrderPlacedData = {
  orderId: string;
  strategyId: string;
  instrument: string;
  side: 'buy' | 'sell';
  quantity: number;
  limitPrice: number;
  timeInForce: string;
};

export const orderPlaced = (writer: number, sequence: number): OrderPlacedData => ({
  orderId: `ord-${writer}-${sequence}`,
  strategyId: `strategy-${writer % 4}`,
  instrument: 'BTC-USD',
  side: sequence % 2 === 0 ? 'buy' : 'sell',
  quantity: 0.25 + (sequence % 7) * 0.05,
  limitPrice: 64_000 + (sequence % 1000) / 4,
  timeInForce: 'GTC',
});

export const BENCH_ACTOR = 'bench';

// ---------------------------------------------------------------------------------------------
// Seeding a log through QCAT's own appendToStream.

export interface Seeding {
  events: number;
  seconds: number;
  eventsPerSec: number;
  callers: number;
  eventsPerAppend: number;
  streams: number;
}

export interface SeedOptions {
  total: number;
  callers: number;
  eventsPerAppend: number;
  streams: number;
}

/**
 * Writes `total` events as appends of `eventsPerAppend` from `callers` concurrent callers (so group
 * commit fills its transactions); `makeAppend` shapes append number `index` of `count` events.
 * Prints progress every 10 s.
 */
export async function seedThroughStore(
  store: EventStore,
  { total, callers, eventsPerAppend, streams }: SeedOptions,
  makeAppend: (
    index: number,
    count: number,
    caller: number,
  ) => { streamId: string; events: NewEvent[] },
): Promise<Seeding> {
  const appends = Math.ceil(total / eventsPerAppend);
  let next = 0;
  let written = 0;
  let lastReport = now();
  const started = now();
  await runWorkers(callers, async (caller) => {
    for (let index = next++; index < appends; index = next++) {
      const count = Math.min(eventsPerAppend, total - index * eventsPerAppend);
      const { streamId, events } = makeAppend(index, count, caller);
      await store.appendToStream(streamId, events);
      written += count;
      if (now() - lastReport > 10_000) {
        lastReport = now();
        const seconds = (lastReport - started) / 1000;
        console.log(
          `  ... ${formatInt(written)} events after ${seconds.toFixed(0)} s (${formatInt(written / seconds)} events/s)`,
        );
      }
    }
  });
  const seconds = (now() - started) / 1000;
  return {
    events: written,
    seconds,
    eventsPerSec: written / seconds,
    callers,
    eventsPerAppend,
    streams,
  };
}
