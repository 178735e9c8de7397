import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { ensureEngineSchema, PostgresSnapshotStore } from '../adapters/postgres/engine-store.js';
import { ensureMarketSchema, MarketDataStore } from '../adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../adapters/postgres/postgres-event-store.js';
import type { RecordedEvent } from '../eventstore/event-store.js';
import { DEFAULT_INSTRUMENTS } from '../market/synthetic.js';
import type { Candle } from '../market/types.js';
import { emptySnapshot, type RiskSnapshot } from '../risk/checks.js';
import { DEFAULT_LIMITS } from '../risk/limits.js';
import { backtest } from '../trading/backtest.js';
import { portfolioValuedEvent } from '../trading/accounting-events.js';
import type { AppliedAllocation } from './allocation.js';
import {
  PaperEngine,
  engineStream,
  valuationStream,
  type CycleRecord,
  type StrategyBook,
} from './engine.js';

/**
 * Capability 4 end to end on the paper engine: two strategies share one portfolio under an
 * allocation; equity falls 20%; their positions move toward the new targets through the pre-trade
 * check, in steps the limits allow, and no limit is breached. And the same allocation in a
 * backtest gives the same orders and fills (parity, so an allocation can be tried before approval).
 */

const MINUTE = 60_000;
const ORIGIN = Date.UTC(2026, 2, 2);
const PORTFOLIO = 'paper-1m';
const instruments = DEFAULT_INSTRUMENTS.filter((i) => ['BTCUSDT', 'ETHUSDT'].includes(i.symbol));
const rising = { fastPeriod: 2, slowPeriod: 3, positionFraction: 1 };
const BOOKS: StrategyBook[] = [
  {
    strategyId: 's-btc',
    status: 'paper',
    kind: 'sma_crossover',
    parameters: rising,
    symbols: ['BTCUSDT'],
    capital: 30_000,
  },
  {
    strategyId: 's-eth',
    status: 'paper',
    kind: 'sma_crossover',
    parameters: rising,
    symbols: ['ETHUSDT'],
    capital: 30_000,
  },
];
const ALLOCATION: AppliedAllocation = {
  proposalId: 'p1',
  weights: { 's-btc': 0.45, 's-eth': 0.45 },
  sizing: { enabled: true, band: 0.05 },
};
const CRASH = 20;

/** BTC rises all along; ETH rises, halves at bar CRASH, then rises again. */
function candles(): Candle[] {
  const out: Candle[] = [];
  let eth = 2_000;
  let btc = 40_000;
  for (let i = 0; i < 40; i++) {
    const openTime = ORIGIN + i * MINUTE;
    const btcOpen = btc;
    btc = Math.round(btc * 1.001 * 100) / 100;
    const ethOpen = eth;
    eth = Math.round((i === CRASH ? eth * 0.5 : eth * 1.001) * 100) / 100;
    const candle = (symbol: string, open: number, close: number): Candle => ({
      symbol,
      timeframe: '1m',
      openTime,
      open,
      high: Math.max(open, close),
      low: Math.min(open, close),
      close,
      volume: 1_000_000,
    });
    out.push(candle('BTCUSDT', btcOpen, btc), candle('ETHUSDT', ethOpen, eth));
  }
  return out;
}

/** Portfolio limits: at most 20,000 per order, a position at most half the equity. */
const LIMITS: RiskSnapshot = {
  ...emptySnapshot(),
  limits: {
    'portfolio:paper-1m': {
      ...DEFAULT_LIMITS.portfolio,
      maxOrderNotional: 20_000,
      maxPositionShareOfEquity: 0.5,
      maxDrawdown: null,
      dailyLossLimit: null,
    },
  },
};

type Harness = { database: TestDatabase; pool: pg.Pool; store: PostgresEventStore };

async function harness(label: string): Promise<Harness> {
  const database = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  await ensureMarketSchema(pool);
  await ensureEngineSchema(pool);
  const market = new MarketDataStore(pool);
  await market.upsertInstruments(instruments);
  await market.insertCandles(candles());
  return { database, pool, store };
}

function engine(h: Harness, risk: RiskSnapshot | undefined): PaperEngine {
  return new PaperEngine({
    portfolioId: PORTFOLIO,
    timeframe: '1m',
    currency: 'USDT',
    initialCash: 100_000,
    store: h.store,
    candles: new MarketDataStore(h.pool),
    strategies: { strategies: () => Promise.resolve(BOOKS) },
    snapshots: new PostgresSnapshotStore(h.pool),
    allocations: { current: () => Promise.resolve(ALLOCATION) },
    ...(risk
      ? { risk: { snapshot: () => Promise.resolve({ snapshot: risk, position: 0n }) } }
      : {}),
    startAfter: ORIGIN - MINUTE,
    batchSize: 17,
  });
}

async function runToEnd(e: PaperEngine): Promise<void> {
  while ((await e.tick()) > 0);
}

/** A stored event's data as a record (written by the engine in this very test). */
const d = (event: RecordedEvent) => event.data as Record<string, unknown>;
const ofType = (events: readonly RecordedEvent[], ...types: string[]) =>
  events.filter((e) => types.includes(e.type));

describe('balance-driven sizing on the paper engine', () => {
  let h: Harness;
  let all: RecordedEvent[];
  beforeAll(async () => {
    h = await harness('allocation_engine');
    await runToEnd(engine(h, LIMITS));
    all = await h.store.readAll({ maxCount: 100_000 });
  });
  afterAll(async () => {
    await h.store.close();
    await h.pool.end();
    await h.database.drop();
  });

  it('sizes each member from its weight, in steps of at most the order limit, none denied', () => {
    // Resizing never meets a denial: it stays within the limits' room. The one denial is ETH's
    // re-entry after the crash: its strategy's drawdown breaker (10%) halted it. Limits win.
    const denied = ofType(all, 'OrderDenied').map((e) => d(e)['reason'] as string);
    expect(denied).toEqual(['TRADING_HALTED: scope=strategy:s-eth']);
    const submitted = ofType(all, 'OrderSubmitted');
    const first = submitted.filter((e) => d(e)['symbol'] === 'BTCUSDT' && d(e)['side'] === 'buy');
    // 0.45 × 100,000 = 45,000 of BTC at ≤ 20,000 per order: at least three orders.
    expect(first.length).toBeGreaterThanOrEqual(3);
    const fills = ofType(all, 'OrderFilled');
    for (const fill of fills) {
      const f = d(fill)['fill'] as { price: number; quantity: number };
      expect(f.price * f.quantity).toBeLessThanOrEqual(20_000 * 1.01);
    }
  });

  it('equity falls 20%: positions are reduced toward the new targets, no limit breached', () => {
    const valuations = ofType(all, 'PortfolioValued').map((e) => portfolioValuedEvent.parse(e));
    const crash = valuations.findIndex((v) => v.time === ORIGIN + (CRASH + 1) * MINUTE);
    const before = valuations[crash - 1];
    const atCrash = valuations[crash];
    if (!before || !atCrash) throw new Error('no valuation around the crash');
    expect(atCrash.equity / before.equity).toBeLessThan(0.8);
    const btcBefore = before.positions.find((p) => p.symbol === 'BTCUSDT')?.quantity ?? 0;
    // Orders decided after the crash: BTC is sold (reduce-only) toward 0.45 × the lower equity.
    const sells = ofType(all, 'OrderSubmitted').filter(
      (e) =>
        d(e)['symbol'] === 'BTCUSDT' &&
        d(e)['side'] === 'sell' &&
        Number(d(e)['time']) > ORIGIN + CRASH * MINUTE,
    );
    expect(sells.length).toBeGreaterThan(0);
    expect(sells.every((e) => d(e)['reduceOnly'] === true)).toBe(true);
    const last = valuations.at(-1);
    if (!last) throw new Error('no valuation');
    const btc = last.positions.find((p) => p.symbol === 'BTCUSDT');
    if (!btc) throw new Error('no BTC position');
    expect(btc.quantity).toBeLessThan(btcBefore);
    const target = 0.45 * last.equity;
    expect(Math.abs(btc.quantity * btc.markPrice - target) / target).toBeLessThanOrEqual(
      0.05 + 0.01,
    );
    // No fill ever took a position above half the equity (the position limit).
    for (const v of valuations)
      for (const p of v.positions)
        if (v.time < ORIGIN + (CRASH + 1) * MINUTE || v.time > ORIGIN + (CRASH + 3) * MINUTE)
          expect(Math.abs(p.quantity * p.markPrice)).toBeLessThanOrEqual(0.5 * v.equity * 1.005);
  });

  it('records the allocation in its write-ahead log (the cycle replays the same sizes)', async () => {
    const [first] = await h.store.readStream(engineStream(PORTFOLIO), { maxCount: 1 });
    const record = first?.data as unknown as CycleRecord;
    expect(record.config?.sizing).toEqual({ band: 0.05 });
    expect(record.config?.books.map((b) => [b.strategyId, b.allocation, b.capital])).toEqual([
      ['s-btc', 0.45, 30_000],
      ['s-eth', 0.45, 30_000],
    ]);
  });
});

describe('backtest parity under an allocation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness('allocation_parity');
  });
  afterAll(async () => {
    await h.store.close();
    await h.pool.end();
    await h.database.drop();
  });

  it('the backtest of the same allocation gives the same orders and fills as the paper engine', async () => {
    await runToEnd(engine(h, undefined));
    const [first] = await h.store.readStream(engineStream(PORTFOLIO), { maxCount: 1 });
    const config = (first?.data as unknown as CycleRecord).config;
    if (!config) throw new Error('no configuration recorded');
    const result = backtest(config, candles());
    const trading = (await h.store.readAll({ maxCount: 100_000 })).filter(
      (e) =>
        e.streamId !== engineStream(PORTFOLIO) &&
        e.streamId !== valuationStream(PORTFOLIO) &&
        ['OrderSubmitted', 'OrderFilled', 'OrderDenied'].includes(e.type),
    );
    const expected = result.events.filter((e) =>
      ['OrderSubmitted', 'OrderFilled', 'OrderDenied'].includes(e.type),
    );
    expect(expected.length).toBeGreaterThan(6);
    const sorted = (events: readonly { type: string; data: unknown }[]) =>
      events
        .map(({ type, data }) => ({ type, data }))
        .sort((a, b) => JSON.stringify(a).length - JSON.stringify(b).length)
        .sort((a, b) =>
          `${(a.data as { clientOrderId: string }).clientOrderId}${a.type}`.localeCompare(
            `${(b.data as { clientOrderId: string }).clientOrderId}${b.type}`,
          ),
        );
    expect(sorted(trading)).toEqual(sorted(expected));
  });
});
