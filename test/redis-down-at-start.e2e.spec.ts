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
 * `qcat serve` with REDIS_URL naming a port nothing listens on: it starts anyway, degraded (ADR
 * 017), takes commands and queries, says "degraded: redis"; then a redis-server (the test's own)
 * starts on that port, and QCAT connects by itself, catches the Redis views up and is "ok".
 */
describeNeeding(['redis-server'], 'Redis down when qcat serve starts', () => {
  let database: TestDatabase | undefined;
  let redis: DisposableRedis | undefined;
  let qcat: QcatProcess | undefined;
  const prefix = `qcat-test:redis-down-at-start:${randomUUID().slice(0, 8)}:`;
  let base = '';
  let token = '';

  beforeAll(async () => {
    database = await createTestDatabase('redis_down_at_start');
    redis = await startDisposableRedis();
    await redis.stop(); // its port, with nothing listening on it
    qcat = await startQcat({
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: prefix,
      PAPER_TRADING: 'off',
    });
    base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1] ?? '';
    token = /Token \(shown only now\): (\S+)/.exec(qcat.output())?.[1] ?? '';
  });
  afterAll(async () => {
    await qcat?.stop();
    await redis?.stop();
    await database?.drop();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as unknown) : undefined,
      headers: response.headers,
    };
  };
  const ready = async () => {
    const answer = await call('GET', '/health/ready');
    return { status: answer.status, body: answer.body as { status: string } };
  };

  it('starts degraded, serves, and connects once Redis is there', async () => {
    const [server, cache] = [qcat, redis];
    if (!server || !cache) throw new Error('not started');
    expect(base).not.toBe('');
    expect(token).not.toBe('');
    expect(server.output()).toMatch(/Redis: .* does not answer at start-up; starting degraded/);

    const health = await ready();
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('degraded: redis');
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await call('POST', '/api/v1/strategies', {
        name: `redis-down-${randomUUID()}`,
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        capitalRequest: 1000,
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
      created.push((answer.body as { strategyId: string }).strategyId);
    }
    const list = await call('GET', '/api/v1/strategies?limit=500');
    expect(list.status).toBe(200);
    // The rate limit counts in the process meanwhile: limited still, never failed.
    expect(Number(list.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    // Live status, a Redis view, comes from the read model while Redis is not there.
    const live = await until(
      async () => Object.keys((await call('GET', '/api/v1/strategies/live-status')).body ?? {}),
      (ids) => created.every((id) => ids.includes(id)),
    );
    expect(live).toEqual(expect.arrayContaining(created));

    await cache.start();
    const back = await until(ready, (answer) => answer.body.status === 'ok', 20_000);
    expect(back.status).toBe(200);
    expect(server.output()).toMatch(/Redis: answers again/);
    // The Redis view was built from the log, with what was written before Redis came.
    const view = new Redis(cache.url);
    try {
      const inView = async (): Promise<string[]> => {
        const generation = Number(
          (await view.get(activeGenerationKey(prefix, 'strategy_status'))) ?? '1',
        );
        return view.hkeys(`${redisViewKeys(prefix, 'strategy_status', generation).data}status`);
      };
      const ids = await until(inView, (all) => created.every((id) => all.includes(id)), 15_000);
      expect(ids).toEqual(expect.arrayContaining(created));
    } finally {
      view.disconnect();
    }
    expect(server.child.exitCode).toBeNull();
  });
});
