/**
 * Backup and restore of the log: a full backup of 1,000,000 events, then `restore()` of it into a
 * fresh PostgreSQL store, as `qcat restore` runs it: check every segment file (size, SHA-256, whole
 * gzip stream, line count, first and last events), import (COPY in one transaction, every line
 * parsed and checked on the way, indexes built at the end), then build every PostgreSQL read model
 * from the restored log.
 *
 *   npm run bench:restore
 *   npm run bench:restore -- --events=1000000 --seed-callers=8 --seed-append=1250 --seed-streams=1000
 *
 * Reference, measured in the same run on the same server: a plain `COPY qcat_events TO STDOUT` of
 * the source piped into `COPY qcat_events FROM STDIN` of another fresh, migrated database (same
 * table, same indexes; no files, no parsing, no checks) — what PostgreSQL itself takes to move the
 * rows. The import drops the log's indexes and builds them after its COPY, which the plain COPY
 * does not; so a second reference loads the same rows that way (the ratio to it is what parsing
 * and checking every line costs). For the backup: the same `COPY ... TO STDOUT`, drained.
 *
 * Server: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL. Redis views are
 * not rebuilt (no Redis here); they are rebuilt the same way when REDIS_URL is set. The databases
 * and the backup folder are removed at the end. The last line of output is one JSON object.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { dropEventIndexes } from '../core/adapters/postgres/bulk-import.js';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { NewEvent } from '../core/eventstore/event-store.js';
import { restore } from '../backup/restore.js';
import { takeBackup } from '../backup/take-backup.js';
import {
  checkpoint,
  cleanup,
  createDatabase,
  describeServer,
  execute,
  formatInt,
  formatRatio,
  numberOption,
  onCleanup,
  orderPlaced,
  printTable,
  round,
  seedThroughStore,
  serverInfo,
  startServer,
  type BenchDatabase,
} from './support.js';

const TARGET_RESTORE_EVENTS_PER_SEC = 50_000;

// Categories no domain projection parses (the trading and risk read models read order-,
// position- and account- streams): the read models that rebuild are the generic ones.
const CATEGORIES = ['bench_order', 'bench_fill', 'bench_position', 'bench_account'] as const;
const TYPES = ['OrderPlaced', 'OrderAccepted', 'OrderFilled', 'OrderCancelled'] as const;

const now = (): number => performance.now();

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * md5 over every column of every event (each row's md5, in position order), of every stream's row
 * and of the head: equal logs, equal sums.
 */
const logChecksum = async (url: string): Promise<string> =>
  (
    await execute<{ md5: string }>(
      url,
      `SELECT md5((SELECT string_agg(md5(e::text), '' ORDER BY position) FROM qcat_events e)
               || (SELECT string_agg(md5(s::text), '' ORDER BY stream_id) FROM qcat_streams s)
               || (SELECT h::text FROM qcat_log_head h)) AS md5`,
    )
  )[0]?.md5 ?? 'empty';

/** COPY out of the source, drained: how fast PostgreSQL hands the rows over. */
async function copyOut(url: string): Promise<{ seconds: number; bytes: number }> {
  return withClient(url, async (client) => {
    let bytes = 0;
    const started = now();
    await pipeline(
      client.query(copyTo('COPY qcat_events TO STDOUT')),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          callback();
        },
      }),
    );
    return { seconds: (now() - started) / 1000, bytes };
  });
}

/**
 * COPY of the same rows from the source straight into a fresh, migrated store, in one
 * transaction. `withoutIndexes`: the log's indexes dropped first and built after, in that
 * transaction, as the import does (`dropEventIndexes`), so this is what the server alone takes
 * for the import's own way of loading.
 */
async function copyAcross(
  sourceUrl: string,
  target: BenchDatabase,
  withoutIndexes: boolean,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: target.url, max: 1 });
  pool.on('error', () => undefined);
  await migrate(pool);
  await pool.end();
  await checkpoint(target.url);
  return withClient(sourceUrl, (source) =>
    withClient(target.url, async (sink) => {
      const started = now();
      await sink.query('BEGIN');
      const rebuild = withoutIndexes ? await dropEventIndexes(sink) : undefined;
      await pipeline(
        source.query(copyTo('COPY qcat_events TO STDOUT')),
        sink.query(copyFrom('COPY qcat_events FROM STDIN')),
      );
      await rebuild?.();
      await sink.query('COMMIT');
      return (now() - started) / 1000;
    }),
  );
}

async function main(): Promise<Record<string, unknown>> {
  const total = numberOption('events', 1_000_000);
  const callers = numberOption('seed-callers', 8);
  const eventsPerAppend = numberOption('seed-append', 1250);
  const streams = numberOption('seed-streams', 1000);

  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:restore — ${describeServer(server, info)}`);

  const source = await createDatabase(server, 'restore_source');
  const store = await PostgresEventStore.connect({ connectionString: source.url });
  onCleanup(() => store.close());
  const dir = mkdtempSync(join(tmpdir(), 'qcat-bench-backup-'));
  onCleanup(() => {
    rmSync(dir, { recursive: true, force: true });
    return Promise.resolve();
  });

  console.log(
    `\nSeeding ${formatInt(total)} events through appendToStream (${callers} callers, ${formatInt(eventsPerAppend)} per append, ${formatInt(streams)} streams)`,
  );
  const seeding = await seedThroughStore(
    store,
    { total, callers, eventsPerAppend, streams },
    (index, count, caller) => {
      const command = randomUUID();
      const metadata = {
        actor: `user-${index % 25}`,
        correlationId: command,
        causationId: command,
        schemaVersion: 1,
      };
      return {
        streamId: `${CATEGORIES[index % CATEGORIES.length]!}-seed_${index % streams}`,
        events: Array.from({ length: count }, (_, i): NewEvent => {
          const sequence = index * eventsPerAppend + i;
          return {
            type: TYPES[sequence % TYPES.length]!,
            data: orderPlaced(caller, sequence),
            metadata,
          };
        }),
      };
    },
  );
  console.log(
    `  seeded ${formatInt(seeding.events)} events in ${seeding.seconds.toFixed(1)} s (${formatInt(seeding.eventsPerSec)} events/s)`,
  );
  await execute(source.url, 'VACUUM ANALYZE qcat_events');
  const head = await store.headPosition();
  const [size] = await execute<{ size: string; bytes: string }>(
    source.url,
    `SELECT pg_size_pretty(pg_total_relation_size('qcat_events')) AS size,
            pg_total_relation_size('qcat_events')::text AS bytes`,
  );
  console.log(`  qcat_events with indexes: ${size?.size ?? '?'}; head at position ${head}`);

  // Backup.
  await checkpoint(source.url);
  let started = now();
  const manifest = await takeBackup({
    store,
    dir,
    kind: 'full',
    storeInfo: { adapter: 'postgres', location: 'bench' },
  });
  const backupSeconds = (now() - started) / 1000;
  const out = await copyOut(source.url);
  console.log(
    `\nBackup: ${formatInt(manifest.eventCount)} events in ${manifest.segments.length} segments, ${formatInt(manifest.bytes)} bytes gzip'd (COPY text: ${formatInt(out.bytes)} bytes)`,
  );

  // Restore, as `qcat restore` runs it.
  const target = await createDatabase(server, 'restore_target');
  await checkpoint(source.url);
  started = now();
  const result = await restore({
    dir,
    point: { position: head },
    target: target.url,
    redisPrefix: 'bench:',
    log: (line) => {
      console.log(line);
    },
  });
  const restoreTotal = (now() - started) / 1000;
  const restoreSeconds = result.seconds.check + result.seconds.import;
  if (result.events !== total || result.position !== head)
    throw new Error(
      `restored ${result.events} events up to ${result.position}, expected ${total} up to ${head}`,
    );
  const same = (await logChecksum(source.url)) === (await logChecksum(target.url));
  if (!same) throw new Error('the restored log differs from the source');

  // References: the same rows moved by COPY alone, into the table as it is (indexes maintained
  // row by row), and with its indexes dropped and built after, as the import loads.
  await target.drop();
  const reference = await createDatabase(server, 'restore_reference');
  const copySeconds = await copyAcross(source.url, reference, false);
  await reference.drop();
  const bulkReference = await createDatabase(server, 'restore_reference_bulk');
  const bulkCopySeconds = await copyAcross(source.url, bulkReference, true);
  await bulkReference.drop();

  const rate = (seconds: number): number => total / seconds;
  console.log(`\nResults, ${formatInt(total)} events`);
  printTable(
    ['phase', 's', 'events/s', 'vs reference'],
    [
      [
        'backup (read through the port, NDJSON, gzip, SHA-256)',
        backupSeconds.toFixed(2),
        formatInt(rate(backupSeconds)),
        formatRatio(out.seconds / backupSeconds),
      ],
      [
        '  reference: COPY qcat_events TO STDOUT, drained',
        out.seconds.toFixed(2),
        formatInt(rate(out.seconds)),
        '',
      ],
      [
        'restore = check files + import',
        restoreSeconds.toFixed(2),
        formatInt(rate(restoreSeconds)),
        formatRatio(copySeconds / restoreSeconds),
      ],
      [
        '  check files (size, SHA-256, lines, first/last event)',
        result.seconds.check.toFixed(2),
        formatInt(rate(result.seconds.check)),
        '',
      ],
      [
        '  import (parse + check every line, COPY without indexes, build them)',
        result.seconds.import.toFixed(2),
        formatInt(rate(result.seconds.import)),
        formatRatio(copySeconds / result.seconds.import),
      ],
      [
        '  reference: COPY source TO STDOUT | COPY target FROM STDIN',
        copySeconds.toFixed(2),
        formatInt(rate(copySeconds)),
        '',
      ],
      [
        "  same COPY, indexes dropped before and built after (the import's way)",
        bulkCopySeconds.toFixed(2),
        formatInt(rate(bulkCopySeconds)),
        formatRatio(copySeconds / bulkCopySeconds),
      ],
      [
        `rebuild (${result.rebuilt.map((p) => p.name).join(', ')})`,
        result.seconds.rebuild.toFixed(2),
        formatInt(rate(result.seconds.rebuild)),
        '',
      ],
      [
        'restore + rebuild (the whole command)',
        restoreTotal.toFixed(2),
        formatInt(rate(restoreTotal)),
        '',
      ],
    ],
  );
  console.log(
    `\n  vs reference: the plain COPY's seconds / the phase's (above 1: faster). The plain COPY maintains the log's indexes row by row; the import drops them and builds each in one go after its COPY, which alone makes the same COPY ${formatRatio(copySeconds / bulkCopySeconds)} the plain one. Against a COPY loaded that way the import (parsing and checking every line in Node) is ${formatRatio(bulkCopySeconds / result.seconds.import)}, the restore ${formatRatio(bulkCopySeconds / restoreSeconds)}.`,
  );
  const met = rate(restoreSeconds) >= TARGET_RESTORE_EVENTS_PER_SEC;
  console.log(
    `\n  target: restore ≥ ${formatInt(TARGET_RESTORE_EVENTS_PER_SEC)} events/s: ${formatInt(rate(restoreSeconds))} — ${met ? 'MET' : 'MISSED'}; restored log identical to the source (md5 of every column of every event, of the streams and of the head): ${same}`,
  );
  return {
    benchmark: 'restore',
    server: { version: info.version, source: server.source, cpus: info.cpus, fsync: info.fsync },
    events: total,
    seeding: { seconds: round(seeding.seconds), eventsPerSec: round(seeding.eventsPerSec, 0) },
    backup: {
      seconds: round(backupSeconds),
      eventsPerSec: round(rate(backupSeconds), 0),
      bytes: manifest.bytes,
      segments: manifest.segments.length,
      reference: {
        copyOutSeconds: round(out.seconds),
        ratio: round(out.seconds / backupSeconds, 3),
      },
    },
    restore: {
      seconds: round(restoreSeconds),
      eventsPerSec: round(rate(restoreSeconds), 0),
      checkSeconds: round(result.seconds.check),
      importSeconds: round(result.seconds.import),
      reference: { copySeconds: round(copySeconds), eventsPerSec: round(rate(copySeconds), 0) },
      ratio: round(copySeconds / restoreSeconds, 3),
      importRatio: round(copySeconds / result.seconds.import, 3),
      /** The same COPY with the indexes dropped before and built after, as the import loads. */
      bulkReference: {
        copySeconds: round(bulkCopySeconds),
        eventsPerSec: round(rate(bulkCopySeconds), 0),
      },
      bulkRatio: round(bulkCopySeconds / restoreSeconds, 3),
      bulkImportRatio: round(bulkCopySeconds / result.seconds.import, 3),
      identical: same,
    },
    rebuild: {
      seconds: round(result.seconds.rebuild),
      eventsPerSec: round(rate(result.seconds.rebuild), 0),
      projections: result.rebuilt.map((p) => p.name),
    },
    total: { seconds: round(restoreTotal), eventsPerSec: round(rate(restoreTotal), 0) },
    target: {
      restoreEventsPerSec: {
        actual: round(rate(restoreSeconds), 0),
        min: TARGET_RESTORE_EVENTS_PER_SEC,
        met,
      },
    },
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
