import pg from 'pg';

/** How long taking a connection may wait (server unreachable, pool exhausted); default 5 s. */
const CONNECT_TIMEOUT_MS = 5000;

/**
 * A pool that survives its server going away. pg-pool listens for errors only on idle clients: a
 * client checked out (a transaction in progress, a COPY, a lock held) that loses its server
 * (57P01 on `pg_ctl stop`, a reset socket) emits 'error' with nobody listening, and Node ends the
 * process. So every client gets a listener of its own for its whole life; the failure reaches its
 * user as the rejected query, and the pool throws the client away on release (it is no longer
 * queryable). The next checkout connects anew.
 */
export function createPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({ connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...config });
  pool.on('error', ignore);
  pool.on('connect', (client) => {
    client.on('error', ignore);
  });
  return pool;
}

/** Reported to the code that uses the connection, through its query; nothing to add here. */
const ignore = (): void => undefined;

/** Whether the server answers a query (the readiness probe's PostgreSQL check); throws if not. */
export async function ping(pool: pg.Pool): Promise<void> {
  await pool.query('SELECT 1');
}

/**
 * Runs `work` holding a session-level advisory lock named `name` (one holder at a time across
 * processes), on a connection of its own released afterwards.
 */
export async function withAdvisoryLock<T>(
  pool: pg.Pool,
  name: string,
  work: () => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [name]);
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]);
    }
  } finally {
    client.release();
  }
}
