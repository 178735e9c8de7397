import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import {
  PaperEngine,
  engineStream,
  type EngineSnapshot,
  type StrategyBook,
} from '../core/engine/engine.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { InMemoryEventStore } from '../core/eventstore/in-memory-event-store.js';
import { emptySnapshot } from '../core/risk/checks.js';
import { startQcat } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

const PORTFOLIO = 'paper-1m';

/** Trading events by stream, without the engine's write-ahead log. */
function byStream(
  events: readonly RecordedEvent[],
): Map<string, { type: string; data: unknown }[]> {
  const streams = new Map<string, { type: string; data: unknown }[]>();
  for (const { streamId, type, data } of events) {
    if (!/^(order|position|account|risk)-/.test(streamId)) continue;
    const list = streams.get(streamId) ?? [];
    list.push({ type, data });
    streams.set(streamId, list);
  }
  return streams;
}

describe('paper trading in a real qcat process, killed with -9 and restarted', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase('paper_e2e');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    // A dropped test database ends its connections: not an error here.
    pool.on('error', () => undefined);
    store = await PostgresEventStore.connect({ connectionString: database.url });
  });
  afterAll(async () => {
    await store.close();
    await pool.end();
    await database.drop();
  });

  const count = async (type: string): Promise<number> => {
    const { rows } = await pool
      .query<{ n: string }>('SELECT count(*) AS n FROM qcat_events WHERE type = $1', [type])
      .catch(() => ({ rows: [{ n: '0' }] }));
    return Number(rows[0]?.n ?? 0);
  };
  const waitFor = (what: string, check: () => Promise<boolean>, ms = 90_000) =>
    vi.waitFor(
      async () => {
        if (!(await check())) throw new Error(`timed out waiting for ${what}`);
      },
      { timeout: ms, interval: 200 },
    );

  it('resumes with no duplicate or lost orders and fills, and no lost resting order', async () => {
    const env = {
      DATABASE_URL: database.url,
      MARKET_FEED_SPEED: '600', // ten 1m bars a second …
      MARKET_FEED_HISTORY_HOURS: '24', // … for the 24 hours before now (the clock stops at now)
      ENGINE_POLL_MS: '100',
    };
    const first = await startQcat(env, 90_000, ['--demo']);
    try {
      await waitFor('fills before the crash', async () => (await count('OrderFilled')) >= 5);
    } finally {
      await first.crash(); // kill -9, most likely in the middle of a cycle
    }
    const cyclesAtCrash = await count('EngineCycleOpened');
    const second = await startQcat(env, 90_000, ['--demo']);
    try {
      await waitFor(
        'cycles after the restart',
        async () => (await count('EngineCycleOpened')) >= cyclesAtCrash + 100,
      );
      expect(second.output()).toMatch(/paper engine paper-1m: leading/);
      // The gauges of EngineStalled and CandlesStale (monitoring/prometheus/rules/ops-alerts.yml).
      const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(second.output())?.[1];
      const metrics = await (await fetch(`${url ?? ''}/metrics`)).text();
      const gauge = (name: string): number =>
        Number(
          new RegExp(`^${name}\\{[^}]*timeframe="1m"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1],
        );
      expect(gauge('engine_last_tick_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(gauge('engine_bar_open_timestamp_seconds')).toBeGreaterThan(0);
      expect(gauge('market_candle_latest_open_timestamp_seconds')).toBeGreaterThanOrEqual(
        gauge('engine_bar_open_timestamp_seconds'),
      );
    } finally {
      expect(await second.stop()).toBe(0);
    }

    // Replaying the write-ahead log alone must give exactly what the two processes wrote.
    const log = await store.readAll({ maxCount: 10_000_000 });
    const replayStore = new InMemoryEventStore();
    for (const event of log.filter((e) => e.streamId === engineStream(PORTFOLIO)))
      await replayStore.appendToStream(event.streamId, [
        { eventId: event.eventId, type: event.type, data: event.data, metadata: event.metadata },
      ]);
    const replay = new PaperEngine({
      portfolioId: PORTFOLIO,
      timeframe: '1m',
      currency: 'USDT',
      initialCash: 100_000,
      store: replayStore,
      candles: new MarketDataStore(pool),
      strategies: { strategies: () => Promise.resolve<StrategyBook[]>([]) },
      snapshots: { load: () => Promise.resolve(undefined), save: () => Promise.resolve() },
      // Risk on, as in serve; a replay takes every snapshot from the records, not from here.
      risk: { snapshot: () => Promise.resolve({ snapshot: emptySnapshot(), position: -1n }) },
    });
    const cycles = await replay.recover();
    expect(cycles).toBeGreaterThan(cyclesAtCrash);
    const written = byStream(log);
    const expected = byStream(await replayStore.readAll({ maxCount: 10_000_000 }));
    expect(written.size).toBeGreaterThan(5);
    expect([...written.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [streamId, events] of expected)
      expect(written.get(streamId), streamId).toEqual(events);

    // No order twice, no fill twice.
    const submitted = log.filter((e) => e.type === 'OrderSubmitted');
    expect(new Set(submitted.map((e) => e.streamId)).size).toBe(submitted.length);
    const fillIds = log
      .filter((e) => e.type === 'OrderFilled' || e.type === 'OrderPartiallyFilled')
      .map((e) => (e.data as { fill: { fillId: string } }).fill.fillId);
    expect(new Set(fillIds).size).toBe(fillIds.length);

    // The saved engine state rests exactly the orders that the log leaves open.
    const { rows } = await pool.query<{ snapshot: EngineSnapshot }>(
      'SELECT snapshot FROM qcat_engine.snapshots WHERE portfolio_id = $1',
      [PORTFOLIO],
    );
    const snapshot = rows[0]?.snapshot;
    expect(snapshot?.cycle).toBe(cycles - 1);
    const open = [...written.entries()]
      .filter(([id]) => id.startsWith('order-'))
      .filter(([, events]) =>
        ['OrderAccepted', 'OrderPartiallyFilled'].includes(events.at(-1)?.type ?? ''),
      )
      .map(([id]) => id.slice('order-'.length))
      .sort();
    expect(snapshot?.state.venue.open.map((o) => o.request.clientOrderId).sort()).toEqual(open);
  }, 240_000);
});
