import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { activeGenerationKey, redisViewKeys } from '../projections/redis-target.js';
import { startDisposableRedis, type DisposableRedis } from './support/disposable-redis.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { until } from './support/until.js';
import { describeNeeding } from './support/tools.js';

/**
 * `qcat serve` with REDIS_URL set, its Redis (the test's own) killed and started again empty:
 * meanwhile commands and queries go on (the rate limit counts in the process, live status comes
 * from the read model), readiness says "degraded: redis" with 200 and answers at once; afterwards
 * the Redis views catch up with what was written meanwhile, and readiness is "ok" again.
 */
const OUTAGE_MS = 3000;
/** Longer than any answer takes while Redis is away (1–4 s and 5 s+ before the fix). */
const ANSWER_WITHIN_MS = 3000;

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

describeNeeding(['redis-server'], 'a Redis outage', () => {
  let database: TestDatabase | undefined;
  let redis: DisposableRedis | undefined;
  let qcat: QcatProcess | undefined;
  const prefix = `qcat-test:redis-outage:${randomUUID().slice(0, 8)}:`;
  let base = '';
  let token = '';

  beforeAll(async () => {
    database = await createTestDatabase('redis_outage');
    redis = await startDisposableRedis();
    qcat = await startQcat({
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: prefix,
      PAPER_TRADING: 'off',
    });
    base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1] ?? '';
    token = /Token \(shown only now\): (\S+)/.exec(qcat.output())?.[1] ?? '';
    expect(base).not.toBe('');
    expect(token).not.toBe('');
  });
  afterAll(async () => {
    await qcat?.stop();
    await redis?.stop();
    await database?.drop();
  });

  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as unknown) : undefined,
      headers: response.headers,
    };
  };
  const create = async (): Promise<string> => {
    const answer = await call('POST', '/api/v1/strategies', {
      name: `redis-outage-${randomUUID()}`,
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1h',
      capitalRequest: 1000,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    return (answer.body as { strategyId: string }).strategyId;
  };
  const liveStatus = async (): Promise<string[]> => {
    const answer = await call('GET', '/api/v1/strategies/live-status');
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return Object.keys(answer.body as Record<string, unknown>);
  };
  const ready = async (): Promise<{ status: number; body: { status: string } }> => {
    const answer = await call('GET', '/health/ready');
    return { status: answer.status, body: answer.body as { status: string } };
  };

  it('goes on without Redis, degraded, and catches the Redis views up once it is back', async () => {
    const [server, cache] = [qcat, redis];
    if (!server || !cache) throw new Error('not started');
    const before = [await create(), await create()];
    await until(liveStatus, (ids) => before.every((id) => ids.includes(id)));
    expect((await ready()).body.status).toBe('ok');

    await cache.stop();
    const during: string[] = [];
    const until_ = Date.now() + OUTAGE_MS;
    while (Date.now() < until_) {
      during.push(await create());
      const list = await call('GET', '/api/v1/strategies?limit=500');
      expect(list.status).toBe(200);
      // Counted in the process while the shared count is away: limited still, never failed.
      expect(Number(list.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
      // From the read model meanwhile: it has what was just written (once projected).
      const seen = await until(liveStatus, (ids) => during.every((id) => ids.includes(id)));
      expect(seen).toEqual(expect.arrayContaining(during));
      const health = await ready();
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('degraded: redis');
    }
    expect(server.child.exitCode).toBeNull();

    await cache.start(); // empty: the views start again from nothing
    const back = await until(ready, (health) => health.body.status === 'ok', 15_000);
    expect(back.status).toBe(200);
    expect(back.body.status).toBe('ok');
    // The Redis view itself caught up with everything, what was written while it was away included.
    const view = new Redis(cache.url);
    try {
      const inView = async (): Promise<string[]> => {
        const generation = Number(
          (await view.get(activeGenerationKey(prefix, 'strategy_status'))) ?? '1',
        );
        return view.hkeys(`${redisViewKeys(prefix, 'strategy_status', generation).data}status`);
      };
      const ids = await until(
        inView,
        (all) => [...before, ...during].every((id) => all.includes(id)),
        15_000,
      );
      expect(ids).toEqual(expect.arrayContaining([...before, ...during]));
    } finally {
      view.disconnect();
    }
    console.log(`redis-outage: ${during.length} strategies created while Redis was away`);
  });
});
