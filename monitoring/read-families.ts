import type pg from 'pg';

/** One family of business metrics: its query and what it sets from the rows. */
export interface Family {
  /** strategies, approvals, …, risk_daily_loss; and the families other modules add (`extend`). */
  name: string;
  sql: string;
  apply(rows: Record<string, unknown>[]): void;
}

/**
 * One scrape's read: one read-only REPEATABLE READ transaction (every family from one snapshot),
 * one query per family behind a savepoint. A family whose query fails keeps its values and is
 * reported to `fail`; so is a connection that fails. Never rejects.
 */
export async function readFamilies(
  pool: pg.Pool,
  timeoutMs: number,
  families: readonly Family[],
  fail: (source: string) => void, // a family's name or 'connection'
): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch {
    fail('connection');
    return;
  }
  let broken: Error | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
    for (const family of families) {
      let rows: Record<string, unknown>[];
      await client.query('SAVEPOINT business_metrics');
      try {
        rows = (await client.query<Record<string, unknown>>(family.sql)).rows;
      } catch {
        fail(family.name);
        await client.query('ROLLBACK TO SAVEPOINT business_metrics');
        continue;
      }
      await client.query('RELEASE SAVEPOINT business_metrics');
      family.apply(rows);
    }
    await client.query('COMMIT');
  } catch (error) {
    // The connection itself failed: drop it rather than hand it back in an unknown state.
    broken = error instanceof Error ? error : new Error(String(error));
    fail('connection');
  } finally {
    client.release(broken);
  }
}
