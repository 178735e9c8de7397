/**
 * The log at scale (issue 22): grows a PostgreSQL event log to 10 million events in a realistic
 * mix and prints, at 1M, 5M and 10M events, what should not grow with the log's age.
 *
 *   npm run bench:scale              # 1M → 5M → 10M (up to ~20 minutes)
 *   npm run bench:scale -- --quick   # 1M → 3M, no backups (add --backups to measure them)
 *   npm run bench:scale -- --checkpoints=1000000,2000000
 *
 * The mix, per 100 positions: 10 orders of 5 events, 25 fills, 15 portfolio valuations, 5 risk
 * triggers, 5 strategy events, each kind in streams of its own. It is written server-side
 * (INSERT … SELECT, as a restore would), because appending 10M events through the API would take
 * hours here; those events carry placeholder hashes. What is measured is written through QCAT's
 * own store: appends (16 writers, one event each), a command on a 10,000-event risk stream (with
 * snapshots), an as-of read (positionAt + a stream up to that position), a page of the log
 * (readAll of 100 from a random position), an incremental backup of the events appended since
 * the previous backup, and the disk the log takes per million events. The reference of each
 * figure is its value at the first checkpoint, in the same run (target: within 1.2×).
 * The last line of output is one JSON object with every figure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { takeBackup } from '../backup/take-backup.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresSnapshotStore } from '../core/adapters/postgres/postgres-snapshot-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../core/commands/idempotency.js';
import type { NewEvent } from '../core/eventstore/event-store.js';
import { tradingStates, type RiskTriggerFiredData } from '../core/risk/trading-state.js';
import { snapshotSchemaOf } from '../core/snapshot-schemas.js';
import { readModelsBench } from './scale-read-models.js';
import {
  LatencySamples,
  cleanup,
  createDatabase,
  describeServer,
  formatInt,
  formatMs,
  formatRatio,
  listOption,
  now,
  onCleanup,
  printTable,
  round,
  runWorkers,
  serverInfo,
  startServer,
} from './support.js';

const T = Date.parse('2026-01-01T00:00:00Z');
const LONG_STREAM = 'risk-state-strategy-long';

/** Writes positions (from, to] of the mix server-side; streams, head and statistics follow. */
async function grow(pool: pg.Pool, from: number, to: number): Promise<void> {
  // As a restore does (bulk-import.ts): the secondary indexes are dropped while rows go in and
  // built again after, which is several times faster than maintaining them row by row.
  await pool.query(`ALTER TABLE qcat_events DROP CONSTRAINT qcat_events_event_id_key,
                      DROP CONSTRAINT qcat_events_stream_id_revision_key`);
  await pool.query('DROP INDEX qcat_events_recorded_at_brin');
  const chunk = 250_000;
  for (let start = from; start < to; start += chunk) {
    const end = Math.min(to, start + chunk);
    await pool.query(
      `WITH g AS (SELECT p, (p - 1) / 100 AS b, (p - 1) % 100 AS i FROM generate_series($1::bigint + 1, $2::bigint) AS p),
            m AS (
              SELECT p, b, i,
                CASE WHEN i < 50 THEN 'order-b' || b || '-' || (i / 5)
                     WHEN i < 75 THEN 'fills-b' || b
                     WHEN i < 90 THEN 'portfolio-b' || b
                     WHEN i < 95 THEN 'risk-state-strategy-b' || b
                     ELSE 'strategy-b' || b END AS stream,
                CASE WHEN i < 50 THEN i % 5 WHEN i < 75 THEN i - 50 WHEN i < 90 THEN i - 75
                     WHEN i < 95 THEN i - 90 ELSE i - 95 END AS rev
                FROM g)
       INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash)
       SELECT p, stream, rev,
              (lpad(to_hex(p), 12, '0') || '7000' || '8000' || lpad(to_hex(p), 12, '0'))::uuid,
              CASE WHEN i < 50 THEN (ARRAY['OrderPlaced','OrderAccepted','OrderPartiallyFilled','OrderFilled','OrderClosed'])[rev + 1]
                   WHEN i < 75 THEN 'FillRecorded' WHEN i < 90 THEN 'PortfolioValued'
                   WHEN i < 95 THEN 'RiskTriggerFired' ELSE 'StrategyParametersChanged' END,
              jsonb_build_object('id', stream, 'n', p, 'symbol', 'BTCUSDT', 'price', 64000 + (p % 1000) / 4.0,
                                 'quantity', 0.25 + (p % 7) * 0.05, 'strategyId', 'strategy-' || (b % 40),
                                 'portfolioId', 'paper-1h', 'at', $3::bigint + p * 10),
              jsonb_build_object('actor', 'bench', 'correlationId', md5(b::text)),
              to_timestamp(($3::bigint + p * 10) / 1000.0),
              md5(p::text) || md5((p + 1)::text)
         FROM m`,
      [start, end, T],
    );
  }
  await pool.query(
    `INSERT INTO qcat_streams (stream_id, revision, hash)
     SELECT DISTINCT ON (stream_id) stream_id, revision, hash FROM qcat_events
      WHERE position > $1 AND position <= $2 ORDER BY stream_id, revision DESC
     ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
    [from, to],
  );
  await pool.query(
    `UPDATE qcat_log_head SET position = $1, recorded_at = to_timestamp(($2::bigint + $1::bigint * 10) / 1000.0)`,
    [to, T],
  );
  await pool.query(`ALTER TABLE qcat_events ADD CONSTRAINT qcat_events_event_id_key UNIQUE (event_id),
                      ADD CONSTRAINT qcat_events_stream_id_revision_key UNIQUE (stream_id, revision)`);
  await pool.query(
    'CREATE INDEX qcat_events_recorded_at_brin ON qcat_events USING brin (recorded_at)',
  );
  await pool.query('VACUUM ANALYZE qcat_events');
}

const trigger = (i: number): RiskTriggerFiredData => ({
  triggerId: `daily_loss-strategy-long-${T + i}`,
  rule: 'daily_loss',
  scopeType: 'strategy',
  scopeId: 'long',
  threshold: 0.1,
  observed: 0.12,
  reference: 1000,
  value: 880,
  window: { from: T + i - 1000, to: T + i },
  action: 'REDUCING',
  until: T + i + 1,
  time: T + i,
});

interface Checkpoint {
  events: number;
  appendP50Ms: number;
  appendP99Ms: number;
  commandP50Ms: number;
  asOfP50Ms: number;
  logPageP50Ms: number;
  incrementalBackupMs: number;
  incrementalBackupEvents: number;
  diskMbPerMillion: number;
  growSeconds: number;
}

async function timeEach(
  count: number,
  run: (i: number) => Promise<unknown>,
): Promise<LatencySamples> {
  const samples = new LatencySamples();
  for (let i = 0; i < count; i++) {
    const start = now();
    await run(i);
    samples.add(now() - start);
  }
  return samples;
}

async function main(): Promise<Record<string, unknown>> {
  const quick = process.argv.includes('--quick');
  // A backup chain needs one full backup of the grown log (about 2 minutes per million events on
  // the busy development machine): on in the full run, off in --quick unless --backups is given.
  const backups = process.argv.includes('--backups') || !quick;
  const checkpoints = listOption(
    'checkpoints',
    quick ? '1000000,3000000' : '1000000,5000000,10000000',
  ).map(Number);
  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:scale — ${describeServer(server, info)}`);
  // The trading read model as the book ages, with and without retention (ADR 032).
  if (process.argv.includes('--read-models')) return readModelsBench(server, quick);
  console.log(
    `checkpoints: ${checkpoints.map(formatInt).join(', ')} events${quick ? ' (--quick)' : ''}`,
  );
  const started = now();
  const database = await createDatabase(server, 'scale');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  const pool = new pg.Pool({ connectionString: database.url, max: 3 });
  pool.on('error', () => undefined);
  const backupDir = await mkdtemp(join(tmpdir(), 'qcat-bench-scale-'));
  onCleanup(() => rm(backupDir, { recursive: true, force: true }));
  const commands = new CommandHandler({
    eventStore: store,
    idempotency: new InMemoryIdempotencyStore(),
    snapshots: { store: new PostgresSnapshotStore(pool), schemaOf: snapshotSchemaOf },
  });
  const backup = (kind: 'full' | 'incremental'): Promise<unknown> =>
    takeBackup({
      store,
      dir: backupDir,
      kind,
      storeInfo: { adapter: 'postgres', location: 'bench' },
    });
  const results: Checkpoint[] = [];
  let size = 0;
  let appended = 0;
  let commandNo = 0;
  try {
    for (const [index, target] of checkpoints.entries()) {
      const growStart = now();
      // Events appended by earlier measurements took positions: grow past them.
      const head = Number(await store.headPosition());
      await grow(pool, head, target);
      size = target;
      const growSeconds = (now() - growStart) / 1000;
      if (index === 0) {
        // The long stream, appended through the store, and the backup chain's full backup.
        for (let i = 0; i < 10_000; i += 1000) {
          const events: NewEvent[] = Array.from({ length: 1000 }, (_, j) => ({
            type: 'RiskTriggerFired',
            data: trigger(i + j),
            metadata: { actor: 'bench' },
          }));
          await store.appendToStream(LONG_STREAM, events);
        }
        if (backups) {
          const fullStart = now();
          await backup('full');
          console.log(
            `  full backup of ${formatInt(target)} events: ${((now() - fullStart) / 1000).toFixed(1)} s`,
          );
        }
      } else if (backups) {
        // Catch the chain up with the grown events (not timed: a day's backup, not one run's).
        await backup('incremental');
      }
      // Appends: 16 writers, one event each.
      const appendSamples = new LatencySamples();
      await runWorkers(16, async (writer) => {
        for (let i = 0; i < 125; i++) {
          const start = now();
          await store.appendToStream(`order-run${index}_${writer}_${i % 5}`, [
            {
              type: 'OrderPlaced',
              data: { writer, i, symbol: 'BTCUSDT' },
              metadata: { actor: 'bench' },
            },
          ]);
          appendSamples.add(now() - start);
          appended++;
        }
      });
      const appendStats = appendSamples.stats();
      const command = await timeEach(20, () =>
        commands.handle(
          tradingStates,
          LONG_STREAM,
          { type: 'FireTrigger', trigger: trigger(1_000_000 + commandNo++) },
          { actor: 'bench' },
        ),
      );
      const asOf = await timeEach(50, async (i) => {
        const p = 1 + ((i * 7_919_093) % (size - 100));
        const instant = new Date(T + p * 10);
        const position = await store.positionAt(instant);
        const b = Math.floor((p - 1) / 100);
        await store.readStream(`order-b${b}-${i % 10}`, { toPosition: position });
      });
      const page = await timeEach(50, (i) =>
        store.readAll({ after: BigInt(1 + ((i * 7_919_093) % (size - 100))), maxCount: 100 }),
      );
      const incrementalStart = now();
      if (backups) await backup('incremental');
      const incrementalBackupMs = backups ? now() - incrementalStart : Number.NaN;
      const { rows } = await pool.query<{ bytes: string; events: string }>(
        `SELECT pg_total_relation_size('qcat_events') + pg_total_relation_size('qcat_streams') AS bytes,
                (SELECT position FROM qcat_log_head) AS events`,
      );
      const bytes = Number(rows[0]?.bytes ?? 0);
      const events = Number(rows[0]?.events ?? 0);
      const result: Checkpoint = {
        events,
        appendP50Ms: appendStats.p50Ms,
        appendP99Ms: appendStats.p99Ms,
        commandP50Ms: command.stats().p50Ms,
        asOfP50Ms: asOf.stats().p50Ms,
        logPageP50Ms: page.stats().p50Ms,
        incrementalBackupMs,
        incrementalBackupEvents: 2000,
        diskMbPerMillion: bytes / 1024 / 1024 / (events / 1e6),
        growSeconds,
      };
      results.push(result);
      console.log(
        `  at ${formatInt(events)} events (grown in ${growSeconds.toFixed(0)} s): append p50 ${formatMs(result.appendP50Ms)} ms p99 ${formatMs(result.appendP99Ms)} ms, command ${formatMs(result.commandP50Ms)} ms, as-of ${formatMs(result.asOfP50Ms)} ms, log page ${formatMs(result.logPageP50Ms)} ms, incremental backup ${backups ? `${formatMs(incrementalBackupMs)} ms` : 'skipped'}, ${result.diskMbPerMillion.toFixed(0)} MB per million events`,
      );
    }
  } finally {
    await store.close();
    await pool.end();
    await database.drop();
  }
  const first = results[0]!;
  const last = results.at(-1)!;
  const keys = [
    ['append p50 ms', 'appendP50Ms'],
    ['append p99 ms', 'appendP99Ms'],
    ['command, 10k-event stream, ms', 'commandP50Ms'],
    ['as-of read ms', 'asOfP50Ms'],
    ['log page (readAll 100) ms', 'logPageP50Ms'],
    ['incremental backup (2,000 events) ms', 'incrementalBackupMs'],
    ['disk MB per million events', 'diskMbPerMillion'],
  ] as const;
  console.log('');
  printTable(
    ['figure', ...results.map((r) => formatInt(r.events)), `last/first`, 'target ≤ 1.20×'],
    keys.map(([label, key]) => {
      const ratio = last[key] / first[key];
      if (Number.isNaN(ratio)) return [label, ...results.map(() => 'skipped'), '', 'skipped'];
      return [
        label,
        ...results.map((r) => formatMs(r[key])),
        formatRatio(ratio),
        key === 'diskMbPerMillion' || ratio <= 1.2 ? 'met' : 'MISSED',
      ];
    }),
  );
  console.log(
    `  not measured here: the API read route (bench:api runs it against a fresh log), and the incremental audit verify (verifyLog's \`from\`, ADR 024); the seeded events carry placeholder hashes, so a full verify would stop at the first of them`,
  );
  console.log(
    `  ${formatInt(appended)} events appended through the store; ${((now() - started) / 1000).toFixed(0)} s in all`,
  );
  return {
    benchmark: 'scale',
    quick,
    server: { version: info.version, source: server.source, fsync: info.fsync, cpus: info.cpus },
    checkpoints: results.map((r) =>
      Object.fromEntries(
        Object.entries(r).map(([key, value]: [string, number]) => [key, round(value, 3)]),
      ),
    ),
    ratios: Object.fromEntries(keys.map(([, key]) => [key, round(last[key] / first[key], 3)])),
    notMeasured: ['apiReadRoute', 'incrementalAuditVerify'],
    seconds: round((now() - started) / 1000, 1),
  };
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
