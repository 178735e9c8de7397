import type pg from 'pg';
import { schemaOf } from './postgres-target.js';

/**
 * Retention of the trading read model (ADR 032, docs/scaling.md): rows that no event will touch
 * again — closed orders, their fills, valuations — older than a horizon move from the hot tables
 * (`orders`, `fills`, `portfolio_equity`, behind the `qcat_read` views) to `<table>_archive` tables
 * in the same projection generation. Queries on recent data read only the hot tables; a query that
 * asks for history reads both (`TradingQueries` with `history: true`). Every move holds the
 * projection's registry row, as the projection's own batches do, so it never interleaves with an
 * apply or a rebuild's switch. A rebuild replays the log into a fresh generation without archive
 * tables: everything is hot again until the next run, and nothing is lost or counted twice (the
 * archive lives and dies with its generation). Each batch sends the read model's change notice,
 * so no process's answer cache goes on serving the rows it moved.
 */

/**
 * The tables with an archive: which of their rows may move, and the order a batch takes them in
 * (an index's order, so each batch starts where the last one stopped instead of rescanning the
 * rows it moved).
 */
const ARCHIVED = {
  // Closed orders only: the projection updates an open order by its id.
  orders: {
    where: `submitted_at < $1 AND updated_at < $1 AND status IN ('filled', 'cancelled', 'rejected', 'denied')`,
    order: 'submitted_at',
  },
  // A fill moves with (or after) its order: `fillsOf` of a hot order stays whole.
  fills: {
    where: `time < $1 AND NOT EXISTS (SELECT 1 FROM %s.orders o WHERE o.client_order_id = t.client_order_id)`,
    order: 'time',
  },
  portfolio_equity: { where: 'time < $1', order: 'portfolio_id, time' },
} as const;
export type ArchivedTable = keyof typeof ARCHIVED;
export const ARCHIVED_TABLES = Object.keys(ARCHIVED) as ArchivedTable[];

const PROJECTION = 'trading';

export interface ArchiveResult {
  /** Rows moved, per table. */
  moved: Record<ArchivedTable, number>;
  generation: number;
}

/**
 * Moves what is older than `before` into the archive, `batch` rows per transaction (each short,
 * so the projection waits at most one batch). Safe to run from several processes at once.
 */
export async function archiveTrading(
  pool: pg.Pool,
  before: Date,
  batch = 5000,
): Promise<ArchiveResult> {
  const moved: Record<ArchivedTable, number> = { orders: 0, fills: 0, portfolio_equity: 0 };
  let generation = -1;
  for (const table of ARCHIVED_TABLES) {
    for (;;) {
      const client = await pool.connect();
      let count: number;
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ generation: number; checkpoint: string }>(
          'SELECT generation, checkpoint FROM qcat_projections WHERE name = $1 FOR UPDATE',
          [PROJECTION],
        );
        const row = rows[0];
        if (!row) {
          await client.query('ROLLBACK');
          return { moved, generation };
        }
        generation = row.generation;
        const schema = schemaOf(PROJECTION, generation);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${schema}.${table}_archive
             (LIKE ${schema}.${table} INCLUDING ALL)`,
        );
        const where = ARCHIVED[table].where.replace('%s', schema);
        const result = await client.query(
          `WITH picked AS (
             SELECT ctid FROM ${schema}.${table} t WHERE ${where}
              ORDER BY ${ARCHIVED[table].order} LIMIT ${Math.trunc(batch)}
           ), gone AS (
             DELETE FROM ${schema}.${table} WHERE ctid IN (SELECT ctid FROM picked) RETURNING *
           )
           INSERT INTO ${schema}.${table}_archive SELECT * FROM gone`,
          [before],
        );
        count = result.rowCount ?? 0;
        if (count > 0) await announce(client, generation, row.checkpoint);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      moved[table] += count;
      if (count < batch) break;
    }
    // The moved rows are dead tuples in the hot table and its indexes until a vacuum: recent
    // queries would still step over them. Not left to autovacuum's schedule. A role that does not
    // own the table gets a warning, not an error (then autovacuum does it).
    if (moved[table] > 0 && generation >= 0)
      await pool.query(`VACUUM (ANALYZE) ${schemaOf(PROJECTION, generation)}.${table}`);
  }
  return { moved, generation };
}

/**
 * The read model's change notice, sent at the batch's commit: rows left the hot tables while the
 * checkpoint stayed where it was, which the registry's trigger (migration 6) does not see. Every
 * process's answer cache (ADR 009) then drops what it holds of the trading read model, instead of
 * answering archived rows until the next trading event. Same payload as the trigger's.
 */
async function announce(
  client: pg.PoolClient,
  generation: number,
  checkpoint: string,
): Promise<void> {
  await client.query(`SELECT pg_notify('qcat_read_model', $1)`, [
    `${PROJECTION}:${generation}:${checkpoint}`,
  ]);
}

/**
 * What a query reads for `table`: the `qcat_read` view alone, or (for history) the view and the
 * archive of the generation it shows, when that generation has one.
 */
export async function tradingSource(
  pool: pg.Pool,
  table: ArchivedTable,
  history: boolean,
): Promise<string> {
  const hot = `qcat_read.${table}`;
  if (!history) return hot;
  const { rows } = await pool.query<{ archive: string | null }>(
    `SELECT to_regclass(format('qcat_p_%s_%s.%s_archive', name, generation, $2::text))::text AS archive
       FROM qcat_projections WHERE name = $1`,
    [PROJECTION, table],
  );
  const archive = rows[0]?.archive;
  return archive ? `(SELECT * FROM ${hot} UNION ALL SELECT * FROM ${archive}) AS ${table}` : hot;
}
