/**
 * Catch-up read of `$all`: QCAT's `readAll({ after, maxCount })` in batches over 1,000,000 events,
 * against a raw `pg` keyset loop over the same table returning the same columns.
 *
 *   npm run bench:read
 *   npm run bench:read -- --events=1000000 --batch-sizes=1000,5000,20000 --default-batch=5000 --repeat=2
 *
 * Server: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL; one fresh
 * database, dropped at the end. The events are seeded through QCAT's own appendToStream (large
 * appends from concurrent callers, so group commit fills its transactions) and the seeding time is
 * reported. One untimed pass warms the caches, then each batch size is read by QCAT and by the raw
 * loop, alternately, `--repeat` times; the best pass of each counts (the least disturbed by other
 * load on the machine). The last line of output is one JSON object. Targets are reported, not
 * asserted: the exit code is 0 unless the benchmark itself failed.
 */
import pg from 'pg';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { START, type NewEvent, type Position } from '../core/eventstore/event-store.js';
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
  formatRatio,
  listOption,
  now,
  numberOption,
  orderPlaced,
  printTable,
  printTargets,
  round,
  serverInfo,
  startServer,
  type LatencyStats,
  seedThroughStore,
  type Seeding,
} from './support.js';

const TARGET_EVENTS_PER_SEC = 200_000;

interface Pass {
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Time per batch (one round trip). */
  batch: LatencyStats;
  clientCpu: number;
}

// ---------------------------------------------------------------------------------------------
// Seeding through QCAT: plain OrderPlaced events.

const seed = (
  store: PostgresEventStore,
  total: number,
  callers: number,
  eventsPerAppend: number,
  streams: number,
): Promise<Seeding> =>
  seedThroughStore(store, { total, callers, eventsPerAppend, streams }, (index, count, caller) => ({
    streamId: `order-seed_${index % streams}`,
    events: Array.from({ length: count }, (_, i): NewEvent => ({
      type: 'OrderPlaced',
      data: orderPlaced(caller, index * eventsPerAppend + i),
      metadata: { actor: BENCH_ACTOR },
    })),
  }));

// ---------------------------------------------------------------------------------------------
// Readers: each returns the number of events in the batch and the last position.

type ReadBatch = (after: Position, maxCount: number) => Promise<{ count: number; last: Position }>;

const qcatReader =
  (store: PostgresEventStore): ReadBatch =>
  async (after, maxCount) => {
    const events = await store.readAll({ after, maxCount });
    const last = events[events.length - 1];
    return { count: events.length, last: last ? last.position : after };
  };

interface RawRow {
  position: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: unknown;
  metadata: unknown;
  recorded_ms: number;
}

/** The same columns as QCAT's readAll, keyset on position, rows left as pg returns them. */
const rawReader =
  (client: pg.Client): ReadBatch =>
  async (after, maxCount) => {
    const { rows } = await client.query<RawRow>({
      name: 'raw_read_all',
      text: `SELECT position, stream_id, revision, event_id, type, data, metadata,
                    (extract(epoch FROM recorded_at) * 1000)::float8 AS recorded_ms
               FROM qcat_events WHERE position > $1 ORDER BY position LIMIT $2`,
      values: [String(after), maxCount],
    });
    const last = rows[rows.length - 1];
    return { count: rows.length, last: last ? BigInt(last.position) : after };
  };

/** Reads `$all` from the start to the end in batches of `maxCount`. */
async function readPass(read: ReadBatch, maxCount: number, expected: number): Promise<Pass> {
  const batches = new LatencySamples();
  let after: Position = START;
  let events = 0;
  const cpu = process.cpuUsage();
  const started = now();
  for (;;) {
    const start = now();
    const { count, last } = await read(after, maxCount);
    batches.add(now() - start);
    if (count > 0 && last <= after) throw new Error(`positions went backwards after ${after}`);
    events += count;
    after = last;
    if (count < maxCount) break;
  }
  const ms = now() - started;
  const used = process.cpuUsage(cpu);
  if (events !== expected) throw new Error(`read ${events} events, expected ${expected}`);
  return {
    events,
    seconds: ms / 1000,
    eventsPerSec: (events / ms) * 1000,
    batch: batches.stats(),
    clientCpu: (used.user + used.system) / 1000 / ms,
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const total = numberOption('events', 1_000_000);
  const batchSizes = listOption('batch-sizes', '1000,5000,20000').map(Number);
  const repeat = numberOption('repeat', 2);
  const defaultBatch = numberOption('default-batch', 5000);
  if (!batchSizes.includes(defaultBatch)) batchSizes.push(defaultBatch);
  batchSizes.sort((a, b) => a - b);
  const callers = numberOption('seed-callers', 8);
  const eventsPerAppend = numberOption('seed-append', 1250);
  const streams = numberOption('seed-streams', 1000);

  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:read — ${describeServer(server, info)}`);
  const database = await createDatabase(server, 'read');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  const raw = new pg.Client({ connectionString: database.url });
  raw.on('error', () => undefined);
  await raw.connect();
  try {
    console.log(
      `\nSeeding ${formatInt(total)} events through QCAT appendToStream: ${callers} concurrent callers, ${formatInt(eventsPerAppend)} events per append, ${formatInt(streams)} streams`,
    );
    const seeding = await seed(store, total, callers, eventsPerAppend, streams);
    const [size] = await execute<{ size: string }>(
      database.url,
      `SELECT pg_size_pretty(pg_total_relation_size('qcat_events')) AS size`,
    );
    console.log(
      `  seeded ${formatInt(seeding.events)} events in ${seeding.seconds.toFixed(1)} s (${formatInt(seeding.eventsPerSec)} events/s); qcat_events with indexes: ${size?.size ?? '?'}`,
    );
    await checkpoint(database.url);

    console.log(`\nWarm-up: one untimed raw pass over all ${formatInt(total)} events`);
    await readPass(rawReader(raw), defaultBatch, seeding.events);

    const results: { batch: number; qcat: Pass; raw: Pass }[] = [];
    const best = (a: Pass | undefined, b: Pass): Pass =>
      a && a.eventsPerSec >= b.eventsPerSec ? a : b;
    for (const batch of batchSizes) {
      let qcat: Pass | undefined;
      let reference: Pass | undefined;
      for (let round = 1; round <= repeat; round++) {
        const qcatPass = await readPass(qcatReader(store), batch, seeding.events);
        const rawPass = await readPass(rawReader(raw), batch, seeding.events);
        console.log(
          `  maxCount ${formatInt(batch)}, pass ${round}: qcat ${formatInt(qcatPass.eventsPerSec)} events/s, raw ${formatInt(rawPass.eventsPerSec)} events/s`,
        );
        qcat = best(qcat, qcatPass);
        reference = best(reference, rawPass);
      }
      results.push({ batch, qcat: qcat!, raw: reference! });
    }

    console.log(
      `\nCatch-up read of $all, ${formatInt(seeding.events)} events, readAll({ after, maxCount }) until a short batch; best of ${repeat} passes`,
    );
    printTable(
      [
        'maxCount',
        'qcat events/s',
        'qcat s',
        'batch p50 ms',
        'batch p99 ms',
        'client CPU',
        'raw events/s',
        'raw s',
        'qcat/raw',
      ],
      results.map(({ batch, qcat, raw: reference }) => [
        `${formatInt(batch)}${batch === defaultBatch ? ' (default)' : ''}`,
        formatInt(qcat.eventsPerSec),
        qcat.seconds.toFixed(2),
        formatMs(qcat.batch.p50Ms),
        formatMs(qcat.batch.p99Ms),
        `${(qcat.clientCpu * 100).toFixed(0)}%`,
        formatInt(reference.eventsPerSec),
        reference.seconds.toFixed(2),
        formatRatio(qcat.eventsPerSec / reference.eventsPerSec),
      ]),
    );
    const chosen = results.find((result) => result.batch === defaultBatch)!;
    const fastest = results.reduce((a, b) => (b.qcat.eventsPerSec > a.qcat.eventsPerSec ? b : a));
    console.log('');
    console.log(
      `  default batch size ${formatInt(defaultBatch)} (fastest measured: ${formatInt(fastest.batch)} at ${formatInt(fastest.qcat.eventsPerSec)} events/s)`,
    );
    const target = {
      label: `QCAT events/s at maxCount ${formatInt(defaultBatch)}`,
      actual: chosen.qcat.eventsPerSec,
      min: TARGET_EVENTS_PER_SEC,
      format: formatInt,
    };
    printTargets([target]);
    console.log(
      `  QCAT/raw at maxCount ${formatInt(defaultBatch)}: ${formatRatio(chosen.qcat.eventsPerSec / chosen.raw.eventsPerSec)}`,
    );
    console.log(
      `  seeding through appendToStream: ${seeding.seconds.toFixed(1)} s for ${formatInt(seeding.events)} events (${formatInt(seeding.eventsPerSec)} events/s)`,
    );

    const pass = (value: Pass): Record<string, number> => ({
      eventsPerSec: round(value.eventsPerSec, 0),
      seconds: round(value.seconds, 3),
      batchP50Ms: round(value.batch.p50Ms, 3),
      batchP99Ms: round(value.batch.p99Ms, 3),
      clientCpu: round(value.clientCpu, 3),
    });
    return {
      benchmark: 'read',
      server: { version: info.version, source: server.source, cpus: info.cpus },
      events: seeding.events,
      defaultBatch,
      qcat: pass(chosen.qcat),
      raw: pass(chosen.raw),
      qcatVsRaw: round(chosen.qcat.eventsPerSec / chosen.raw.eventsPerSec, 3),
      target: checkTarget(target),
      fastestBatch: fastest.batch,
      repeat,
      batches: results.map(({ batch, qcat, raw: reference }) => ({
        batch,
        qcat: round(qcat.eventsPerSec, 0),
        raw: round(reference.eventsPerSec, 0),
      })),
      seed: {
        seconds: round(seeding.seconds, 1),
        eventsPerSec: round(seeding.eventsPerSec, 0),
        callers: seeding.callers,
        eventsPerAppend: seeding.eventsPerAppend,
        streams: seeding.streams,
      },
    };
  } finally {
    await raw.end().catch(() => undefined);
    await store.close();
  }
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
