/**
 * `qcat restore --to <instant | position>`: the log up to that point, from the backups in a
 * folder, into an empty store; then every read model rebuilt from it.
 *
 * 1. Plan: the newest chain (full + incrementals) that reaches the point, and its segments up to it.
 *    A folder with a damaged manifest or a broken chain is refused, naming it.
 * 2. Check the planned files before the target is touched: each present, of its size and SHA-256,
 *    a whole gzip stream with the manifest's number of lines and first and last events.
 * 3. Refuse a target whose log is not empty, then migrate it and import in one transaction
 *    (PostgreSQL: COPY, `bulkImportIntoEmptyStore`), parsing and checking every line on the way
 *    (well-formed, positions increasing, times never decreasing, each stream's revisions 0, 1, 2…;
 *    any failure rolls the import back); or append through the port (EventStoreDB, which gives
 *    its own positions and times).
 * 4. Build every read model from the restored log.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  bulkImportIntoEmptyStore,
  BulkImportError,
} from '../core/adapters/postgres/bulk-import.js';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { createPool } from '../core/adapters/postgres/pool.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { EventStore, NewEvent, RecordedEvent } from '../core/eventstore/event-store.js';
import { ProjectionService } from '../projections/projection-service.js';
import { allProjections } from '../projections/registry.js';
import { BackupError } from './errors.js';
import { describePoint, type RestorePoint } from './format.js';
import { checkPlannedFiles, plannedEvents, planRestore, type RestorePlan } from './restore-plan.js';

export { planRestore, plannedEvents } from './restore-plan.js';

export interface RebuiltProjection {
  name: string;
  events: number;
}

export interface RestoreResult {
  plan: RestorePlan;
  events: number;
  /** Where the restored log ends (the target's own position for EventStoreDB). */
  position: bigint;
  recordedAt: Date | null;
  rebuilt: RebuiltProjection[];
  /** Projections left out (Redis views without REDIS_URL). */
  skipped: string[];
  seconds: { check: number; import: number; rebuild: number };
}

export interface RestoreOptions {
  dir: string;
  point: RestorePoint;
  /** `postgres://…` or `esdb://…` */
  target: string;
  /** For EventStoreDB targets: the PostgreSQL database of the read models. */
  readModelsUrl?: string | undefined;
  /** Redis views are rebuilt under this prefix when given. */
  redis?: Redis | undefined;
  redisPrefix: string;
  log?: (line: string) => void;
}

const redactUrl = (url: string): string => url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');

function connectionProblem(url: string, error: unknown): BackupError {
  return new BackupError(
    `cannot use the target ${redactUrl(url)}: ${(error as Error).message}${
      (error as { code?: string }).code === '3D000' ? ' (create the database first)' : ''
    }`,
  );
}

/** Is the PostgreSQL log at `pool` empty (or not created yet)? Reads only. */
async function assertEmptyPostgres(pool: pg.Pool, url: string): Promise<void> {
  let head: string | undefined;
  let found = false;
  try {
    const { rows } = await pool.query<{ events: string | null; head: string | null }>(
      `SELECT to_regclass('qcat_events')::text AS events, to_regclass('qcat_log_head')::text AS head`,
    );
    if (rows[0]?.head) {
      const result = await pool.query<{ position: string }>(
        'SELECT position::text FROM qcat_log_head',
      );
      head = result.rows[0]?.position;
    }
    if (rows[0]?.events) {
      const result = await pool.query<{ found: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM qcat_events) AS found',
      );
      found = result.rows[0]?.found === true;
    }
  } catch (error) {
    throw connectionProblem(url, error);
  }
  if (found || (head !== undefined && head !== '0'))
    throw new BackupError(
      `the target ${redactUrl(url)} already holds a log (head at position ${head ?? '?'}); restore only into an empty store`,
    );
}

/**
 * Every read model from the restored log. The ones that start empty (all of them, in a fresh
 * store) are filled in one pass over the log, each batch applied to all of them through the
 * engine's exactly-once `apply`; one that already holds something (a Redis view under a prefix
 * in use) is rebuilt into a new generation.
 */
async function rebuildAll(
  pool: pg.Pool,
  connectionString: string,
  store: EventStore,
  options: RestoreOptions,
): Promise<{ rebuilt: RebuiltProjection[]; skipped: string[] }> {
  const service = new ProjectionService({
    pool,
    connectionString,
    eventStore: store,
    // Without a command handler: process managers are not read models; they resume when served.
    projections: allProjections(options.redisPrefix),
    ...(options.redis ? { redis: options.redis } : {}),
    redisPrefix: options.redisPrefix,
    instanceId: 'qcat-restore',
  });
  const failed = (name: string, error: unknown): BackupError =>
    new BackupError(
      `the log is restored, but building the read model ${name} failed: ${(error as Error).message.split('\n')[0] ?? ''}; fix it, then run \`qcat projections rebuild ${name}\` against the target (or start QCAT on it)`,
    );
  try {
    await service.register();
    const targets = service.names().flatMap((name) => service.target(name) ?? []);
    const fresh: typeof targets = [];
    const used: typeof targets = [];
    for (const target of targets) ((await target.checkpoint()) === 0n ? fresh : used).push(target);

    const rebuilt: RebuiltProjection[] = [];
    let started = performance.now();
    let after = 0n;
    let events = 0;
    for (;;) {
      const batch = await store.readAll({ after, maxCount: 5000 });
      const last = batch.at(-1);
      if (!last) break;
      await Promise.all(
        fresh.map((target) =>
          target.apply(batch).catch((error: unknown) => {
            throw failed(target.name, error);
          }),
        ),
      );
      after = last.position;
      events += batch.length;
    }
    for (const target of fresh) rebuilt.push({ name: target.name, events });
    if (fresh.length > 0)
      options.log?.(
        `  built ${fresh.map((target) => target.name).join(', ')} from ${events} events in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    for (const target of used) {
      started = performance.now();
      let result;
      try {
        result = await target.rebuild(store);
      } catch (error) {
        throw failed(target.name, error);
      }
      rebuilt.push({ name: target.name, events: result.events });
      options.log?.(
        `  rebuilt ${target.name} from ${result.events} events in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    return { rebuilt, skipped: [...service.skipped] };
  } finally {
    await service.stop();
  }
}

/**
 * Appends through the port, one append per run of events of one stream (at most 500), with their
 * event ids and each run's expected revision: the restore path for stores without a bulk one. The
 * store gives its own positions and times.
 */
export async function appendThroughPort(
  store: EventStore,
  events: AsyncIterable<RecordedEvent[]>,
): Promise<{ count: number; position: bigint; recordedAt: Date | null }> {
  let count = 0;
  let position = 0n;
  let run: RecordedEvent[] = [];
  let lastStream: string | undefined;
  const flush = async (): Promise<void> => {
    const first = run[0];
    if (!first) return;
    lastStream = first.streamId;
    const result = await store.appendToStream(
      first.streamId,
      run.map((event): NewEvent => ({
        eventId: event.eventId,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
      })),
      { expectedRevision: first.revision === 0n ? 'no_stream' : first.revision - 1n },
    );
    position = result.position;
    count += run.length;
    run = [];
  };
  for await (const batch of events) {
    for (const event of batch) {
      const head = run[0];
      if (head && (head.streamId !== event.streamId || run.length >= 500)) await flush();
      run.push(event);
    }
  }
  await flush();
  const [last] = lastStream
    ? await store.readStream(lastStream, { direction: 'backwards', maxCount: 1 })
    : [];
  return { count, position, recordedAt: last?.recordedAt ?? null };
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const log = options.log ?? (() => undefined);
  const plan = await planRestore(options.dir, options.point);
  log(
    `restoring to ${describePoint(options.point)} from ${plan.reads.length} backup(s): ${plan.reads.map((read) => read.manifest.backupId).join(', ')}`,
  );
  let started = performance.now();
  const files = await checkPlannedFiles(plan);
  const checkSeconds = (performance.now() - started) / 1000;
  log(`  checked ${files} segment file(s) in ${checkSeconds.toFixed(1)} s`);

  if (/^esdb(\+discover)?:\/\//.test(options.target)) {
    return restoreIntoEventStoreDb(options, plan, checkSeconds);
  }
  if (!/^postgres(ql)?:\/\//.test(options.target))
    throw new BackupError(
      `--target '${redactUrl(options.target)}' is neither a postgres:// nor an esdb:// URL`,
    );

  const pool = createPool({ connectionString: options.target, max: 8 });
  try {
    await assertEmptyPostgres(pool, options.target);
    await migrate(pool);
    started = performance.now();
    let imported;
    try {
      imported = await bulkImportIntoEmptyStore(pool, plannedEvents(plan, true));
    } catch (error) {
      if (error instanceof BackupError || error instanceof BulkImportError)
        throw new BackupError(`${error.message} (nothing was imported: rolled back)`);
      throw error;
    }
    const importSeconds = (performance.now() - started) / 1000;
    log(
      `  imported ${imported.events} events in ${importSeconds.toFixed(1)} s (rows ${imported.seconds.copy.toFixed(1)} s, indexes ${imported.seconds.indexes.toFixed(1)} s)`,
    );

    started = performance.now();
    const store = await PostgresEventStore.connect({
      connectionString: options.target,
      migrate: false,
      poolSize: 4,
    });
    let rebuilt;
    try {
      rebuilt = await rebuildAll(pool, options.target, store, options);
    } finally {
      await store.close();
    }
    return {
      plan,
      events: imported.events,
      position: imported.lastPosition,
      recordedAt: imported.lastRecordedAt,
      ...rebuilt,
      seconds: {
        check: checkSeconds,
        import: importSeconds,
        rebuild: (performance.now() - started) / 1000,
      },
    };
  } finally {
    await pool.end();
  }
}

async function restoreIntoEventStoreDb(
  options: RestoreOptions,
  plan: RestorePlan,
  checkSeconds: number,
): Promise<RestoreResult> {
  if (!options.readModelsUrl)
    throw new BackupError(
      'restoring into EventStoreDB rebuilds the read models in PostgreSQL: set DATABASE_URL',
    );
  const { EventStoreDBEventStore } =
    await import('../core/adapters/eventstoredb/eventstoredb-event-store.js');
  let store: EventStore;
  try {
    store = await EventStoreDBEventStore.connect({ connectionString: options.target });
  } catch (error) {
    throw connectionProblem(options.target, error);
  }
  const pool = createPool({ connectionString: options.readModelsUrl, max: 4 });
  try {
    const head = await store.headPosition();
    if (head !== 0n)
      throw new BackupError(
        `the target ${redactUrl(options.target)} already holds a log (head at position ${head}); restore only into an empty store`,
      );
    await migrate(pool);
    let started = performance.now();
    const imported = await appendThroughPort(store, plannedEvents(plan, true));
    const importSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const rebuilt = await rebuildAll(pool, options.readModelsUrl, store, options);
    return {
      plan,
      events: imported.count,
      position: imported.position,
      recordedAt: imported.recordedAt,
      ...rebuilt,
      seconds: {
        check: checkSeconds,
        import: importSeconds,
        rebuild: (performance.now() - started) / 1000,
      },
    };
  } finally {
    await pool.end();
    await store.close();
  }
}
