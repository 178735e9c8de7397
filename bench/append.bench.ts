/**
 * Append throughput and latency: QCAT's PostgreSQL adapter against Emmett's PostgreSQL event store
 * and a raw `pg` INSERT loop (the physical floor), on one PostgreSQL server, in one run.
 *
 *   npm run bench:append
 *   npm run bench:append -- --events-a=20000 --events-b=200000 --max-seconds=40 \
 *                           --contenders=raw,qcat,emmett --scenarios=a,b --analyze
 *
 * Server: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL. Every contender
 * gets its own fresh database per scenario, dropped when it is done (and at exit). Contenders run
 * one after another, each warmed up outside the timed window, with a CHECKPOINT before timing.
 * `--max-seconds` bounds each timed window (the figure is then over the events written so far and
 * is marked "capped"); `--analyze` runs ANALYZE after the warm-up, as autovacuum would on a server
 * that has it on. With the embedded server, each contender's CPU per event (this process's and the
 * server's, server-cpu.ts) is printed too: on a busy machine events/s mostly says how much CPU a
 * contender was given, CPU per event what an event costs it (ADR 001, "CPU per event").
 * The last line of output is one JSON object with every figure. Targets are
 * reported (met / MISSED), never asserted: the exit code is 0 unless the benchmark itself failed.
 */
import type { Event } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { NewEvent } from '../core/eventstore/event-store.js';
import { serverCpuMeter, type ServerCpuMeter } from './server-cpu.js';
import {
  BENCH_ACTOR,
  LatencySamples,
  checkTarget,
  checkpoint,
  cleanup,
  createDatabase,
  describeServer,
  execute,
  formatInt,
  formatMs,
  formatPercent,
  formatRatio,
  listOption,
  now,
  numberOption,
  orderPlaced,
  printTable,
  printTargets,
  round,
  runWorkers,
  serverInfo,
  startServer,
  type BenchServer,
  type LatencyStats,
  type OrderPlacedData,
  type Target,
  type TargetResult,
} from './support.js';

const CONTENDERS = ['qcat', 'emmett', 'raw'] as const;
type ContenderName = (typeof CONTENDERS)[number];

interface Scenario {
  key: 'a' | 'b';
  title: string;
  events: number;
  writers: number;
  /** Events per append call. */
  batch: number;
  /** Each writer appends round-robin to its own streams. */
  streamsPerWriter: number;
  warmupEvents: number;
}

/** One contender, connected to its own database. */
interface Appender {
  /** Appends `batch` events to `stream` on behalf of `writer` (0 .. writers-1). */
  append(writer: number, stream: string, sequence: number, batch: number): Promise<void>;
  /** QCAT only: returns the log head just before the timed window... */
  mark?(): Promise<bigint>;
  /** ...and, after it, the group-commit batch sizes of the events written since that head. */
  diagnose?(since: bigint): Promise<QcatDiagnostics>;
  close(): Promise<void>;
}

interface QcatDiagnostics {
  transactions: number;
  eventsPerTransaction: number;
  appendsPerTransaction: number;
  maxEventsPerTransaction: number;
}

interface ContenderResult {
  events: number;
  appends: number;
  /** The timed window hit --max-seconds before all events were written. */
  capped: boolean;
  seconds: number;
  eventsPerSec: number;
  appendsPerSec: number;
  latency: LatencyStats;
  /** Node CPU (all threads) over the timed window, as a share of one core. */
  clientCpu: number;
  /** CPU microseconds per event over the timed window: this process's, and the server's. */
  clientCpuUsPerEvent: number;
  serverCpuUsPerEvent: number | null;
  /** Throughput of the last quarter of appends over that of the first: < 1 means it slows down. */
  trend: number;
}

// ---------------------------------------------------------------------------------------------
// Contenders.

const EVENT_TYPE = 'OrderPlaced';

async function openQcat(url: string): Promise<Appender> {
  // One store shared by every writer, as one API process would use it.
  const store = await PostgresEventStore.connect({ connectionString: url });
  return {
    async append(writer, stream, sequence, batch) {
      const events: NewEvent[] = [];
      for (let i = 0; i < batch; i++) {
        events.push({
          type: EVENT_TYPE,
          data: orderPlaced(writer, sequence + i),
          metadata: { actor: BENCH_ACTOR },
        });
      }
      await store.appendToStream(stream, events);
    },
    mark: () => store.headPosition(),
    async diagnose(since) {
      // Every group commit is one transaction: its events share an xmin.
      const rows = await execute<{
        events: string;
        transactions: string;
        appends: string;
        max_events: string | null;
      }>(
        url,
        `SELECT count(*) AS events, count(DISTINCT tx) AS transactions,
                count(DISTINCT (tx, stream_id)) AS appends,
                (SELECT max(n) FROM (SELECT count(*) AS n FROM qcat_events
                                      WHERE position > $1 GROUP BY xmin::text) AS g) AS max_events
           FROM (SELECT xmin::text AS tx, stream_id FROM qcat_events WHERE position > $1) AS e`,
        [String(since)],
      );
      const row = rows[0]!;
      const transactions = Number(row.transactions);
      return {
        transactions,
        eventsPerTransaction: Number(row.events) / Math.max(1, transactions),
        appendsPerTransaction: Number(row.appends) / Math.max(1, transactions),
        maxEventsPerTransaction: Number(row.max_events ?? 0),
      };
    },
    close: () => store.close(),
  };
}

type OrderPlaced = Event<typeof EVENT_TYPE, OrderPlacedData, { actor: string }>;

async function openEmmett(url: string): Promise<Appender> {
  // As documented: one store per connection string, default options (schema auto-migration, a
  // pg.Pool of pg's default 10 connections, like QCAT's default pool). Its pool replaces pg's
  // global json/jsonb parsers; nothing here reads json back, so no contender is affected.
  const store = getPostgreSQLEventStore(url);
  // The schema is otherwise created lazily by the first append: create it before any timing.
  await store.schema.migrate();
  return {
    async append(writer, stream, sequence, batch) {
      const events: OrderPlaced[] = [];
      for (let i = 0; i < batch; i++) {
        events.push({
          type: EVENT_TYPE,
          data: orderPlaced(writer, sequence + i),
          metadata: { actor: BENCH_ACTOR },
        });
      }
      await store.appendToStream<OrderPlaced>(stream, events);
    },
    close: () => store.close(),
  };
}

/** Single-row (or one multi-row) autocommit INSERTs, each writer on its own connection. */
async function openRaw(url: string, writers: number): Promise<Appender> {
  const pool = new pg.Pool({ connectionString: url, max: writers });
  pool.on('error', () => undefined);
  await pool.query(`CREATE TABLE raw_events (
      id     bigserial PRIMARY KEY,
      stream text      NOT NULL,
      type   text      NOT NULL,
      data   jsonb     NOT NULL
    )`);
  const clients = await Promise.all(Array.from({ length: writers }, () => pool.connect()));
  const statements = new Map<number, string>();
  const insert = (rows: number): string => {
    let text = statements.get(rows);
    if (text === undefined) {
      const values = Array.from(
        { length: rows },
        (_, i) => `($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3})`,
      );
      text = `INSERT INTO raw_events (stream, type, data) VALUES ${values.join(', ')}`;
      statements.set(rows, text);
    }
    return text;
  };
  return {
    async append(writer, stream, sequence, batch) {
      const values: string[] = [];
      for (let i = 0; i < batch; i++) {
        values.push(stream, EVENT_TYPE, JSON.stringify(orderPlaced(writer, sequence + i)));
      }
      await clients[writer]!.query({
        name: `raw_insert_${batch}`,
        text: insert(batch),
        values,
      });
    },
    async close() {
      for (const client of clients) client.release();
      await pool.end();
    },
  };
}

function open(name: ContenderName, url: string, scenario: Scenario): Promise<Appender> {
  switch (name) {
    case 'qcat':
      return openQcat(url);
    case 'emmett':
      return openEmmett(url);
    case 'raw':
      return openRaw(url, scenario.writers);
  }
}

// ---------------------------------------------------------------------------------------------
// Running.

interface Drive {
  ms: number;
  appends: number;
  events: number;
  capped: boolean;
}

/**
 * `events` events from `scenario.writers` concurrent writers, each to its own streams; writers stop
 * early once `deadline` (a `now()` value) has passed. Records each append's latency and completion.
 */
async function drive(
  appender: Appender,
  scenario: Scenario,
  tag: string,
  events: number,
  deadline: number,
  samples?: LatencySamples,
  completions?: LatencySamples,
): Promise<Drive> {
  const appendsPerWriter = Math.max(1, Math.round(events / scenario.batch / scenario.writers));
  let appends = 0;
  let capped = false;
  const started = now();
  await runWorkers(scenario.writers, async (writer) => {
    for (let i = 0; i < appendsPerWriter; i++) {
      if (now() > deadline) {
        capped = true;
        return;
      }
      const stream = `order-${tag}_${writer}_${i % scenario.streamsPerWriter}`;
      const start = now();
      await appender.append(writer, stream, i * scenario.batch, scenario.batch);
      const end = now();
      samples?.add(end - start);
      completions?.add(end - started);
      appends++;
    }
  });
  return { ms: now() - started, appends, events: appends * scenario.batch, capped };
}

/** Last-quarter throughput over first-quarter throughput, from sorted completion times. */
function trendOf(completions: LatencySamples, totalMs: number): number {
  const times = completions.sorted();
  if (times.length < 8) return 1;
  const quarter = Math.floor(times.length / 4);
  const firstQuarterMs = times[quarter - 1]!;
  const lastQuarterMs = totalMs - times[times.length - quarter - 1]!;
  return firstQuarterMs / Math.max(lastQuarterMs, 1e-3);
}

async function runContender(
  server: BenchServer,
  name: ContenderName,
  scenario: Scenario,
  settings: Settings,
): Promise<{ result: ContenderResult; qcat?: QcatDiagnostics }> {
  const database = await createDatabase(server, `${scenario.key}_${name}`);
  // Embedded server only: a shared one also spends CPU on others' work.
  const meter: ServerCpuMeter | null =
    server.source === 'embedded' ? await serverCpuMeter(database.url) : null;
  const appender = await open(name, database.url, scenario);
  try {
    await drive(
      appender,
      scenario,
      'warm',
      scenario.warmupEvents,
      now() + settings.maxSeconds * 1000,
    );
    if (settings.analyze) await execute(database.url, 'ANALYZE');
    await checkpoint(database.url);
    const marker = appender.mark ? await appender.mark() : 0n;
    const samples = new LatencySamples();
    const completions = new LatencySamples();
    const cpu = process.cpuUsage();
    const serverCpuBefore = meter?.read();
    const run = await drive(
      appender,
      scenario,
      'run',
      scenario.events,
      now() + settings.maxSeconds * 1000,
      samples,
      completions,
    );
    const cpuUsed = process.cpuUsage(cpu);
    const serverCpuMs =
      meter && serverCpuBefore !== undefined ? meter.read() - serverCpuBefore : null;
    const seconds = run.ms / 1000;
    const result: ContenderResult = {
      events: run.events,
      appends: run.appends,
      capped: run.capped,
      seconds,
      eventsPerSec: run.events / seconds,
      appendsPerSec: run.appends / seconds,
      latency: samples.stats(),
      clientCpu: (cpuUsed.user + cpuUsed.system) / 1000 / run.ms,
      clientCpuUsPerEvent: (cpuUsed.user + cpuUsed.system) / Math.max(1, run.events),
      serverCpuUsPerEvent:
        serverCpuMs === null ? null : (serverCpuMs * 1000) / Math.max(1, run.events),
      trend: trendOf(completions, run.ms),
    };
    const qcat = appender.diagnose ? await appender.diagnose(marker) : undefined;
    return qcat ? { result, qcat } : { result };
  } finally {
    await appender.close();
    await database.drop();
  }
}

interface Settings {
  maxSeconds: number;
  analyze: boolean;
}

interface ScenarioSummary {
  scenario: Scenario;
  results: Partial<Record<ContenderName, ContenderResult>>;
  qcatVsEmmett: number | null;
  qcatVsRaw: number | null;
  /** Emmett's CPU per event (client + server) over QCAT's: what one event costs each, any load. */
  emmettVsQcatCpu: number | null;
  qcatGroupCommit: QcatDiagnostics | null;
  targets: Record<string, TargetResult>;
}

async function runScenario(
  server: BenchServer,
  scenario: Scenario,
  contenders: readonly ContenderName[],
  settings: Settings,
): Promise<ScenarioSummary> {
  console.log(`\n${scenario.title}`);
  console.log(
    `  ${formatInt(scenario.events)} events timed after ${formatInt(scenario.warmupEvents)} warm-up events; ${scenario.writers} writers, ${scenario.batch} event(s) per append, ${scenario.streamsPerWriter} streams per writer; at most ${settings.maxSeconds} s per contender`,
  );
  const results: Partial<Record<ContenderName, ContenderResult>> = {};
  let qcatGroupCommit: QcatDiagnostics | null = null;
  for (const name of contenders) {
    process.stdout.write(`  ${name}...`);
    const { result, qcat } = await runContender(server, name, scenario, settings);
    console.log(` ${formatInt(result.eventsPerSec)} events/s`);
    results[name] = result;
    if (qcat) qcatGroupCommit = qcat;
  }
  console.log('');
  printTable(
    [
      'contender',
      'events',
      'events/s',
      'appends/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'client CPU',
      'last/first ¼',
    ],
    contenders.map((name) => {
      const result = results[name]!;
      return [
        name,
        `${formatInt(result.events)}${result.capped ? ' (capped)' : ''}`,
        formatInt(result.eventsPerSec),
        formatInt(result.appendsPerSec),
        formatMs(result.latency.p50Ms),
        formatMs(result.latency.p90Ms),
        formatMs(result.latency.p99Ms),
        formatMs(result.latency.maxMs),
        formatPercent(result.clientCpu),
        result.trend.toFixed(2),
      ];
    }),
  );
  const qcat = results.qcat;
  const ratio = (other: ContenderResult | undefined): number | null =>
    qcat && other ? qcat.eventsPerSec / other.eventsPerSec : null;
  const qcatVsEmmett = ratio(results.emmett);
  const qcatVsRaw = ratio(results.raw);
  const targets: (Target & { key: string })[] = [];
  if (scenario.key === 'b' && qcat) {
    targets.push({
      key: 'qcatEventsPerSec',
      label: 'QCAT events/s',
      actual: qcat.eventsPerSec,
      min: 100_000,
      format: formatInt,
    });
  }
  if (qcatVsEmmett !== null) {
    targets.push({
      key: 'qcatVsEmmett',
      label: 'QCAT/Emmett throughput',
      actual: qcatVsEmmett,
      min: 3,
      format: formatRatio,
    });
  }
  if (qcatVsRaw !== null && scenario.key === 'a') {
    targets.push({
      key: 'qcatVsRaw',
      label: 'QCAT/raw throughput',
      actual: qcatVsRaw,
      min: 0.5,
      format: formatPercent,
    });
  }
  console.log('');
  printTargets(targets);
  if (qcatVsRaw !== null && scenario.key === 'b') {
    console.log(`  QCAT/raw throughput: ${formatPercent(qcatVsRaw)} (no target)`);
  }
  const cpuCost = (result: ContenderResult): number | null =>
    result.serverCpuUsPerEvent === null
      ? null
      : result.clientCpuUsPerEvent + result.serverCpuUsPerEvent;
  const emmettCost = results.emmett && cpuCost(results.emmett);
  const qcatCost = qcat && cpuCost(qcat);
  const emmettVsQcatCpu = emmettCost && qcatCost ? emmettCost / qcatCost : null;
  const perEvent = contenders.map((name) => {
    const { clientCpuUsPerEvent: client, serverCpuUsPerEvent: server } = results[name]!;
    return `${name} ${client.toFixed(1)} + ${server === null ? 'n/a' : server.toFixed(1)}`;
  });
  console.log(
    `  CPU per event, µs (client + server): ${perEvent.join(', ')}${emmettVsQcatCpu === null ? '' : `; Emmett/QCAT ${formatRatio(emmettVsQcatCpu)}`}`,
  );
  if (qcatGroupCommit) {
    console.log(
      `  QCAT group commit: ${formatInt(qcatGroupCommit.transactions)} transactions; per transaction ${qcatGroupCommit.appendsPerTransaction.toFixed(1)} appends, ${qcatGroupCommit.eventsPerTransaction.toFixed(1)} events on average, at most ${formatInt(qcatGroupCommit.maxEventsPerTransaction)} events`,
    );
  }
  const capped = contenders.filter((name) => results[name]?.capped);
  if (capped.length > 0) {
    console.log(
      `  capped at ${settings.maxSeconds} s: ${capped.join(', ')} (figures over the events written by then)`,
    );
  }
  const targetResults: Record<string, TargetResult> = {};
  for (const target of targets) targetResults[target.key] = checkTarget(target);
  return {
    scenario,
    results,
    qcatVsEmmett,
    qcatVsRaw,
    emmettVsQcatCpu,
    qcatGroupCommit,
    targets: targetResults,
  };
}

function summaryJson(summary: ScenarioSummary): Record<string, unknown> {
  const contender = (result: ContenderResult | undefined): Record<string, unknown> | null =>
    result
      ? {
          eventsPerSec: round(result.eventsPerSec, 0),
          appendsPerSec: round(result.appendsPerSec, 0),
          p50Ms: round(result.latency.p50Ms, 3),
          p90Ms: round(result.latency.p90Ms, 3),
          p99Ms: round(result.latency.p99Ms, 3),
          maxMs: round(result.latency.maxMs, 3),
          events: result.events,
          seconds: round(result.seconds, 3),
          capped: result.capped,
          clientCpu: round(result.clientCpu, 3),
          clientCpuUsPerEvent: round(result.clientCpuUsPerEvent, 2),
          serverCpuUsPerEvent:
            result.serverCpuUsPerEvent === null ? null : round(result.serverCpuUsPerEvent, 2),
          trend: round(result.trend, 3),
        }
      : null;
  const { scenario } = summary;
  return {
    events: scenario.events,
    writers: scenario.writers,
    batch: scenario.batch,
    qcat: contender(summary.results.qcat),
    emmett: contender(summary.results.emmett),
    raw: contender(summary.results.raw),
    qcatVsEmmett: summary.qcatVsEmmett === null ? null : round(summary.qcatVsEmmett, 3),
    qcatVsRaw: summary.qcatVsRaw === null ? null : round(summary.qcatVsRaw, 3),
    emmettVsQcatCpu: summary.emmettVsQcatCpu === null ? null : round(summary.emmettVsQcatCpu, 3),
    qcatGroupCommit: summary.qcatGroupCommit && {
      transactions: summary.qcatGroupCommit.transactions,
      appendsPerTransaction: round(summary.qcatGroupCommit.appendsPerTransaction, 2),
      eventsPerTransaction: round(summary.qcatGroupCommit.eventsPerTransaction, 2),
      maxEventsPerTransaction: summary.qcatGroupCommit.maxEventsPerTransaction,
    },
    targets: summary.targets,
  };
}

async function main(): Promise<Record<string, unknown>> {
  const contenders = listOption('contenders', 'raw,qcat,emmett').map((name) => {
    const found = CONTENDERS.find((candidate) => candidate === name);
    if (!found) throw new Error(`unknown contender ${name}; expected ${CONTENDERS.join(', ')}`);
    return found;
  });
  const scenarioKeys = listOption('scenarios', 'a,b');
  const eventsA = numberOption('events-a', 20_000);
  const eventsB = numberOption('events-b', 200_000);
  const settings: Settings = {
    maxSeconds: numberOption('max-seconds', 40),
    analyze: process.argv.includes('--analyze'),
  };
  const scenarios: Scenario[] = [
    {
      key: 'a',
      title: '(a) single-event appends, 16 concurrent writers, distinct streams',
      events: eventsA,
      writers: 16,
      batch: 1,
      streamsPerWriter: 25,
      warmupEvents: Math.max(1_600, Math.round(eventsA / 10)),
    },
    {
      key: 'b',
      title: '(b) 50-event appends, 8 concurrent writers, distinct streams',
      events: eventsB,
      writers: 8,
      batch: 50,
      streamsPerWriter: 10,
      warmupEvents: Math.max(8 * 50 * 4, Math.round(eventsB / 10)),
    },
  ];

  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:append — ${describeServer(server, info)}`);
  console.log(
    `contenders in run order: ${contenders.join(', ')}${settings.analyze ? '; ANALYZE after warm-up' : ''}`,
  );
  const started = now();
  const output: Record<string, unknown> = {
    benchmark: 'append',
    server: { version: info.version, source: server.source, fsync: info.fsync, cpus: info.cpus },
    analyze: settings.analyze,
    maxSeconds: settings.maxSeconds,
  };
  for (const scenario of scenarios) {
    if (!scenarioKeys.includes(scenario.key)) continue;
    output[scenario.key] = summaryJson(await runScenario(server, scenario, contenders, settings));
  }
  output['seconds'] = round((now() - started) / 1000, 1);
  return output;
}

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
