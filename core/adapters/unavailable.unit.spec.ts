import { describe, expect, it } from 'vitest';
import { isUnavailable } from './unavailable.js';

const withCode = (code: string, message = 'x'): Error =>
  Object.assign(new Error(message), { code });

describe('isUnavailable', () => {
  it.each([
    ['a refused connection', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['a reset socket', withCode('ECONNRESET', 'read ECONNRESET')],
    ['admin shutdown (pg_ctl stop -m fast)', withCode('57P01', 'terminating connection')],
    ['crash shutdown', withCode('57P02')],
    ['the database starting up or shutting down', withCode('57P03')],
    ['a connection exception (class 08)', withCode('08006')],
    ['too many connections', withCode('53300')],
    ['a socket cut under a query', new Error('Connection terminated unexpectedly')],
    [
      'a client that lost its connection before',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    ['the pool waiting too long', new Error('timeout exceeded when trying to connect')],
    [
      'Redis away without an offline queue',
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    ],
    ['a Redis command timing out', new Error('Command timed out')],
    [
      'ioredis giving up',
      Object.assign(new Error('Reached the max retries per request limit'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['one wrapped in a cause', new Error('append failed', { cause: withCode('ECONNREFUSED') })],
    [
      'every attempt refused',
      new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]),
    ],
  ])('says yes to %s', (_what, error) => {
    expect(isUnavailable(error)).toBe(true);
  });

  it.each([
    ['a syntax error', withCode('42601', 'syntax error at or near')],
    ['a unique violation', withCode('23505')],
    ['a value out of range', withCode('22008', 'date/time field value out of range')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    [
      'one of several attempts failing for another reason',
      new AggregateError([withCode('ECONNREFUSED'), new Error('bad')]),
    ],
    ['not an error at all', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('says no to %s', (_what, error) => {
    expect(isUnavailable(error)).toBe(false);
  });
});
