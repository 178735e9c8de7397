import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postgresBinaries,
  startDisposablePostgres,
  type DisposablePostgres,
} from './support/disposable-postgres.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';

/**
 * Scaling out (issue 22, ADR 032, docs/scaling.md): two `qcat serve` processes on one PostgreSQL
 * (the test's own, so their connections do not count against the shared server's). One leads the
 * projections; both take writes and serve reads, and each reads the other's writes (minPosition),
 * with idempotency keys honoured across them. Leadership failover is test/projection-leadership.
 */
const binaries = postgresBinaries();
if (!binaries) console.warn('two-processes: skipped: install postgresql-15 (initdb, pg_ctl)');

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe.skipIf(!binaries)('two QCAT processes sharing one PostgreSQL', () => {
  let database: DisposablePostgres | undefined;
  const processes: QcatProcess[] = [];
  const bases: string[] = [];
  let token = '';

  beforeAll(async () => {
    database = await startDisposablePostgres();
    for (let i = 0; i < 2; i++) {
      const qcat = await startQcat({ DATABASE_URL: database.url, REDIS_URL: '' });
      processes.push(qcat);
      bases.push(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1] ?? '');
      // The first process makes the admin key; the second finds it in the shared database.
      token ||= /Token \(shown only now\): (\S+)/.exec(qcat.output())?.[1] ?? '';
    }
    expect(bases.every((base) => base !== '')).toBe(true);
    expect(token).not.toBe('');
  }, 200_000);
  afterAll(async () => {
    for (const qcat of processes) await qcat.stop().catch(() => undefined);
    database?.destroy();
  });

  const call = async (
    process: number,
    method: string,
    path: string,
    body?: unknown,
    key?: string,
  ): Promise<Answer> => {
    const response = await fetch(`${bases[process]}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key ? { 'idempotency-key': key } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
  };
  /** A read that waits for its minPosition: 202 PROJECTION_BEHIND is asked again (hang guard). */
  const read = async (process: number, path: string): Promise<Answer> => {
    for (let attempt = 0; attempt < 60; attempt++) {
      const answer = await call(process, 'GET', path);
      if (answer.status !== 202) return answer;
    }
    throw new Error(`${path}: still PROJECTION_BEHIND after 60 tries`);
  };

  it('has one projection leader, whatever the number of processes', async () => {
    const leading = processes.map((qcat) => qcat.output().includes('projections: leading'));
    expect(leading).toEqual([true, false]);
  });

  it("takes writes on both and reads each one's writes on the other, keys honoured across them", async () => {
    const created: { strategyId: string; name: string; position: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `two-processes-${i}`;
      const writer = i % 2;
      const answer = await call(
        writer,
        'POST',
        '/api/v1/strategies',
        {
          name,
          kind: 'sma_crossover',
          symbols: ['BTCUSDT'],
          timeframe: '1h',
          capitalRequest: 1000,
        },
        `two-processes-key-${i}`,
      );
      expect(answer.status).toBe(201);
      const strategyId = String(answer.body['strategyId']);
      const position = String(answer.body['position']);
      created.push({ strategyId, name, position });
      // The other process answers the write it did not take, once its read model has it.
      const other = await read(
        1 - writer,
        `/api/v1/strategies/${strategyId}?minPosition=${position}`,
      );
      expect(other.status).toBe(200);
      expect(other.body['name']).toBe(name);
      // The same key sent to the other process is the same command: the first answer again.
      const again = await call(
        1 - writer,
        'POST',
        '/api/v1/strategies',
        {
          name,
          kind: 'sma_crossover',
          symbols: ['BTCUSDT'],
          timeframe: '1h',
          capitalRequest: 1000,
        },
        `two-processes-key-${i}`,
      );
      expect(again.status).toBe(201);
      expect(again.body['strategyId']).toBe(strategyId);
    }
    const last = created.at(-1)?.position ?? '0';
    const lists = await Promise.all(
      [0, 1].map((process) => read(process, `/api/v1/strategies?limit=100&minPosition=${last}`)),
    );
    const ids = (answer: Answer) =>
      ((answer.body['strategies'] ?? []) as { strategyId: string }[])
        .map((item) => item.strategyId)
        .sort();
    expect(ids(lists[0]!)).toEqual(created.map((item) => item.strategyId).sort());
    expect(ids(lists[1]!)).toEqual(ids(lists[0]!));
  }, 120_000);
});
