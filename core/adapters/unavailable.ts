import { ExponentialBackoff, handleWhen, retry, type RetryPolicy } from 'cockatiel';

/**
 * Is this error a dependency that does not answer right now (PostgreSQL or Redis down, restarting,
 * unreachable, or its connection cut), as opposed to a mistake in the request or in our code?
 * Such an error is worth trying again later: HTTP answers 503 with Retry-After, background loops
 * retry soon instead of backing off for minutes.
 */
export function isUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const code = 'code' in error && typeof error.code === 'string' ? error.code : '';
  if (NETWORK_CODES.has(code) || POSTGRES_CODE.test(code)) return true;
  const name = 'name' in error && typeof error.name === 'string' ? error.name : '';
  if (name === 'MaxRetriesPerRequestError') return true;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : '';
  if (MESSAGES.some((pattern) => pattern.test(message))) return true;
  // Wrapped (`cause`), or several attempts at once (AggregateError: IPv4 and IPv6, say).
  if ('cause' in error && isUnavailable(error.cause, depth + 1)) return true;
  return (
    'errors' in error &&
    Array.isArray(error.errors) &&
    error.errors.length > 0 &&
    error.errors.every((inner) => isUnavailable(inner, depth + 1))
  );
}

/** Socket errors of Node: the server is not there, or went away. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs: class 08 (connection exception), 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now (starting up or shutting down), 53300
 * too_many_connections.
 */
const POSTGRES_CODE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;

/** Errors the drivers raise without a code. */
const MESSAGES = [
  // pg: the socket closed under a query, or a checked-out client lost its connection before.
  /^Connection terminated/,
  /is not queryable$/,
  // pg-pool: no connection within connectionTimeoutMillis.
  /^timeout exceeded when trying to connect$/,
  // ioredis: offline queue off, command timeout, connection closed.
  /^Stream isn't writeable and enableOfflineQueue options is false$/,
  /^Command timed out$/,
  /^Connection is closed\.$/,
];

/**
 * Runs a step again while it fails with `isUnavailable`, forever (until `signal` aborts): soon at
 * first, then every second at most, so a loop is back within a second of its dependency.
 * Other errors go straight to the caller.
 */
export const retryWhileUnavailable = (): RetryPolicy =>
  retry(handleWhen(isUnavailable), {
    maxAttempts: Number.POSITIVE_INFINITY,
    backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }),
  });
