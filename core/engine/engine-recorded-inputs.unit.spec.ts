import { describe, expect, it } from 'vitest';
import type { EventStore, JsonObject, RecordedEvent } from '../eventstore/event-store.js';
import { InMemoryEventStore } from '../eventstore/in-memory-event-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import type { Candle } from '../market/types.js';
import { backtest } from '../trading/backtest.js';
import type { PaperVenueCosts } from '../trading/venue.js';
import {
  PaperEngine,
  engineStream,
  type CycleRecord,
  type EngineOptions,
  type EngineSnapshot,
  type StrategyBook,
} from './engine.js';

/**
 * What a cycle depends on is in its write-ahead record (ADR 008, ADR 019): a replay gives the same
 * events whatever the process replaying it is configured with, and a record written before an
 * input was recorded replays with what that input was then.
 */
const ORIGIN = Date.UTC(2026, 2, 2);
const PORTFOLIO = 'paper-1m';
const instruments = DEFAULT_INSTRUMENTS.filter((i) => ['BTCUSDT', 'ETHUSDT'].includes(i.symbol));
const candles: Candle[] = [
  ...generateCandles({ seed: 11, from: ORIGIN, to: ORIGIN + 360 * 60_000, instruments }),
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

/** Costs far from the defaults, so that fills under one and the other differ. */
const COSTS_A: PaperVenueCosts = {
  slippageBps: 25,
  makerFeeBps: 10,
  takerFeeBps: 20,
  maxVolumeShare: 0.05,
};
const COSTS_B: PaperVenueCosts = {
  slippageBps: 0,
  makerFeeBps: 0,
  takerFeeBps: 0,
  maxVolumeShare: null,
};

function engine(store: EventStore, overrides: Partial<EngineOptions> = {}): PaperEngine {
  const snapshots = new Map<string, EngineSnapshot>();
  return new PaperEngine({
    portfolioId: PORTFOLIO,
    timeframe: '1m',
    currency: 'USDT',
    initialCash: 100_000,
    store,
    candles: {
      candlesAfter: (_timeframe, symbols, after, limit) =>
        Promise.resolve(
          candles.filter((c) => c.openTime > after && symbols.includes(c.symbol)).slice(0, limit),
        ),
      latestOpenTime: () => Promise.resolve(candles.at(-1)?.openTime),
      instruments: (symbols) =>
        Promise.resolve(instruments.filter((i) => symbols.includes(i.symbol))),
    },
    strategies: { strategies: () => Promise.resolve(BOOKS) },
    snapshots: {
      load: (id) => Promise.resolve(snapshots.get(id)),
      save: (snapshot) => {
        snapshots.set(snapshot.portfolioId, structuredClone(snapshot));
        return Promise.resolve();
      },
    },
    startAfter: ORIGIN - 60_000,
    batchSize: 97,
    snapshotEvery: 13,
    ...overrides,
  });
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

async function runToEnd(paper: PaperEngine): Promise<void> {
  while ((await paper.tick()) > 0);
}

const outputs = async (store: EventStore): Promise<RecordedEvent[]> =>
  (await store.readAll({ maxCount: 1_000_000 })).filter(
    (e) => e.streamId !== engineStream(PORTFOLIO),
  );
const shape = (events: readonly RecordedEvent[]) =>
  events
    .map(({ eventId, streamId, type, data }) => ({ eventId, streamId, type, data }))
    .sort((a, b) => a.eventId.localeCompare(b.eventId));

describe('the paper engine records what a cycle depends on', () => {
  it('replays a cut-short run with the venue costs it was run with, not the ones configured at the replay', async () => {
    const reference = new InMemoryEventStore();
    await runToEnd(engine(reference, { costs: COSTS_A }));
    const records = await reference.readStream(engineStream(PORTFOLIO));
    const cycleOf = new Map(
      records.map((r) => [r.eventId, (r.data as unknown as CycleRecord).cycle]),
    );

    const store = new InMemoryEventStore();
    await expect(runToEnd(engine(crashingStore(store, 500), { costs: COSTS_A }))).rejects.toThrow(
      'killed',
    );
    const recorded = (await store.readStream(engineStream(PORTFOLIO))).length;
    // Restarted with other costs configured: the recorded cycles are replayed, cut one included.
    const restarted = engine(store, { costs: COSTS_B });
    expect(await restarted.recover()).toBe(recorded);

    const expected = (await outputs(reference)).filter(
      (e) => (cycleOf.get(e.metadata.causationId ?? '') ?? Infinity) < recorded,
    );
    const fills = expected.filter((e) => e.type === 'OrderFilled');
    expect(fills.length).toBeGreaterThan(3); // the comparison is about fills and fees
    expect(fills.every((e) => (e.data as { fill: { fee: number } }).fill.fee > 0)).toBe(true);
    expect(shape(await outputs(store))).toEqual(shape(expected));

    // The configured costs apply from the next cycle on, recorded with it.
    await runToEnd(restarted);
    const next = (await store.readStream(engineStream(PORTFOLIO)))[recorded]
      ?.data as unknown as CycleRecord;
    expect(next.config?.venue).toEqual(COSTS_B);
    expect((records[0]?.data as unknown as CycleRecord).config?.venue).toEqual(COSTS_A);
  });

  it('replays a record from before costs and order ids were recorded with the costs and ids of then', async () => {
    const written = new InMemoryEventStore();
    await runToEnd(engine(written));
    // The same log as an older engine wrote it: a configuration without venue or order ids.
    const old = new InMemoryEventStore();
    for (const record of await written.readStream(engineStream(PORTFOLIO))) {
      const data = record.data as unknown as CycleRecord;
      const config = data.config
        ? (({ venue: _venue, clientOrderIds: _ids, ...rest }) => rest)(data.config)
        : null;
      await old.appendToStream(engineStream(PORTFOLIO), [
        {
          eventId: record.eventId,
          type: record.type,
          data: { ...data, config },
          metadata: record.metadata,
        },
      ]);
    }
    expect(await engine(old, { costs: COSTS_B }).recover()).toBeGreaterThan(300);

    const then = backtest(
      {
        portfolioId: PORTFOLIO,
        currency: 'USDT',
        initialCash: 100_000,
        timeframe: '1m',
        instruments,
        venue: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
        clientOrderIds: 'strategy',
        books: BOOKS.flatMap((book) =>
          book.symbols.map((symbol) => ({
            strategyId: book.strategyId,
            symbol,
            kind: book.kind,
            parameters: book.parameters,
            allocation: book.capital / 100_000,
            enabled: true,
          })),
        ).sort((a, b) =>
          `${a.strategyId}|${a.symbol}`.localeCompare(`${b.strategyId}|${b.symbol}`),
        ),
      },
      candles,
    );
    // By order: the engine appends stream by stream, so only each order's own sequence counts.
    const byOrder = (events: readonly { type: string; data: unknown }[]) => {
      const orders = new Map<string, { type: string; data: unknown }[]>();
      for (const { type, data } of events) {
        if (!type.startsWith('Order')) continue;
        const id = (data as { clientOrderId: string }).clientOrderId;
        orders.set(id, [...(orders.get(id) ?? []), { type, data }]);
      }
      return [...orders].sort(([a], [b]) => a.localeCompare(b));
    };
    const replayed = (await outputs(old)).filter((e) => e.type.startsWith('Order'));
    expect(byOrder(then.events).length).toBeGreaterThan(10);
    expect(byOrder(replayed)).toEqual(byOrder(then.events));
    // Order ids as they were then: strategy, bar, sequence.
    const first = replayed.find((e) => e.type === 'OrderSubmitted')?.data as JsonObject;
    expect(first['clientOrderId']).toMatch(/^(sma|rsi)-1-\d+-\d+$/);
  });

  it('names the orders of two books of one strategy placed on the same bar apart: one order per id', async () => {
    const store = new InMemoryEventStore();
    await runToEnd(engine(store));
    const submitted = (await outputs(store)).filter((e) => e.type === 'OrderSubmitted');
    const data = submitted.map(
      (e) => e.data as { strategyId: string; symbol: string; time: number; clientOrderId: string },
    );
    // The case is there: one strategy ordering on BTC and ETH at the same bar.
    const bars = data.filter((d) => d.strategyId === 'sma-1').map((d) => d.time);
    expect(bars.length).toBeGreaterThan(new Set(bars).size);
    // Every order stream holds one order.
    expect(new Set(submitted.map((e) => e.streamId)).size).toBe(submitted.length);
    expect(new Set(data.map((d) => d.clientOrderId)).size).toBe(data.length);
  });
});
