import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { ensureEngineSchema, PostgresSnapshotStore } from '../adapters/postgres/engine-store.js';
import { ensureMarketSchema, MarketDataStore } from '../adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../adapters/postgres/postgres-event-store.js';
import type { EventStore, JsonObject, RecordedEvent } from '../eventstore/event-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import type { Candle } from '../market/types.js';
import { accountStream, positionStream } from '../trading/accounting.js';
import { backtest } from '../trading/backtest.js';
import { orderStream } from '../trading/orders.js';
import type { TradingEvent } from '../trading/stepper.js';
import { deskStream } from './desk.js';
import {
  EngineFencedError,
  ENGINE_ACTOR,
  PaperEngine,
  engineStream,
  valuationStream,
  type EngineOptions,
  type StrategyBook,
} from './engine.js';

const ORIGIN = Date.UTC(2026, 2, 2);
const PORTFOLIO = 'paper-1m';
const instruments = DEFAULT_INSTRUMENTS.filter((i) => ['BTCUSDT', 'ETHUSDT'].includes(i.symbol));
const candles: Candle[] = [
  ...generateCandles({ seed: 11, from: ORIGIN, to: ORIGIN + 720 * 60_000, instruments }),
].sort((a, b) => a.openTime - b.openTime || a.symbol.localeCompare(b.symbol));

const BOOKS: StrategyBook[] = [
  {
    strategyId: 'sma-1',
    status: 'paper',
    kind: 'sma_crossover',
    parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
    symbols: ['BTCUSDT', 'ETHUSDT'],
    capital: 40_000,
  },
  {
    strategyId: 'rsi-1',
    status: 'paper',
    kind: 'rsi_mean_reversion',
    parameters: { period: 7, oversold: 35, overbought: 60, positionFraction: 0.5 },
    symbols: ['ETHUSDT'],
    capital: 30_000,
  },
];

/** What the backtester makes of the same candles: the events each stream must hold. */
function expectedStreams(): Map<string, { type: string; data: JsonObject }[]> {
  const result = backtest(
    {
      portfolioId: PORTFOLIO,
      currency: 'USDT',
      initialCash: 100_000,
      timeframe: '1m',
      instruments,
      books: BOOKS.flatMap((book) =>
        book.symbols.map((symbol) => ({
          strategyId: book.strategyId,
          symbol,
          kind: book.kind,
          parameters: book.parameters,
          allocation: book.capital / 100_000,
          enabled: true,
        })),
      )
        // The engine orders new books by strategy and symbol.
        .sort((a, b) => `${a.strategyId}|${a.symbol}`.localeCompare(`${b.strategyId}|${b.symbol}`)),
    },
    candles,
  );
  const streams = new Map<string, { type: string; data: JsonObject }[]>();
  for (const event of result.events) {
    const id = streamOf(event);
    const list = streams.get(id) ?? [];
    list.push({ type: event.type, data: event.data });
    streams.set(id, list);
  }
  return streams;
}

function streamOf(event: TradingEvent): string {
  switch (event.type) {
    case 'PositionChanged':
    case 'PositionClosed':
      return positionStream(PORTFOLIO, event.data.strategyId, event.data.symbol);
    case 'CashBalanceChanged':
      return accountStream(PORTFOLIO);
    default:
      return orderStream(event.data.clientOrderId);
  }
}

/** Every trading event in the store, by stream (the engine's own streams and the desk left out). */
async function storedStreams(store: EventStore): Promise<Map<string, RecordedEvent[]>> {
  const all = await store.readAll({ maxCount: 1_000_000 });
  const streams = new Map<string, RecordedEvent[]>();
  for (const event of all) {
    if (
      event.streamId === engineStream(PORTFOLIO) ||
      event.streamId === valuationStream(PORTFOLIO) ||
      event.streamId === deskStream(PORTFOLIO)
    )
      continue;
    const list = streams.get(event.streamId) ?? [];
    list.push(event);
    streams.set(event.streamId, list);
  }
  return streams;
}

/** Fails every append after the first `budget`: a process killed between two appends. */
function crashingStore(store: EventStore, budget: number): EventStore {
  let left = budget;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'appendToStream')
        return async (...args: Parameters<EventStore['appendToStream']>) => {
          if (left-- <= 0) throw new Error('killed');
          return target.appendToStream(...args);
        };
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

type Harness = {
  database: TestDatabase;
  pool: pg.Pool;
  store: PostgresEventStore;
  market: MarketDataStore;
  engine(overrides?: Partial<EngineOptions>): PaperEngine;
  close(): Promise<void>;
};

async function harness(label: string, books: () => StrategyBook[] = () => BOOKS): Promise<Harness> {
  const database = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // A dropped test database ends its connections: not an error here.
  pool.on('error', () => undefined);
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  await ensureMarketSchema(pool);
  await ensureEngineSchema(pool);
  const market = new MarketDataStore(pool);
  await market.upsertInstruments(instruments);
  await market.insertCandles(candles);
  const snapshots = new PostgresSnapshotStore(pool);
  return {
    database,
    pool,
    store,
    market,
    engine: (overrides = {}) =>
      new PaperEngine({
        portfolioId: PORTFOLIO,
        timeframe: '1m',
        currency: 'USDT',
        initialCash: 100_000,
        store,
        candles: market,
        strategies: { strategies: () => Promise.resolve(books()) },
        snapshots,
        startAfter: ORIGIN - 60_000,
        batchSize: 97,
        snapshotEvery: 13,
        ...overrides,
      }),
    close: async () => {
      await store.close();
      await pool.end();
      await database.drop();
    },
  };
}

async function runToEnd(engine: PaperEngine): Promise<void> {
  while ((await engine.tick()) > 0);
}

function expectSameAsBacktest(stored: Map<string, RecordedEvent[]>): void {
  const expected = expectedStreams();
  expect(expected.size).toBeGreaterThan(10); // the run trades: the comparison means something
  expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [streamId, events] of expected)
    expect(
      stored.get(streamId)?.map(({ type, data }) => ({ type, data })),
      streamId,
    ).toEqual(events);
}

describe('PaperEngine (PostgreSQL event store)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness('engine');
  });
  afterAll(async () => h.close());

  it('trades exactly like the backtester over the same candles: identical orders and fills', async () => {
    await runToEnd(h.engine());
    const stored = await storedStreams(h.store);
    expectSameAsBacktest(stored);
    const fills = [...stored.values()]
      .flat()
      .filter((e) => e.type === 'OrderFilled' || e.type === 'OrderPartiallyFilled');
    expect(fills.length).toBeGreaterThan(5);
    expect(fills.every((e) => e.metadata.actor === ENGINE_ACTOR)).toBe(true);
    // One write-ahead record per bar time (plus the first, configuring one).
    const cycles = await h.store.readStream(engineStream(PORTFOLIO));
    expect(cycles).toHaveLength(720 + 1);
    // Every event of a cycle is caused by (and correlated with) the cycle's record.
    const cycleIds = new Set(cycles.map((c) => c.eventId));
    expect(fills.every((e) => cycleIds.has(e.metadata.causationId ?? ''))).toBe(true);
  });

  it('values the portfolio after every bar: equity = cash + positions at the close', async () => {
    const valuations = await h.store.readStream(valuationStream(PORTFOLIO));
    expect(valuations).toHaveLength(720);
    const last = valuations.at(-1)?.data as {
      cash: number;
      equity: number;
      time: number;
      positions: { quantity: number; markPrice: number }[];
    };
    const lastCandles = candles.slice(-2);
    expect(last.time).toBe(ORIGIN + 720 * 60_000);
    const marked = last.positions.reduce((sum, p) => sum + p.quantity * p.markPrice, 0);
    expect(last.equity).toBeCloseTo(last.cash + marked, 6);
    for (const position of last.positions)
      expect(lastCandles.map((c) => c.close)).toContain(position.markPrice);
  });

  it('refuses to write a cycle another engine already wrote (fencing)', async () => {
    const stale = h.engine();
    // Recovers to the end, then a second engine writes one more cycle first.
    await stale.recover();
    const other = h.engine();
    await other.recover();
    await h.store.appendToStream(
      deskStream(PORTFOLIO),
      [
        {
          type: 'ManualCancelRequested',
          data: { clientOrderId: 'none', reason: 'x', requestedAt: 0 },
          metadata: { actor: 'apikey:t' },
        },
      ],
      { expectedRevision: 'any' },
    );
    expect(await other.tick()).toBe(1);
    await expect(stale.tick()).rejects.toBeInstanceOf(EngineFencedError);
  });
});

describe('PaperEngine after kill -9', () => {
  it.each([3, 40, 177])(
    'a run killed after %i appends and restarted ends with the same log: no lost or duplicate orders and fills',
    async (budget) => {
      const h = await harness(`engine_crash_${budget}`);
      try {
        const doomed = h.engine({ store: crashingStore(h.store, budget) });
        await expect(runToEnd(doomed)).rejects.toThrow('killed');
        const restarted = h.engine({ recoveryPage: 50 });
        await runToEnd(restarted);
        const stored = await storedStreams(h.store);
        expectSameAsBacktest(stored);
        const ids = [...stored.values()].flat().map((e) => e.eventId);
        expect(new Set(ids).size).toBe(ids.length);
        // Resting orders survived: the venue state holds exactly the orders the log leaves open.
        const open = [...stored.entries()]
          .filter(([id]) => id.startsWith('order-'))
          .filter(([, events]) =>
            ['OrderAccepted', 'OrderPartiallyFilled'].includes(events.at(-1)?.type ?? ''),
          )
          .map(([id]) => id.slice('order-'.length))
          .sort();
        const state = restarted.status().state;
        expect(state?.venue.open.map((o) => o.request.clientOrderId).sort()).toEqual(open);
      } finally {
        await h.close();
      }
    },
    60_000,
  );
});

describe('PaperEngine manual orders and configuration changes', () => {
  it('takes desk orders in with the trader as actor; unknown books are rejected; cancels go through', async () => {
    const h = await harness('engine_desk');
    try {
      const engine = h.engine({ startAfter: ORIGIN + 100 * 60_000, batchSize: 2 });
      await engine.tick(); // configures, then the first bar
      const desk = async (type: string, data: JsonObject) =>
        h.store.appendToStream(
          deskStream(PORTFOLIO),
          [{ type, data, metadata: { actor: 'apikey:trader-1', correlationId: 'c-1' } }],
          { expectedRevision: 'any' },
        );
      const order = (clientOrderId: string, extra: JsonObject): JsonObject => ({
        clientOrderId,
        portfolioId: PORTFOLIO,
        strategyId: 'sma-1',
        symbol: 'BTCUSDT',
        side: 'buy',
        type: 'market',
        quantity: 0.01,
        limitPrice: null,
        stopPrice: null,
        reduceOnly: false,
        ...extra,
      });
      await desk('ManualOrderRequested', { order: order('m-1', {}), requestedAt: 1 });
      await desk('ManualOrderRequested', {
        order: order('m-2', { strategyId: 'nobody' }),
        requestedAt: 1,
      });
      await desk('ManualOrderRequested', {
        order: order('m-3', { type: 'limit', limitPrice: 1000 }),
        requestedAt: 1,
      });
      await engine.tick();
      await desk('ManualCancelRequested', {
        clientOrderId: 'm-3',
        reason: 'MANUAL: changed my mind',
        requestedAt: 2,
      });
      await engine.tick();

      const types = async (id: string) =>
        (await h.store.readStream(orderStream(id))).map((e) => e.type);
      expect(await types('m-1')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderFilled']);
      expect(await types('m-2')).toEqual(['OrderSubmitted', 'OrderRejected']);
      expect(await types('m-3')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderCancelled']);
      const m1 = await h.store.readStream(orderStream('m-1'));
      const deskEvents = await h.store.readStream(deskStream(PORTFOLIO));
      expect(m1[0]?.metadata).toMatchObject({
        actor: 'apikey:trader-1',
        causationId: deskEvents[0]?.eventId,
        correlationId: 'c-1',
      });
      expect(m1[2]?.metadata.actor).toBe(ENGINE_ACTOR); // the fill comes from the bar
      const rejected = await h.store.readStream(orderStream('m-2'));
      expect((rejected[1]?.data as { reason: string }).reason).toMatch(/^UNKNOWN_BOOK: /);
    } finally {
      await h.close();
    }
  });

  it('a paused strategy stops placing orders but keeps its position; resumed, it trades again', async () => {
    let status = 'paper';
    const h = await harness('engine_pause', () => [{ ...(BOOKS[0] as StrategyBook), status }]);
    try {
      const engine = h.engine({ batchSize: 200 });
      await engine.tick(); // bars 0..198
      await engine.tick();
      status = 'paused';
      await engine.tick();
      await engine.tick();
      status = 'paper';
      await runToEnd(engine);
      const cycles = (await h.store.readStream(engineStream(PORTFOLIO))).map(
        (e) => e.data as { barTime: number; config: { books: { enabled?: boolean }[] } | null },
      );
      const changes = cycles.filter((c) => c.config !== null);
      expect(changes.map((c) => c.config?.books.map((b) => b.enabled))).toEqual([
        [true, true],
        [false, false],
        [true, true],
      ]);
      const pausedFrom = changes[1]?.barTime ?? 0;
      const resumedAt = changes[2]?.barTime ?? 0;
      const submitted = (await h.store.readAll({ maxCount: 1_000_000 }))
        .filter((e) => e.type === 'OrderSubmitted')
        .map((e) => (e.data as { time: number }).time);
      expect(submitted.some((t) => t >= pausedFrom + 60_000 && t < resumedAt + 60_000)).toBe(false);
      expect(submitted.some((t) => t > resumedAt)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
