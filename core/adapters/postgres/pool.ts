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
