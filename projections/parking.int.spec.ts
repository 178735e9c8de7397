import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { until } from '../test/support/until.js';
import { backtestsProjection } from './backtests.js';
import type { PostgresProjection } from './projection.js';
import { ProjectionService } from './projection-service.js';

/**
 * ADR 011: an event a projection cannot apply. A parking projection records it with the error and
 * goes on; a stopping one stops there; an outage is never parked. Either way the status says so.
 * The poison event is appended straight to the log, as one accepted before the domain checks
 * existed would be (year 0: PostgreSQL's timestamptz refuses it).
 */
const requested = (backtestId: string, from: string, to: string): JsonObject => ({
  backtestId,
  strategyId: null,
  strategyParameterVersion: null,
  kind: 'sma_crossover',
  parameters: {},
  symbol: 'BTCUSDT',
  timeframe: '1h',
  from,
  to,
  initialCash: 100_000,
  costs: { slippageBps: 1, makerFeeBps: 1, takerFeeBps: 1, maxVolumeShare: null },
  requestedBy: { id: 'apikey:t', role: 'trader' },
});

describe('an event a projection cannot apply', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  const services: ProjectionService[] = [];
  const logged: string[] = [];

  const start = async (projection: PostgresProjection): Promise<ProjectionService> => {
    const service = new ProjectionService({
      pool: store.pool,
      connectionString: database.url,
      eventStore: store,
      projections: [projection],
      instanceId: `parking-${services.length.toString()}`,
      leadershipIntervalMs: 200,
      retryDelayMs: 100,
      log: (message) => logged.push(message),
    });
    services.push(service);
    await service.start();
    return service;
  };
  const append = async (backtestId: string, from: string, to: string): Promise<bigint> =>
    (
      await store.appendToStream(`backtest-${backtestId}`, [
        {
          eventId: randomUUID(),
          type: 'BacktestRequested',
          data: requested(backtestId, from, to),
          metadata: { actor: 'test' },
        },
      ])
    ).position;

  beforeAll(async () => {
    database = await createTestDatabase('parking');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    await append('good-1', '2025-01-01T00:00:00.000Z', '2025-01-02T00:00:00.000Z');
    await append('poison', '0000-01-01T00:00:00.000Z', '0000-01-02T00:00:00.000Z');
    await append('good-2', '2025-02-01T00:00:00.000Z', '2025-02-02T00:00:00.000Z');
  });
  afterAll(async () => {
    for (const service of services) await service.stop();
    await store.close();
    await database.drop();
  });

  it('parks it (backtests), goes on with the events after it, and shows it in the status', async () => {
    const head = await store.headPosition();
    const service = await start(backtestsProjection);
    expect(await service.waitFor('backtests', head, 10_000)).toBe(true);
    const { rows } = await store.pool.query<{ backtest_id: string }>(
      'SELECT backtest_id FROM qcat_read.backtests ORDER BY backtest_id',
    );
    expect(rows.map((r) => r.backtest_id)).toEqual(['good-1', 'good-2']);
    const [status] = await service.status();
    expect(status).toMatchObject({
      name: 'backtests',
      state: 'running',
      checkpoint: head,
      error: null,
      onPoisonEvent: 'park',
      parked: 1,
      lastParked: { position: head - 1n, type: 'BacktestRequested' },
    });
    expect(status?.lastParked?.error).toMatch(/date\/time field value out of range/);
    expect(logged.some((line) => /backtests parked BacktestRequested at position/.test(line))).toBe(
      true,
    );
    await service.stop();
  });

  it('a rebuild parks it again instead of failing, and keeps one row per parked event', async () => {
    const service = await start(backtestsProjection);
    const target = service.target('backtests');
    if (!target) throw new Error('no backtests target');
    const result = await target.rebuild(store);
    expect(result.checkpoint).toBe(await store.headPosition());
    const { rows } = await store.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM qcat_projection_parked WHERE projection = 'backtests'",
    );
    expect(rows[0]?.n).toBe('1');
    expect((await service.status())[0]).toMatchObject({ parked: 1, error: null });
    await service.stop();
  });

  it('a stopping projection stops at it, and says where and why', async () => {
    // The real handler and tables under another name (its view replaces qcat_read.backtests).
    const stopping: PostgresProjection = {
      ...backtestsProjection,
      name: 'backtests_stopping',
      onPoisonEvent: 'stop',
    };
    const service = await start(stopping);
    const poison = (await store.headPosition()) - 1n;
    const status = await until(
      async () => (await service.status()).find((s) => s.name === 'backtests_stopping'),
      (s) => s?.error != null,
    );
    expect(status).toMatchObject({
      state: 'stopped',
      checkpoint: poison - 1n,
      onPoisonEvent: 'stop',
      parked: 0,
      error: { position: poison },
    });
    expect(status?.error?.message).toMatch(/out of range/);
  });

  it('never parks an outage: a failure that is not the event’s own stops even a parking projection', async () => {
    let failing = true;
    const flaky: PostgresProjection = {
      ...backtestsProjection,
      name: 'backtests_flaky',
      onPoisonEvent: 'park',
      tables: [],
      setup: () => Promise.resolve(),
      apply: () =>
        failing
          ? Promise.reject(new Error('Connection terminated unexpectedly'))
          : Promise.resolve(),
    };
    const service = await start(flaky);
    const status = await until(
      async () => (await service.status()).find((s) => s.name === 'backtests_flaky'),
      (s) => s?.error != null,
    );
    expect(status).toMatchObject({ state: 'stopped', parked: 0, onPoisonEvent: 'park' });
    failing = false;
    expect(await service.waitFor('backtests_flaky', await store.headPosition(), 10_000)).toBe(true);
    expect((await service.status()).find((s) => s.name === 'backtests_flaky')?.parked).toBe(0);
  });
});
