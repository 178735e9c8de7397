/**
 * Projection engine: (a) rebuild of the audit-trail projection over 1,000,000 events, against the
 * physical floor (one INSERT ... SELECT in SQL into a fresh table with the same columns and
 * indexes); (b) live lag of a running ProjectionService while a writer appends a steady
 * 1,000 events/s, against the append latency alone.
 *
 *   npm run bench:projections
 *   npm run bench:projections -- --scenarios=a,b --events=1000000 --rounds=1 \
 *       --rebuild-batches=5000,20000 --rebuild-paths=sql,events --rate=1000 --tick-ms=10 --events-per-append=1 \
 *       --warmup-seconds=5 --seconds=20 --sql-every=20 --sql-poll-ms=2 --capacity-seconds=5
 *
 * Server: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL; one fresh
 * database per scenario, dropped when it is done (and at exit).
 *
 * (a) 1M events are seeded through QCAT's appendToStream (large appends from concurrent callers, so
 * group commit fills its transactions), with the metadata the command handler writes (actor,
 * correlation and causation ids, schema version), then VACUUM ANALYZE (this server may run without
 * autovacuum; it also sets the hint bits, so neither contender pays for that) and CHECKPOINT before
 * each timed phase. The projection is registered with `new PostgresTarget(pool, auditTrail).ensure()`
 * and `target.rebuild(store)` is timed end to end (new generation, fill, indexes, catch-up, switch,
 * drop of the old one). The store handed to it only times `readAll`, so the read/apply split can be
 * printed. Two paths: `sql` (the target told the log is in its database, as ProjectionService's
 * `logInDatabase` does: the audit trail's `rebuildSql` fills it from qcat_events; the goal) and
 * `events` (event by event, as over EventStoreDB). A second reference runs the floor's INSERT with
 * the six indexes created after it (same transaction) instead of before: what the `sql` path does,
 * in one statement.
 *
 * (b) First, as a reference, the append capacity of the store without the projection (closed loop,
 * 100 callers, `--capacity-seconds`). Then `ProjectionService` with [auditTrail] runs in this
 * process; a writer issues `rate × tick-ms / 1000` events every `--tick-ms` as appends of
 * `--events-per-append` events (default 1, one command each), paced by the wall clock, not by
 * completion. For each append: time from just before `appendToStream` to `waitFor` answering for its
 * last position, and for every `--sql-every`th one an independent SQL poll of
 * `qcat_read.audit_trail` (one query for all watched positions, every `--sql-poll-ms`) plus a check
 * that the row is there the moment `waitFor` says so. The store handed to the service notes when
 * the runner's subscription delivers each event and the service's own target notes when each batch
 * committed (both only observe), so the lag is split into stages.
 *
 * The last line of output is one JSON object. Targets are reported (MET / MISSED), never asserted.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { tap, type Observable } from 'rxjs';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  Position,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
} from '../core/eventstore/event-store.js';
import { auditTrail } from '../projections/audit-trail.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { ProjectionService } from '../projections/projection-service.js';
import {
  LatencySamples,
  checkpoint,
  cleanup,
  createDatabase,
  describeServer,
  execute,
  formatInt,
  formatMs,
  formatRatio,
  listOption,
  now,
  numberOption,
  orderPlaced,
  percentile,
  printTable,
  round,
  runWorkers,
  serverInfo,
  startServer,
  type BenchServer,
  seedThroughStore,
  type Seeding,
} from './support.js';

const TARGET_REBUILD_EVENTS_PER_SEC = 50_000;
const TARGET_LIVE_P99_MS = 100;
const PROJECTION = auditTrail.name;

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

// ---------------------------------------------------------------------------------------------
// Targets in both directions (support.ts only has "at least").

interface Goal {
  label: string;
  actual: number;
  bound: number;
  direction: 'min' | 'max';
  format: (value: number) => string;
}

const goalMet = (goal: Goal): boolean =>
  goal.direction === 'min' ? goal.actual >= goal.bound : goal.actual < goal.bound;

function printGoals(goals: readonly Goal[]): void {
  printTable(
    ['target', 'measured', 'goal', ''],
    goals.map((goal) => [
      goal.label,
      goal.format(goal.actual),
      `${goal.direction === 'min' ? '≥' : '<'} ${goal.format(goal.bound)}`,
      goalMet(goal) ? 'MET' : 'MISSED',
    ]),
  );
}

const goalJson = (goal: Goal): Record<string, number | boolean> => ({
  actual: round(goal.actual, 3),
  [goal.direction]: goal.bound,
  met: goalMet(goal),
});

// ---------------------------------------------------------------------------------------------
// Whole-machine CPU from /proc/stat (Linux), to tell a slow phase from a busy machine.

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

/** Fraction of all CPUs busy (any process) since `since`. */
function machineBusy(since: CpuTicks | null): number | null {
  const current = machineTicks();
  if (!since || !current || current.total === since.total) return null;
  return (current.busy - since.busy) / (current.total - since.total);
}

const formatBusy = (value: number | null): string =>
  value === null ? 'n/a' : `${(value * 100).toFixed(0)}%`;

// ---------------------------------------------------------------------------------------------
// A store that delegates everything and only takes notes: readAll durations, and when the live
// subscription hands each event over.

class NotingStore implements EventStore {
  readonly reads = new LatencySamples();
  readMs = 0;
  readonly delivered = new Map<Position, number>();
  noteDeliveries = false;

  constructor(private readonly inner: EventStore) {}

  appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options?: { expectedRevision?: ExpectedRevision },
  ): Promise<AppendResult> {
    return this.inner.appendToStream(streamId, events, options);
  }

  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return this.inner.readStream(streamId, options);
  }

  async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    const started = now();
    const events = await this.inner.readAll(options);
    const ms = now() - started;
    this.reads.add(ms);
    this.readMs += ms;
    return events;
  }

  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent> {
    return this.inner.subscribeToAll(options).pipe(
      tap((event) => {
        if (this.noteDeliveries) this.delivered.set(event.position, now());
      }),
    );
  }

  headPosition(): Promise<Position> {
    return this.inner.headPosition();
  }

  positionAt(instant: Date): Promise<Position> {
    return this.inner.positionAt(instant);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding through QCAT: what the command handler writes (actor, correlation and causation ids,
// schema version), several categories, types and actors so that no audit index is degenerate.

const CATEGORIES = ['order', 'strategy', 'risk', 'account'] as const;
const TYPES = ['OrderPlaced', 'OrderAccepted', 'OrderFilled', 'OrderCancelled'] as const;

const streamOf = (index: number): string =>
  `${CATEGORIES[index % CATEGORIES.length]!}-seed_${index}`;

const seed = (
  store: PostgresEventStore,
  total: number,
  callers: number,
  eventsPerAppend: number,
  streams: number,
): Promise<Seeding> =>
  seedThroughStore(store, { total, callers, eventsPerAppend, streams }, (index, count, caller) => {
    // One append stands for one command: one correlation id, one actor.
    const command = randomUUID();
    const metadata = {
      actor: `user-${index % 25}`,
      correlationId: command,
      causationId: command,
      schemaVersion: 1,
    };
    return {
      streamId: streamOf(index % streams),
      events: Array.from({ length: count }, (_, i): NewEvent => {
        const sequence = index * eventsPerAppend + i;
        return {
          type: TYPES[sequence % TYPES.length]!,
          data: orderPlaced(caller, sequence),
          metadata,
        };
      }),
    };
  });

// ---------------------------------------------------------------------------------------------
// (a) Rebuild against the physical floor.

type RebuildPath = 'sql' | 'events';

interface RebuildRun {
  path: RebuildPath;
  batchSize: number;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Share of the wall time spent in readAll (round trip + row decoding). */
  readShare: number;
  /** Time per batch: read + apply + commit. */
  batch: { p50Ms: number; p99Ms: number };
  read: { p50Ms: number; p99Ms: number };
  clientCpu: number;
  machineBusy: number | null;
}

interface FloorRun {
  events: number;
  seconds: number;
  eventsPerSec: number;
  machineBusy: number | null;
}

async function timeRebuild(
  target: PostgresTarget,
  inner: EventStore,
  path: RebuildPath,
  batchSize: number,
  expected: number,
): Promise<RebuildRun> {
  const store = new NotingStore(inner);
  const batches = new LatencySamples();
  const cpu = process.cpuUsage();
  const ticks = machineTicks();
  const started = now();
  let previous = started;
  const result = await target.rebuild(store, {
    batchSize,
    onProgress: () => {
      const at = now();
      batches.add(at - previous);
      previous = at;
    },
  });
  const ms = now() - started;
  const used = process.cpuUsage(cpu);
  if (result.events !== expected) {
    throw new Error(`rebuild applied ${result.events} events, expected ${expected}`);
  }
  if (result.via !== path) throw new Error(`rebuild went via ${result.via}, expected ${path}`);
  const batch = batches.stats();
  const read = store.reads.stats();
  return {
    path,
    batchSize,
    events: result.events,
    seconds: ms / 1000,
    eventsPerSec: (result.events / ms) * 1000,
    readShare: store.readMs / ms,
    batch: { p50Ms: batch.p50Ms, p99Ms: batch.p99Ms },
    read: { p50Ms: read.p50Ms, p99Ms: read.p99Ms },
    clientCpu: (used.user + used.system) / 1000 / ms,
    machineBusy: machineBusy(ticks),
  };
}

const FLOOR_SCHEMA = 'bench_floor';

/**
 * One INSERT ... SELECT into a fresh table made by the projection's own DDL (setup, then its six
 * secondary indexes). `indexesAfter`: the indexes are created after the INSERT instead, in the
 * same transaction, with the rebuild's maintenance_work_mem (the SQL rebuild path in one go).
 */
async function timeFloor(pool: pg.Pool, expected: number, indexesAfter = false): Promise<FloorRun> {
  const client = await pool.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${FLOOR_SCHEMA} CASCADE`);
    await client.query(`CREATE SCHEMA ${FLOOR_SCHEMA}`);
    await auditTrail.setup(client, FLOOR_SCHEMA);
    if (!indexesAfter) await auditTrail.indexes!(client, FLOOR_SCHEMA);
    const ticks = machineTicks();
    const started = now();
    if (indexesAfter) {
      await client.query('BEGIN');
      await client.query(`SET LOCAL maintenance_work_mem = '256MB'`);
    }
    const result = await client.query(
      `INSERT INTO ${FLOOR_SCHEMA}.audit_trail
         (position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id)
       SELECT position, recorded_at, stream_id, split_part(stream_id, '-', 1), revision, type, event_id,
              metadata->>'actor', metadata->>'correlationId', metadata->>'causationId'
         FROM qcat_events`,
    );
    if (indexesAfter) {
      await auditTrail.indexes!(client, FLOOR_SCHEMA);
      await client.query('COMMIT');
    }
    const ms = now() - started;
    const busy = machineBusy(ticks);
    if (result.rowCount !== expected) {
      throw new Error(`floor inserted ${result.rowCount ?? 0} rows, expected ${expected}`);
    }
    await client.query(`DROP SCHEMA ${FLOOR_SCHEMA} CASCADE`);
    return {
      events: expected,
      seconds: ms / 1000,
      eventsPerSec: (expected / ms) * 1000,
      machineBusy: busy,
    };
  } finally {
    client.release();
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return percentile(Float64Array.from(sorted), 0.5);
};

async function scenarioA(
  server: BenchServer,
): Promise<{ goals: Goal[]; json: Record<string, unknown> }> {
  const total = numberOption('events', 1_000_000);
  const callers = numberOption('seed-callers', 8);
  const eventsPerAppend = numberOption('seed-append', 1250);
  const streams = numberOption('seed-streams', 1000);
  const rounds = numberOption('rounds', 1);
  const defaultBatch = 5000; // PostgresTarget.rebuild's default
  const batchSizes = listOption('rebuild-batches', String(defaultBatch)).map(Number);
  if (!batchSizes.includes(defaultBatch)) batchSizes.unshift(defaultBatch);
  // sql: the path a rebuild takes over the PostgreSQL log (the target); events: the one it takes
  // over EventStoreDB or for a projection without rebuildSql, shown for comparison.
  const paths = listOption('rebuild-paths', 'sql,events') as RebuildPath[];
  if (!paths.includes('sql')) paths.unshift('sql');

  console.log(`\n(a) Rebuild of ${PROJECTION} over ${formatInt(total)} events`);
  const database = await createDatabase(server, 'proj_rebuild');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  pool.on('error', () => undefined);
  try {
    console.log(
      `  seeding through appendToStream: ${callers} concurrent callers, ${formatInt(eventsPerAppend)} events per append, ${formatInt(streams)} streams`,
    );
    const seeding = await seed(store, total, callers, eventsPerAppend, streams);
    console.log(
      `  seeded ${formatInt(seeding.events)} events in ${seeding.seconds.toFixed(1)} s (${formatInt(seeding.eventsPerSec)} events/s)`,
    );
    const vacuumStarted = now();
    await execute(database.url, 'VACUUM ANALYZE qcat_events');
    const [size] = await execute<{ size: string }>(
      database.url,
      `SELECT pg_size_pretty(pg_total_relation_size('qcat_events')) AS size`,
    );
    console.log(
      `  VACUUM ANALYZE qcat_events: ${((now() - vacuumStarted) / 1000).toFixed(1)} s; qcat_events with indexes: ${size?.size ?? '?'}`,
    );

    // The service's wiring over the PostgreSQL log (ProjectionService's logInDatabase): the store
    // handed to rebuild() is a wrapper (it times readAll), so the target is told the log is here.
    const targets: Record<RebuildPath, PostgresTarget> = {
      sql: new PostgresTarget(pool, auditTrail, { logInDatabase: true }),
      events: new PostgresTarget(pool, auditTrail),
    };
    await targets.sql.ensure();

    const floors: FloorRun[] = [];
    const floorsAfter: FloorRun[] = [];
    const rebuilds: RebuildRun[] = [];
    for (let round_ = 1; round_ <= rounds; round_++) {
      await checkpoint(database.url);
      const floor = await timeFloor(pool, seeding.events);
      floors.push(floor);
      console.log(
        `  round ${round_}: floor INSERT ... SELECT ${floor.seconds.toFixed(2)} s (${formatInt(floor.eventsPerSec)} events/s)`,
      );
      await checkpoint(database.url);
      const floorAfter = await timeFloor(pool, seeding.events, true);
      floorsAfter.push(floorAfter);
      console.log(
        `  round ${round_}: INSERT ... SELECT, then CREATE INDEX ${floorAfter.seconds.toFixed(2)} s (${formatInt(floorAfter.eventsPerSec)} events/s)`,
      );
      for (const path of paths) {
        for (const batchSize of batchSizes) {
          await checkpoint(database.url);
          const run = await timeRebuild(targets[path], store, path, batchSize, seeding.events);
          rebuilds.push(run);
          console.log(
            `  round ${round_}: rebuild via ${path} (batch ${formatInt(batchSize)}) ${run.seconds.toFixed(2)} s (${formatInt(run.eventsPerSec)} events/s)`,
          );
        }
      }
    }

    const typicalOf = <T extends { eventsPerSec: number }>(runs: readonly T[], rate: number): T =>
      runs.reduce((a, b) =>
        Math.abs(b.eventsPerSec - rate) < Math.abs(a.eventsPerSec - rate) ? b : a,
      );
    const floorRate = median(floors.map((floor) => floor.eventsPerSec));
    const floorAfterRate = median(floorsAfter.map((floor) => floor.eventsPerSec));
    const byBatch = paths.flatMap((path) =>
      batchSizes.map((batchSize) => {
        const runs = rebuilds.filter((run) => run.path === path && run.batchSize === batchSize);
        const rate = median(runs.map((run) => run.eventsPerSec));
        // The run closest to the median stands for the path and batch size in the table.
        return { path, batchSize, rate, typical: typicalOf(runs, rate) };
      }),
    );
    const chosen = byBatch.find(
      (entry) => entry.path === 'sql' && entry.batchSize === defaultBatch,
    )!;
    const floorTypical = typicalOf(floors, floorRate);
    const floorAfterTypical = typicalOf(floorsAfter, floorAfterRate);

    console.log(
      `\n  Rebuild of ${PROJECTION}, ${formatInt(seeding.events)} events${rounds > 1 ? `, median of ${rounds} rounds` : ''}`,
    );
    printTable(
      [
        'contender',
        'events/s',
        's',
        'batch p50 ms',
        'batch p99 ms',
        'read share',
        'read p50 ms',
        'client CPU',
        'machine busy',
        'vs floor',
      ],
      [
        ...byBatch.map(({ path, batchSize, rate, typical }) => [
          `QCAT target.rebuild(store) via ${path}, batch ${formatInt(batchSize)}${batchSize === defaultBatch ? ' (default)' : ''}`,
          formatInt(rate),
          typical.seconds.toFixed(2),
          formatMs(typical.batch.p50Ms),
          formatMs(typical.batch.p99Ms),
          `${(typical.readShare * 100).toFixed(0)}%`,
          formatMs(typical.read.p50Ms),
          `${(typical.clientCpu * 100).toFixed(0)}%`,
          formatBusy(typical.machineBusy),
          formatRatio(rate / floorRate),
        ]),
        [
          'floor: one INSERT ... SELECT in SQL',
          formatInt(floorRate),
          floorTypical.seconds.toFixed(2),
          '',
          '',
          '',
          '',
          '',
          formatBusy(floorTypical.machineBusy),
          formatRatio(1),
        ],
        [
          'INSERT ... SELECT, then CREATE INDEX',
          formatInt(floorAfterRate),
          floorAfterTypical.seconds.toFixed(2),
          '',
          '',
          '',
          '',
          '',
          formatBusy(floorAfterTypical.machineBusy),
          formatRatio(floorAfterRate / floorRate),
        ],
      ],
    );
    console.log(
      '  via sql: filled from qcat_events in SQL, indexes built after, then caught up event by event and switched (the path over the PostgreSQL log); via events: event by event (EventStoreDB, projections without rebuildSql)',
    );
    console.log(
      `  QCAT/reference (rebuild/floor): ${formatRatio(chosen.rate / floorRate)}; seeding through appendToStream: ${seeding.seconds.toFixed(1)} s (${formatInt(seeding.eventsPerSec)} events/s)`,
    );
    const goal: Goal = {
      label: `(a) rebuild events/s (via sql, batch ${formatInt(defaultBatch)})`,
      actual: chosen.rate,
      bound: TARGET_REBUILD_EVENTS_PER_SEC,
      direction: 'min',
      format: formatInt,
    };
    const runJson = (run: RebuildRun): Record<string, unknown> => ({
      path: run.path,
      batchSize: run.batchSize,
      eventsPerSec: round(run.eventsPerSec, 0),
      seconds: round(run.seconds, 3),
      readShare: round(run.readShare, 3),
      batchP50Ms: round(run.batch.p50Ms, 2),
      batchP99Ms: round(run.batch.p99Ms, 2),
      readP50Ms: round(run.read.p50Ms, 2),
      clientCpu: round(run.clientCpu, 3),
      machineBusy: run.machineBusy === null ? null : round(run.machineBusy, 3),
    });
    return {
      goals: [goal],
      json: {
        events: seeding.events,
        rounds,
        rebuild: { ...runJson(chosen.typical), eventsPerSec: round(chosen.rate, 0) },
        floor: {
          eventsPerSec: round(floorRate, 0),
          seconds: round(floorTypical.seconds, 3),
          machineBusy:
            floorTypical.machineBusy === null ? null : round(floorTypical.machineBusy, 3),
        },
        floorIndexesAfter: {
          eventsPerSec: round(floorAfterRate, 0),
          seconds: round(floorAfterTypical.seconds, 3),
          machineBusy:
            floorAfterTypical.machineBusy === null ? null : round(floorAfterTypical.machineBusy, 3),
        },
        qcatVsFloor: round(chosen.rate / floorRate, 3),
        target: goalJson(goal),
        batches: byBatch.map(({ path, batchSize, rate }) => ({
          path,
          batchSize,
          eventsPerSec: round(rate, 0),
        })),
        runs: rebuilds.map(runJson),
        floorRuns: floors.map((floor) => round(floor.eventsPerSec, 0)),
        floorIndexesAfterRuns: floorsAfter.map((floor) => round(floor.eventsPerSec, 0)),
        seed: {
          seconds: round(seeding.seconds, 1),
          eventsPerSec: round(seeding.eventsPerSec, 0),
          callers: seeding.callers,
          eventsPerAppend: seeding.eventsPerAppend,
          streams: seeding.streams,
        },
      },
    };
  } finally {
    await pool.end().catch(() => undefined);
    await store.close();
    await database.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// (b) Live lag.

/**
 * One connection that polls `qcat_read.audit_trail` for every watched position at once, then sleeps
 * `intervalMs` (one query per turn whatever the number watched, so it cannot queue up).
 */
class VisibilityPoller {
  private readonly client: pg.Client;
  private readonly watched = new Map<
    Position,
    { started: number; resolve: (ms: number | null) => void }
  >();
  private stopping = false;
  private wake: (() => void) | undefined;
  private done: Promise<void> | undefined;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    private readonly intervalMs: number,
  ) {
    this.client = new pg.Client({ connectionString: url });
    this.client.on('error', () => undefined);
  }

  async start(): Promise<void> {
    await this.client.connect();
    this.done = this.loop();
  }

  /** Resolves with the ms from `started` to the first poll that saw the row, or null on timeout. */
  watch(position: Position, started: number): Promise<number | null> {
    return new Promise((resolve) => {
      this.watched.set(position, { started, resolve });
      this.wake?.();
    });
  }

  private isStopping(): boolean {
    return this.stopping;
  }

  private async loop(): Promise<void> {
    while (!this.isStopping()) {
      if (this.watched.size === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      const positions = [...this.watched.keys()].map(String);
      const { rows } = await this.client.query<{ position: string }>({
        name: 'bench_poll',
        text: 'SELECT position FROM qcat_read.audit_trail WHERE position = ANY($1::bigint[])',
        values: [positions],
      });
      const at = now();
      for (const row of rows) {
        const position = BigInt(row.position);
        const entry = this.watched.get(position);
        if (!entry) continue;
        this.watched.delete(position);
        entry.resolve(at - entry.started);
      }
      for (const [position, entry] of this.watched) {
        if (at - entry.started > this.timeoutMs) {
          this.watched.delete(position);
          entry.resolve(null);
        }
      }
      await sleep(this.intervalMs);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.done;
    for (const entry of this.watched.values()) entry.resolve(null);
    await this.client.end().catch(() => undefined);
  }
}

interface Milestones {
  append: LatencySamples;
  delivered: LatencySamples;
  applied: LatencySamples;
  waitFor: LatencySamples;
  /** waitFor − append, per event: the projection's own share. */
  share: LatencySamples;
  sql: LatencySamples;
  /** waitFor on the SQL-sampled events only, to compare like with like. */
  waitForSampled: LatencySamples;
  /** waitFor − SQL poll, per sampled event (positive: waitFor answered later). */
  waitForMinusSql: number[];
}

const newMilestones = (): Milestones => ({
  append: new LatencySamples(),
  delivered: new LatencySamples(),
  applied: new LatencySamples(),
  waitFor: new LatencySamples(),
  share: new LatencySamples(),
  sql: new LatencySamples(),
  waitForSampled: new LatencySamples(),
  waitForMinusSql: [],
});

async function scenarioB(
  server: BenchServer,
): Promise<{ goals: Goal[]; json: Record<string, unknown> }> {
  const rate = numberOption('rate', 1000);
  const tickMs = numberOption('tick-ms', 10);
  const warmupSeconds = numberOption('warmup-seconds', 5);
  const seconds = numberOption('seconds', 20);
  const sqlEvery = Math.round(numberOption('sql-every', 20));
  const sqlPollMs = numberOption('sql-poll-ms', 2);
  const eventsPerAppend = Math.round(numberOption('events-per-append', 1));
  const capacitySeconds = numberOption('capacity-seconds', 5);
  const timeoutMs = 30_000;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const appendsPerTick = Math.max(1, Math.round(perTick / eventsPerAppend));
  const shape =
    eventsPerAppend === 1 ? 'single-event appends' : `appends of ${eventsPerAppend} events`;

  console.log(
    `\n(b) Live lag of ${PROJECTION}: ${formatInt((appendsPerTick * eventsPerAppend * 1000) / tickMs)} events/s (${appendsPerTick} ${shape} every ${tickMs} ms, wall-clock paced), ${warmupSeconds} s warm-up + ${seconds} s measured`,
  );
  const database = await createDatabase(server, 'proj_live');
  const inner = await PostgresEventStore.connect({ connectionString: database.url });
  const store = new NotingStore(inner);
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  pool.on('error', () => undefined);
  const probes = new pg.Pool({ connectionString: database.url, max: 2 });
  probes.on('error', () => undefined);
  const poller = new VisibilityPoller(database.url, timeoutMs, sqlPollMs);
  const service = new ProjectionService({
    pool,
    connectionString: database.url,
    eventStore: store,
    projections: [auditTrail],
    instanceId: 'bench',
  });

  // When each batch committed: the service's own target, observed (not replaced).
  const applied = new Map<Position, number>();
  const batchSizes = new LatencySamples();
  const applyMs = new LatencySamples();
  const serviceTarget = service.target(PROJECTION);
  if (!(serviceTarget instanceof PostgresTarget)) throw new Error('expected a PostgresTarget');
  const apply = serviceTarget.apply.bind(serviceTarget);
  serviceTarget.apply = async (events: readonly RecordedEvent[]): Promise<bigint> => {
    const started = now();
    const checkpointAfter = await apply(events);
    const at = now();
    if (store.noteDeliveries) {
      batchSizes.add(events.length);
      applyMs.add(at - started);
      for (const event of events) applied.set(event.position, at);
    }
    return checkpointAfter;
  };

  const samples = newMilestones();
  let timeouts = 0;
  let sqlTimeouts = 0;
  let dishonest = 0;
  let honestChecks = 0;
  const lateness = new LatencySamples();
  let recordedAppends = 0;

  /** One command's events: what the command handler would append. */
  const commandEvents = (sequence: number): NewEvent[] => {
    const command = randomUUID();
    const metadata = {
      actor: `user-${sequence % 25}`,
      correlationId: command,
      causationId: command,
      schemaVersion: 1,
    };
    return Array.from({ length: eventsPerAppend }, (_, i) => ({
      type: TYPES[(sequence + i) % TYPES.length]!,
      data: orderPlaced(0, sequence * eventsPerAppend + i),
      metadata,
    }));
  };
  const streamOfLive = (sequence: number): string => `order-live_${sequence % 100}`;
  const firstQuarter = { append: new LatencySamples(), waitFor: new LatencySamples() };
  const lastQuarter = { append: new LatencySamples(), waitFor: new LatencySamples() };
  let quarterOf: (tick: number) => 'first' | 'last' | null = () => null;

  /** One append, then its last event followed to the view. */
  const track = async (sequence: number, record: boolean, tick: number): Promise<void> => {
    const events = commandEvents(sequence);
    const stream = streamOfLive(sequence);
    const started = now();
    const { position } = await store.appendToStream(stream, events);
    const appended = now() - started;
    const sampled = record && sequence % sqlEvery === 0;
    const sql = sampled ? poller.watch(position, started) : Promise.resolve(null);
    const reached = await service.waitFor(PROJECTION, position, timeoutMs);
    const visible = now() - started;
    let honest: Promise<boolean> = Promise.resolve(true);
    if (sampled && reached) {
      honest = probes
        .query<{ found: boolean }>({
          name: 'bench_visible',
          text: 'SELECT EXISTS (SELECT 1 FROM qcat_read.audit_trail WHERE position = $1) AS found',
          values: [String(position)],
        })
        .then(({ rows }) => rows[0]?.found === true);
    }
    const [sqlMs, wasVisible] = await Promise.all([sql, honest]);
    if (!record) return;
    recordedAppends++;
    if (!reached) {
      timeouts++;
      return;
    }
    samples.append.add(appended);
    samples.waitFor.add(visible);
    samples.share.add(visible - appended);
    const quarter = quarterOf(tick);
    if (quarter) {
      const into = quarter === 'first' ? firstQuarter : lastQuarter;
      into.append.add(appended);
      into.waitFor.add(visible);
    }
    const deliveredAt = store.delivered.get(position);
    if (deliveredAt !== undefined) samples.delivered.add(deliveredAt - started);
    const appliedAt = applied.get(position);
    if (appliedAt !== undefined) samples.applied.add(appliedAt - started);
    if (sampled) {
      honestChecks++;
      if (!wasVisible) dishonest++;
      if (sqlMs === null) sqlTimeouts++;
      else {
        samples.sql.add(sqlMs);
        samples.waitForSampled.add(visible);
        samples.waitForMinusSql.push(visible - sqlMs);
      }
    }
  };

  try {
    // Reference: how many appends of this shape the store takes at most, without the projection
    // (closed loop, 100 concurrent callers), so an offered load beyond it is recognised as such.
    let capacityAppends = 0;
    const capacityEnd = now() + capacitySeconds * 1000;
    const capacityStarted = now();
    await runWorkers(100, async (caller) => {
      while (now() < capacityEnd) {
        await store.appendToStream(streamOfLive(caller), commandEvents(caller));
        capacityAppends++;
      }
    });
    const capacityPerSec = (capacityAppends / (now() - capacityStarted)) * 1000;
    console.log(
      `  append capacity without the projection (100 concurrent callers, ${capacitySeconds} s): ${formatInt(capacityPerSec)} ${shape}/s = ${formatInt(capacityPerSec * eventsPerAppend)} events/s`,
    );

    await poller.start();
    await service.start();
    for (let attempt = 0; ; attempt++) {
      const [status] = await service.status();
      if (status?.state === 'running') break;
      if (attempt > 500)
        throw new Error(`projection did not start: ${JSON.stringify(status?.state)}`);
      await sleep(10);
    }

    const inFlight: Promise<void>[] = [];
    const ticks = machineTicks();
    const cpu = process.cpuUsage();
    let measuredFrom = 0;
    let sequence = 0;
    const started = now();
    const warmupTicks = Math.round((warmupSeconds * 1000) / tickMs);
    const measuredTicks = Math.round((seconds * 1000) / tickMs);
    const totalTicks = warmupTicks + measuredTicks;
    quarterOf = (tick) => {
      const offset = tick - warmupTicks;
      if (offset < 0) return null;
      if (offset < measuredTicks / 4) return 'first';
      return offset >= (measuredTicks * 3) / 4 ? 'last' : null;
    };
    let busyTicks = ticks;
    let cpuFrom = cpu;
    for (let tick = 0; tick < totalTicks; tick++) {
      const due = started + tick * tickMs;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const record = tick >= warmupTicks;
      if (tick === warmupTicks) {
        measuredFrom = now();
        store.noteDeliveries = true;
        busyTicks = machineTicks();
        cpuFrom = process.cpuUsage();
      }
      if (record) lateness.add(now() - due);
      for (let i = 0; i < appendsPerTick; i++) inFlight.push(track(sequence++, record, tick));
    }
    const writeMs = now() - measuredFrom;
    await Promise.all(inFlight);
    const busy = machineBusy(busyTicks);
    const used = process.cpuUsage(cpuFrom);
    const clientCpu = (used.user + used.system) / 1000 / (now() - measuredFrom);
    const recordedEvents = recordedAppends * eventsPerAppend;
    const achieved = (recordedEvents / writeMs) * 1000;

    const stats = (
      samples_: LatencySamples,
    ): { count: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number } => {
      const s = samples_.stats();
      const sorted = samples_.sorted();
      return {
        count: s.count,
        p50Ms: round(s.p50Ms, 2),
        p95Ms: round(percentile(sorted, 0.95), 2),
        p99Ms: round(s.p99Ms, 2),
        maxMs: round(s.maxMs, 2),
      };
    };
    const row = (label: string, samples_: LatencySamples): string[] => {
      const s = stats(samples_);
      return [
        label,
        formatInt(s.count),
        formatMs(s.p50Ms),
        formatMs(s.p95Ms),
        formatMs(s.p99Ms),
        formatMs(s.maxMs),
      ];
    };

    console.log(
      `\n  Live lag, ms from just before appendToStream; ${formatInt(recordedAppends)} appends = ${formatInt(recordedEvents)} events in ${(writeMs / 1000).toFixed(1)} s = ${formatInt(achieved)} events/s achieved`,
    );
    printTable(
      ['measure', 'appends', 'p50', 'p95', 'p99', 'max'],
      [
        row('visible: waitFor answers (every append)', samples.waitFor),
        row(`visible: SQL poll of qcat_read (1 in ${sqlEvery})`, samples.sql),
        row('  waitFor, same sampled events', samples.waitForSampled),
        row('reference: append alone (appendToStream)', samples.append),
        row("projection's share: waitFor − append", samples.share),
      ],
    );
    console.log('\n  Where the time goes (cumulative, ms from just before appendToStream)');
    printTable(
      ['milestone', 'appends', 'p50', 'p95', 'p99', 'max'],
      [
        row('1 append resolved (committed)', samples.append),
        row("2 runner's subscription delivered it", samples.delivered),
        row('3 its batch committed (target.apply)', samples.applied),
        row('4 waitFor answered (2 ms polling)', samples.waitFor),
      ],
    );
    const differences = Float64Array.from(samples.waitForMinusSql).sort();
    const batch = batchSizes.stats();
    const applyStats = applyMs.stats();
    console.log(
      `  waitFor − SQL poll per sampled event: p50 ${formatMs(percentile(differences, 0.5))}, min ${formatMs(differences[0] ?? 0)}, max ${formatMs(differences[differences.length - 1] ?? 0)} ms; rows missing when waitFor said visible: ${dishonest} of ${honestChecks}`,
    );
    console.log(
      `  projection batches: ${formatInt(batch.count)}, events per batch mean ${batch.meanMs.toFixed(1)} / max ${formatInt(batch.maxMs)}; target.apply transaction p50 ${formatMs(applyStats.p50Ms)} / p99 ${formatMs(applyStats.p99Ms)} / max ${formatMs(applyStats.maxMs)} ms`,
    );
    const lateStats = lateness.stats();
    const trend = {
      appendP50Ms: [firstQuarter.append.stats().p50Ms, lastQuarter.append.stats().p50Ms],
      waitForP50Ms: [firstQuarter.waitFor.stats().p50Ms, lastQuarter.waitFor.stats().p50Ms],
    };
    console.log(
      `  first vs last quarter of the window, p50: append ${formatMs(trend.appendP50Ms[0]!)} → ${formatMs(trend.appendP50Ms[1]!)} ms, waitFor ${formatMs(trend.waitForP50Ms[0]!)} → ${formatMs(trend.waitForP50Ms[1]!)} ms (growing = the offered load exceeds what is served); append capacity without the projection ${formatInt(capacityPerSec * eventsPerAppend)} events/s`,
    );
    console.log(
      `  writer tick lateness p99 ${formatMs(lateStats.p99Ms)} / max ${formatMs(lateStats.maxMs)} ms; timeouts (> ${timeoutMs / 1000} s): waitFor ${timeouts}, SQL poll ${sqlTimeouts}; this process CPU ${(clientCpu * 100).toFixed(0)}% of one core, machine busy ${formatBusy(busy)}`,
    );

    const waitForStats = samples.waitFor.stats();
    const sqlStats = samples.sql.stats();
    const goals: Goal[] = [
      {
        label: '(b) live lag p99, waitFor (ms)',
        actual: waitForStats.p99Ms,
        bound: TARGET_LIVE_P99_MS,
        direction: 'max',
        format: formatMs,
      },
      {
        label: `(b) live lag p99, SQL poll 1 in ${sqlEvery} (ms)`,
        actual: sqlStats.p99Ms,
        bound: TARGET_LIVE_P99_MS,
        direction: 'max',
        format: formatMs,
      },
    ];
    return {
      goals,
      json: {
        rate,
        tickMs,
        appendsPerTick,
        eventsPerAppend,
        warmupSeconds,
        seconds: round(writeMs / 1000, 2),
        events: recordedEvents,
        achievedPerSec: round(achieved, 0),
        waitFor: stats(samples.waitFor),
        sql: { ...stats(samples.sql), every: sqlEvery },
        waitForSampled: stats(samples.waitForSampled),
        append: stats(samples.append),
        projectionShare: stats(samples.share),
        delivered: stats(samples.delivered),
        applied: stats(samples.applied),
        waitForMinusSqlMs: {
          p50: round(percentile(differences, 0.5), 2),
          min: round(differences[0] ?? 0, 2),
          max: round(differences[differences.length - 1] ?? 0, 2),
        },
        honesty: { checked: honestChecks, missing: dishonest },
        timeouts: { waitFor: timeouts, sql: sqlTimeouts },
        batches: {
          count: batch.count,
          meanEvents: round(batch.meanMs, 2),
          maxEvents: batch.maxMs,
          applyP50Ms: round(applyStats.p50Ms, 2),
          applyP99Ms: round(applyStats.p99Ms, 2),
        },
        writerLatenessP99Ms: round(lateStats.p99Ms, 2),
        trend: {
          appendP50Ms: trend.appendP50Ms.map((value) => round(value, 2)),
          waitForP50Ms: trend.waitForP50Ms.map((value) => round(value, 2)),
        },
        capacity: {
          appendsPerSec: round(capacityPerSec, 0),
          eventsPerSec: round(capacityPerSec * eventsPerAppend, 0),
        },
        clientCpu: round(clientCpu, 3),
        machineBusy: busy === null ? null : round(busy, 3),
        target: goalJson(goals[0]!),
        targetSql: goalJson(goals[1]!),
      },
    };
  } finally {
    await poller.stop();
    await service.stop();
    await probes.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await store.close();
    await database.drop();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const scenarios = listOption('scenarios', 'a,b');
  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:projections — ${describeServer(server, info)}`);
  const goals: Goal[] = [];
  const summary: Record<string, unknown> = {
    benchmark: 'projections',
    server: { version: info.version, source: server.source, cpus: info.cpus, fsync: info.fsync },
  };
  if (scenarios.includes('a')) {
    const a = await scenarioA(server);
    goals.push(...a.goals);
    summary['rebuild'] = a.json;
  }
  if (scenarios.includes('b')) {
    const b = await scenarioB(server);
    goals.push(...b.goals);
    summary['live'] = b.json;
  }
  console.log('\nTargets');
  printGoals(goals);
  summary['met'] = goals.every(goalMet);
  return summary;
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
