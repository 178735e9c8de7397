// Under 400 lines without comments (what the max-lines rule counts): a read model's live apply,
// its one-statement pass over other events and its rebuild share the registry row's protocol, and
// read best in one file (ADR 003).
import type pg from 'pg';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { EventStore, Position, RecordedEvent } from '../core/eventstore/event-store.js';
import { applyOrPark, recordParked, type ParkedEvent } from './poison.js';
import { handledBy, viewSchemaOf, type PostgresProjection } from './projection.js';

const NAME = /^[a-z][a-z0-9_]{0,39}$/;

export const schemaOf = (name: string, generation: number): string =>
  `qcat_p_${name}_${generation}`;

interface Registry {
  generation: number;
  checkpoint: bigint;
  version: number;
}

async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * One transaction on `client`. `relaxed`: the commit does not wait for the WAL flush — only for
 * writes into a generation that is not live yet: a crash loses them with the rebuild that made
 * them, and the synchronous commit of the switch flushes everything before it.
 */
async function transaction<T>(
  client: pg.ClientBase,
  work: () => Promise<T>,
  settings: { relaxed?: boolean; maintenanceWorkMem?: string } = {},
): Promise<T> {
  await client.query('BEGIN');
  try {
    if (settings.relaxed) await client.query('SET LOCAL synchronous_commit = off');
    if (settings.maintenanceWorkMem)
      await client.query(`SET LOCAL maintenance_work_mem = '${settings.maintenanceWorkMem}'`);
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function lockRegistry(client: pg.ClientBase, name: string): Promise<Registry> {
  const { rows } = await client.query<{ generation: number; checkpoint: string; version: number }>(
    'SELECT generation, checkpoint, version FROM qcat_projections WHERE name = $1 FOR UPDATE',
    [name],
  );
  const row = rows[0];
  if (!row) throw new Error(`projection ${name} is not registered`);
  return { generation: row.generation, checkpoint: BigInt(row.checkpoint), version: row.version };
}

async function exposeViews(
  client: pg.ClientBase,
  projection: PostgresProjection,
  schema: string,
): Promise<void> {
  for (const table of projection.tables) {
    const hidden = viewSchemaOf(projection, table) === 'qcat_private';
    if (hidden) {
      await client.query('CREATE SCHEMA IF NOT EXISTS qcat_private');
      // Where an older version exposed it, readers of qcat_read must not keep it.
      await client.query(`DROP VIEW IF EXISTS qcat_read.${client.escapeIdentifier(table)}`);
    }
    const view = `${hidden ? 'qcat_private' : 'qcat_read'}.${client.escapeIdentifier(table)}`;
    await client.query(`DROP VIEW IF EXISTS ${view}`);
    await client.query(
      `CREATE VIEW ${view} AS SELECT * FROM ${schema}.${client.escapeIdentifier(table)}`,
    );
  }
}

export interface RebuildProgress {
  checkpoint: bigint;
  events: number;
}

export interface RebuildOptions {
  /** Events per read and per transaction of the event-by-event path; default 5000. */
  batchSize?: number;
  /** Positions per INSERT … SELECT of the SQL path; default 100,000. */
  sqlChunk?: number;
  onProgress?: (progress: RebuildProgress) => void;
}

export interface RebuildResult extends RebuildProgress {
  generation: number;
  /** How the new generation was filled before its catch-up: in SQL from qcat_events, or event by event. */
  via: 'sql' | 'events';
}

/** One rebuild under way: its connection, the new generation's schema, how far it got. */
interface RebuildRun {
  guard: pg.PoolClient;
  store: EventStore;
  schema: string;
  batchSize: number;
  progress: RebuildProgress;
  /** What this generation parks replaces what the live one parked, at the switch. */
  parked: ParkedEvent[];
  advance: (checkpoint: Position, events: number) => void;
}

function startRun(
  guard: pg.PoolClient,
  store: EventStore,
  schema: string,
  options: RebuildOptions,
): RebuildRun {
  const progress: RebuildProgress = { checkpoint: 0n, events: 0 };
  const advance = (checkpoint: Position, events: number): void => {
    progress.checkpoint = checkpoint;
    progress.events += events;
    options.onProgress?.({ ...progress });
  };
  const batchSize = options.batchSize ?? 5000;
  return { guard, store, schema, batchSize, progress, parked: [], advance };
}

export interface PostgresTargetOptions {
  /**
   * The store handed to `rebuild` reads the whole PostgreSQL log (`qcat_events`) of this target's
   * own database, unfiltered (an instrumenting wrapper, say): lets a projection with `rebuildSql`
   * be filled in SQL. Without it that happens only when the store is a PostgresEventStore itself.
   * Either way the store's event at its head must be the one `qcat_events` holds there.
   */
  logInDatabase?: boolean;
  /** Where a parked event is reported (ADR 011). */
  log?: (message: string) => void;
}

/**
 * Where a PostgreSQL projection's changes go. Every batch runs in one transaction that locks the
 * projection's registry row, skips events at or below its checkpoint, applies the rest and moves
 * the checkpoint: exactly-once effect, whatever crashes, and a rebuild can take the row to switch.
 */
export class PostgresTarget {
  constructor(
    private readonly pool: pg.Pool,
    readonly projection: PostgresProjection,
    private readonly options: PostgresTargetOptions = {},
  ) {
    if (!NAME.test(projection.name))
      throw new Error(`invalid projection name '${projection.name}'`);
  }

  get name(): string {
    return this.projection.name;
  }

  /** Registers the projection and creates its first generation; tells whether its version is stale. */
  async ensure(): Promise<{ checkpoint: bigint; stale: boolean }> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `qcat.projection.setup:${this.name}`,
      ]);
      const inserted = await client.query(
        `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'postgres', $2)
         ON CONFLICT (name) DO NOTHING RETURNING name`,
        [this.name, this.projection.version],
      );
      if (inserted.rowCount === 1) {
        const schema = schemaOf(this.name, 1);
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.query(`CREATE SCHEMA ${schema}`);
        await this.projection.setup(client, schema);
        await this.projection.indexes?.(client, schema);
        await exposeViews(client, this.projection, schema);
      }
      const registry = await lockRegistry(client, this.name);
      return {
        checkpoint: registry.checkpoint,
        stale: registry.version !== this.projection.version,
      };
    });
  }

  async checkpoint(): Promise<bigint> {
    const { rows } = await this.pool.query<{ checkpoint: string }>(
      'SELECT checkpoint FROM qcat_projections WHERE name = $1',
      [this.name],
    );
    return BigInt(rows[0]?.checkpoint ?? '0');
  }

  /** Applies the events above the checkpoint; answers the new checkpoint. */
  async apply(events: readonly RecordedEvent[]): Promise<bigint> {
    const [first, last] = [events[0], events.at(-1)];
    if (first && last && handledBy(this.projection, events).length === 0)
      if (await this.skip(first.position - 1n, last.position)) return last.position;
    return inTransaction(this.pool, async (client) => {
      const registry = await lockRegistry(client, this.name);
      const fresh = events.filter((event) => event.position > registry.checkpoint);
      const last = fresh.at(-1);
      if (!last) return registry.checkpoint;
      const schema = schemaOf(this.name, registry.generation);
      const parked = await applyOrPark(client, this.projection, schema, fresh);
      await recordParked(client, this.name, parked);
      this.report(parked);
      // None of its event types: the tables are as they were, and the change notice says so
      // (migration 16), so the answer cache keeps this read model's answers (ADR 027).
      if (handledBy(this.projection, fresh).length === 0)
        await client.query("SELECT set_config('qcat.read_model_unchanged', 'on', true)");
      await client.query(
        `UPDATE qcat_projections SET checkpoint = $2, error_position = NULL, error_message = NULL,
           error_at = NULL, updated_at = now() WHERE name = $1`,
        [this.name, last.position],
      );
      return last.position;
    });
  }

  /**
   * A batch of none of its event types, (`from`, `to`] of the gap-free log: moving the checkpoint
   * from anywhere in it to `to` changes nothing else, so one statement does it instead of a
   * transaction that locks the row (6 round trips; most batches of most read models are such, ADR
   * 020). The change notice says the tables are unchanged (migration 16). False when the checkpoint
   * is elsewhere (behind the batch, or a rebuild's switch moved it): then the transaction decides.
   */
  private async skip(from: Position, to: Position): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `WITH unchanged AS (SELECT set_config('qcat.read_model_unchanged', 'on', true))
       UPDATE qcat_projections SET checkpoint = $2, error_position = NULL, error_message = NULL,
              error_at = NULL, updated_at = now()
         FROM unchanged WHERE name = $1 AND checkpoint >= $3 AND checkpoint < $2`,
      [this.name, to, from],
    );
    return rowCount === 1;
  }

  private report(parked: readonly ParkedEvent[]): void {
    for (const { event, error } of parked)
      this.options.log?.(
        `projections: ${this.name} parked ${event.type} at position ${event.position.toString()} (${event.streamId}): ${error}`,
      );
  }

  /**
   * Builds the next generation from position 0 while the live one keeps serving: in SQL from
   * `qcat_events` when the projection can and the log is in this database, else event by event
   * (transactions that do not wait for the WAL flush, the next batch read while one is applied);
   * then its secondary indexes; then, holding the registry row so the live runner pauses, catches
   * it up to the head and switches the views to it. A failure before the switch drops the new
   * generation and leaves the live one as it was.
   */
  async rebuild(store: EventStore, options: RebuildOptions = {}): Promise<RebuildResult> {
    const guard = await this.pool.connect();
    let shadow: string | undefined;
    try {
      const previous = await this.lockForRebuild(guard);
      const generation = previous + 1;
      const schema = schemaOf(this.name, generation);
      await guard.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      shadow = schema;
      await guard.query(`CREATE SCHEMA ${schema}`);
      await this.projection.setup(guard, schema);
      const run = startRun(guard, store, schema, options);

      // 1. Fill, in SQL where possible.
      const via = await this.fillInSql(run, options.sqlChunk ?? 100_000);
      // 2. Event by event, each batch in its own transaction, reading the next one meanwhile.
      await this.catchUp(run);
      // 3. The secondary indexes, once, over the filled tables; then what came meanwhile.
      if (this.projection.indexes) {
        const indexes = this.projection.indexes.bind(this.projection);
        await transaction(guard, () => indexes(guard, schema), {
          relaxed: true,
          maintenanceWorkMem: '256MB',
        });
        await this.catchUp(run);
      }
      // 4. The switch: the registry row held, the rest applied, views moved, all in one commit.
      await this.switchTo(run, generation);
      shadow = undefined;
      this.report(run.parked);
      await guard.query(`DROP SCHEMA IF EXISTS ${schemaOf(this.name, previous)} CASCADE`);
      return { ...run.progress, generation, via };
    } catch (error) {
      if (shadow)
        await guard.query(`DROP SCHEMA IF EXISTS ${shadow} CASCADE`).catch(() => undefined);
      throw error;
    } finally {
      await guard.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      guard.release();
    }
  }

  /** Takes the rebuild lock of this projection (one rebuild at a time); answers its generation. */
  private async lockForRebuild(guard: pg.PoolClient): Promise<number> {
    const { rows } = await guard.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [`qcat.projection.rebuild:${this.name}`],
    );
    if (!rows[0]?.locked) throw new Error(`a rebuild of ${this.name} is already running`);
    const { rows: current } = await guard.query<{ generation: number }>(
      'SELECT generation FROM qcat_projections WHERE name = $1',
      [this.name],
    );
    const previous = current[0]?.generation;
    if (previous === undefined) throw new Error(`projection ${this.name} is not registered`);
    return previous;
  }

  /** Fills the new generation in SQL up to the head, `chunk` positions a transaction, if it can. */
  private async fillInSql(run: RebuildRun, chunkSize: number): Promise<RebuildResult['via']> {
    const { guard, schema, progress } = run;
    const fill = this.projection.rebuildSql?.bind(this.projection);
    const head = fill ? await this.sqlHead(run.store, guard) : null;
    if (!fill || head === null) return 'events';
    const chunk = BigInt(chunkSize);
    while (progress.checkpoint < head) {
      const after = progress.checkpoint;
      const upTo = after + chunk < head ? after + chunk : head;
      const events = await transaction(
        guard,
        async () => {
          await guard.query(fill(schema, after, upTo));
          const { rows: counted } = await guard.query<{ n: string }>(
            'SELECT count(*) AS n FROM qcat_events WHERE position > $1 AND position <= $2',
            [after.toString(), upTo.toString()],
          );
          return Number(counted[0]?.n ?? 0);
        },
        { relaxed: true },
      );
      run.advance(upTo, events);
    }
    return 'sql';
  }

  /** Event by event up to the head, each batch in its own transaction, reading the next meanwhile. */
  private async catchUp(run: RebuildRun): Promise<void> {
    const { guard, schema, store, batchSize } = run;
    const read = (after: Position): Promise<RecordedEvent[]> => {
      const reading = store.readAll({ after, maxCount: batchSize });
      reading.catch(() => undefined); // awaited below; must not count as unhandled meanwhile
      return reading;
    };
    let next: Promise<RecordedEvent[]> | undefined = read(run.progress.checkpoint);
    while (next) {
      const events: RecordedEvent[] = await next;
      const last = events.at(-1);
      if (!last) return;
      next = events.length < batchSize ? undefined : read(last.position);
      await transaction(
        guard,
        async () => {
          run.parked.push(...(await applyOrPark(guard, this.projection, schema, events)));
        },
        { relaxed: true },
      );
      run.advance(last.position, events.length);
    }
  }

  /** Holding the registry row (the live runner pauses): the rest applied, the views moved. */
  private async switchTo(run: RebuildRun, generation: number): Promise<void> {
    const { store, schema, batchSize, progress, parked } = run;
    await inTransaction(this.pool, async (client) => {
      await lockRegistry(client, this.name);
      for (;;) {
        const events = await store.readAll({ after: progress.checkpoint, maxCount: batchSize });
        const last = events.at(-1);
        if (!last) break;
        parked.push(...(await applyOrPark(client, this.projection, schema, events)));
        run.advance(last.position, events.length);
      }
      await client.query('DELETE FROM qcat_projection_parked WHERE projection = $1', [this.name]);
      await recordParked(client, this.name, parked);
      await client.query(
        `UPDATE qcat_projections SET generation = $2, checkpoint = $3, version = $4,
           error_position = NULL, error_message = NULL, error_at = NULL, updated_at = now()
         WHERE name = $1`,
        [this.name, generation, progress.checkpoint, this.projection.version],
      );
      await exposeViews(client, this.projection, schema);
    });
  }

  /**
   * The head up to which the SQL path may fill the new generation, or null for the event-by-event
   * path: the store is the PostgreSQL log (itself, or vouched for by `logInDatabase`) and its event
   * at its head is the one `qcat_events` here holds there.
   */
  private async sqlHead(store: EventStore, client: pg.ClientBase): Promise<Position | null> {
    if (!this.options.logInDatabase && !(store instanceof PostgresEventStore)) return null;
    const head = await store.headPosition();
    if (head === 0n) return null;
    const [atHead] = await store.readAll({ after: head - 1n, toPosition: head, maxCount: 1 });
    if (atHead?.position !== head) return null;
    const { rows: found } = await client.query<{ log: string | null }>(
      "SELECT to_regclass('qcat_events')::text AS log",
    );
    if (!found[0]?.log) return null;
    const { rows } = await client.query<{ event_id: string }>(
      'SELECT event_id FROM qcat_events WHERE position = $1',
      [head.toString()],
    );
    return rows[0]?.event_id === atHead.eventId ? head : null;
  }
}
