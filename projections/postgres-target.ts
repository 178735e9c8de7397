import type pg from 'pg';
import type { EventStore, RecordedEvent } from '../core/eventstore/event-store.js';
import type { PostgresProjection } from './projection.js';

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
    const view = `qcat_read.${client.escapeIdentifier(table)}`;
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

/**
 * Where a PostgreSQL projection's changes go. Every batch runs in one transaction that locks the
 * projection's registry row, skips events at or below its checkpoint, applies the rest and moves
 * the checkpoint: exactly-once effect, whatever crashes, and a rebuild can take the row to switch.
 */
export class PostgresTarget {
  constructor(
    private readonly pool: pg.Pool,
    readonly projection: PostgresProjection,
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
    return inTransaction(this.pool, async (client) => {
      const registry = await lockRegistry(client, this.name);
      const fresh = events.filter((event) => event.position > registry.checkpoint);
      const last = fresh.at(-1);
      if (!last) return registry.checkpoint;
      await this.projection.apply(client, schemaOf(this.name, registry.generation), fresh);
      await client.query(
        `UPDATE qcat_projections SET checkpoint = $2, error_position = NULL, error_message = NULL,
           error_at = NULL, updated_at = now() WHERE name = $1`,
        [this.name, last.position],
      );
      return last.position;
    });
  }

  /**
   * Builds the next generation from position 0 while the live one keeps serving, then, holding the
   * registry row so the live runner pauses, catches it up to the head and switches the views to it.
   */
  async rebuild(
    store: EventStore,
    options: { batchSize?: number; onProgress?: (progress: RebuildProgress) => void } = {},
  ): Promise<RebuildProgress & { generation: number }> {
    const batchSize = options.batchSize ?? 5000;
    const guard = await this.pool.connect();
    try {
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
      const generation = previous + 1;
      const schema = schemaOf(this.name, generation);
      await guard.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await guard.query(`CREATE SCHEMA ${schema}`);
      await this.projection.setup(guard, schema);

      const progress: RebuildProgress = { checkpoint: 0n, events: 0 };
      const catchUp = async (client: pg.ClientBase, inOwnTransactions: boolean): Promise<void> => {
        for (;;) {
          const events = await store.readAll({ after: progress.checkpoint, maxCount: batchSize });
          const last = events.at(-1);
          if (!last) return;
          if (inOwnTransactions) {
            await client.query('BEGIN');
            try {
              await this.projection.apply(client, schema, events);
              await client.query('COMMIT');
            } catch (error) {
              await client.query('ROLLBACK');
              throw error;
            }
          } else {
            await this.projection.apply(client, schema, events);
          }
          progress.checkpoint = last.position;
          progress.events += events.length;
          options.onProgress?.({ ...progress });
          if (events.length < batchSize && inOwnTransactions) return;
        }
      };
      await catchUp(guard, true);
      await inTransaction(this.pool, async (client) => {
        await lockRegistry(client, this.name);
        await catchUp(client, false);
        await client.query(
          `UPDATE qcat_projections SET generation = $2, checkpoint = $3, version = $4,
             error_position = NULL, error_message = NULL, error_at = NULL, updated_at = now()
           WHERE name = $1`,
          [this.name, generation, progress.checkpoint, this.projection.version],
        );
        await exposeViews(client, this.projection, schema);
      });
      await guard.query(`DROP SCHEMA IF EXISTS ${schemaOf(this.name, previous)} CASCADE`);
      return { ...progress, generation };
    } finally {
      await guard.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      guard.release();
    }
  }
}
