import { describe, expect, it } from 'vitest';
import { QcatError, ValidationError } from '../errors.js';
import type { Candle } from '../market/types.js';
import { backtest } from './backtest.js';
import { BTC, ETH, MINUTE, T0, bar, barsFromCloses, randomWalk } from './fixtures.spec.js';
import { orders, reason, type OrderCommand, type OrderState } from './orders.js';
import {
  Stepper,
  closedTrades,
  type EngineState,
  type RiskCheck,
  type RiskContext,
  type StepperConfig,
  type TradingEvent,
} from './stepper.js';

const sma = { fastPeriod: 2, slowPeriod: 3, positionFraction: 0.5 };

const config = (overrides: Partial<StepperConfig> = {}): StepperConfig => ({
  portfolioId: 'p1',
  currency: 'USDT',
  initialCash: 10_000,
  timeframe: '1m',
  instruments: [BTC, ETH],
  books: [
    { strategyId: 's1', symbol: BTC.symbol, kind: 'sma_crossover', parameters: sma, allocation: 1 },
  ],
  venue: { slippageBps: 10, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: null },
  ...overrides,
});

/** Steps every candle; the events of each step. */
function stepAll(stepper: Stepper, candles: readonly Candle[], state = stepper.initialState()) {
  const perBar: TradingEvent[][] = [];
  for (const candle of candles) {
    const result = stepper.step(state, candle);
    expect(result.state).toBe(state);
    perBar.push([...result.events]);
  }
  return { state, perBar };
}

const types = (events: readonly TradingEvent[]) => events.map((e) => e.type);

// closes 100, 101, 102, 103, 101, 99, 98 with SMA(2, 3):
// bar 2: 101.5 > 101 → target 0.5; bar 4: 102 = 102 → target 0.
const CLOSES = [100, 101, 102, 103, 101, 99, 98];

describe('step: from signal to fills', () => {
  it('orders on a target change, fills at the next open, books position and cash', () => {
    const stepper = new Stepper(config());
    const candles = barsFromCloses(CLOSES);
    const { state, perBar } = stepAll(stepper, candles);
    expect(perBar[0]).toEqual([]);
    expect(perBar[1]).toEqual([]);
    // 10,000 × 1 × 0.5 / 102 = 49.0196 → 49.019 (lot 0.001), at the close of bar 2.
    const id = `s1-BTCUSDT-${T0 + 2 * MINUTE}-0`;
    expect(perBar[2]).toEqual([
      {
        type: 'OrderSubmitted',
        data: {
          clientOrderId: id,
          portfolioId: 'p1',
          strategyId: 's1',
          symbol: 'BTCUSDT',
          side: 'buy',
          type: 'market',
          quantity: 49.019,
          limitPrice: null,
          stopPrice: null,
          reduceOnly: false,
          time: T0 + 3 * MINUTE,
        },
      },
      {
        type: 'OrderAccepted',
        data: {
          clientOrderId: id,
          venueOrderId: `paper:${id}`,
          quantity: 49.019,
          limitPrice: null,
          stopPrice: null,
          time: T0 + 3 * MINUTE,
        },
      },
    ]);
    // Bar 3 opens at 102: 102 × 1.001 = 102.102 → 102.11 (tick, against the buyer).
    expect(types(perBar[3]!)).toEqual(['OrderFilled', 'PositionChanged', 'CashBalanceChanged']);
    const buyFee = 102.11 * 49.019 * 5e-4;
    expect(perBar[3]![0]!.data).toMatchObject({
      fill: { price: 102.11, quantity: 49.019, liquidity: 'taker' },
      time: T0 + 3 * MINUTE,
    });
    expect(perBar[3]![2]!.data).toMatchObject({
      balance: expect.closeTo(10_000 - 102.11 * 49.019 - buyFee, 9) as number,
    });
    // Bar 4: target 0 → sell everything, reduce-only.
    expect(types(perBar[4]!)).toEqual(['OrderSubmitted', 'OrderAccepted']);
    expect(perBar[4]![0]!.data).toMatchObject({
      clientOrderId: `s1-BTCUSDT-${T0 + 4 * MINUTE}-0`,
      side: 'sell',
      quantity: 49.019,
      reduceOnly: true,
    });
    // Bar 5 opens at 101: 101 × 0.999 = 100.899 → 100.89.
    expect(types(perBar[5]!)).toEqual([
      'OrderFilled',
      'PositionClosed',
      'PositionChanged',
      'CashBalanceChanged',
    ]);
    const sellFee = 100.89 * 49.019 * 5e-4;
    const [trade] = closedTrades(perBar[5]!);
    expect(trade).toMatchObject({
      side: 'long',
      quantity: 49.019,
      entryPrice: 102.11,
      exitPrice: 100.89,
    });
    expect(trade!.netPnl).toBeCloseTo((100.89 - 102.11) * 49.019 - buyFee - sellFee, 9);
    expect(perBar[6]).toEqual([]);
    expect(state.account.positions[0]!.quantity).toBe(0);
    expect(state.account.cash).toBeCloseTo(10_000 + trade!.netPnl, 9);
    expect(stepper.equity(state)).toBeCloseTo(state.account.cash, 9);
    expect(state.bars).toBe(7);
  });

  it('ignores a replayed bar, other timeframes and symbols no book trades', () => {
    const stepper = new Stepper(config());
    const candles = barsFromCloses(CLOSES);
    const { state } = stepAll(stepper, candles.slice(0, 3));
    const before = JSON.stringify(state);
    expect(stepper.step(state, candles[2]!).events).toEqual([]);
    expect(stepper.step(state, candles[1]!).events).toEqual([]);
    expect(stepper.step(state, { ...candles[3]!, timeframe: '5m' }).events).toEqual([]);
    expect(stepper.step(state, { ...candles[3]!, symbol: 'SOLUSDT' }).events).toEqual([]);
    expect(JSON.stringify(state)).toBe(before);
    expect(types(stepper.step(state, candles[3]!).events)).toContain('OrderFilled');
  });

  it('puts every order through the risk check; a denial stops it before the venue', () => {
    const seen: RiskContext[] = [];
    const risk: RiskCheck = (order, context) => {
      seen.push(context);
      return order.side === 'buy'
        ? { ok: false, reason: reason('MAX_POSITION', { quantity: order.quantity, max: 10 }) }
        : { ok: true };
    };
    const stepper = new Stepper(config({ risk }));
    const { state, perBar } = stepAll(stepper, barsFromCloses(CLOSES));
    expect(perBar[2]![1]).toEqual({
      type: 'OrderDenied',
      data: {
        clientOrderId: `s1-BTCUSDT-${T0 + 2 * MINUTE}-0`,
        reason: 'MAX_POSITION: quantity=49.019, max=10',
        time: T0 + 3 * MINUTE,
      },
    });
    expect(types(perBar[2]!)).toEqual(['OrderSubmitted', 'OrderDenied']);
    expect(perBar[3]).toEqual([]);
    expect(state.venue.open).toEqual([]);
    expect(seen).toEqual([
      {
        portfolioId: 'p1',
        strategyId: 's1',
        symbol: 'BTCUSDT',
        time: T0 + 3 * MINUTE,
        referencePrice: 102,
        equity: 10_000,
        cash: 10_000,
        positionQuantity: 0,
        openOrders: 0,
      },
    ]);
  });

  it('cancels what is left of an order when the target changes, and trades to the new target', () => {
    const stepper = new Stepper(
      config({ venue: { slippageBps: 0, makerFeeBps: 0, takerFeeBps: 0, maxVolumeShare: 0.1 } }),
    );
    // Bar 3 trades 100 (10 may fill), bar 4 nothing (nothing fills).
    const volumes = [1_000, 1_000, 1_000, 100, 0];
    const candles = barsFromCloses(CLOSES).map((c, i) => ({ ...c, volume: volumes[i] ?? 1_000 }));
    const { perBar, state } = stepAll(stepper, candles.slice(0, 5));
    // Bar 3 fills 10 of 49.019 (10% of 100).
    expect(perBar[3]![0]).toMatchObject({
      type: 'OrderPartiallyFilled',
      data: { filledQuantity: 10, remainingQuantity: 39.019 },
    });
    expect(types(perBar[4]!)).toEqual(['OrderCancelled', 'OrderSubmitted', 'OrderAccepted']);
    expect(perBar[4]![0]!.data).toEqual({
      clientOrderId: `s1-BTCUSDT-${T0 + 2 * MINUTE}-0`,
      reason: 'TARGET_CHANGED: target=0',
      filledQuantity: 10,
      remainingQuantity: 39.019,
      time: T0 + 5 * MINUTE,
    });
    expect(perBar[4]![1]!.data).toMatchObject({ side: 'sell', quantity: 10, reduceOnly: true });
    expect(state.venue.open.map((o) => o.request.side)).toEqual(['sell']);
  });

  it('places no order below the minimum notional', () => {
    // 15 × 0.5 / 102 = 0.0735 → 0.073 BTC ≈ 7.45 USDT < 10.
    const stepper = new Stepper(config({ initialCash: 15 }));
    const { perBar } = stepAll(stepper, barsFromCloses(CLOSES));
    expect(perBar.flat()).toEqual([]);
  });

  it('takes orders from outside the signals through the same risk check and venue', () => {
    const stepper = new Stepper(config());
    const state = stepper.initialState();
    stepper.step(state, bar(T0, 100, 100));
    const order = {
      clientOrderId: 'manual-1',
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: BTC.symbol,
      side: 'buy' as const,
      type: 'limit' as const,
      quantity: 1,
      limitPrice: 98,
      stopPrice: null,
      reduceOnly: false,
    };
    expect(types(stepper.submit(state, order, T0 + MINUTE).events)).toEqual([
      'OrderSubmitted',
      'OrderAccepted',
    ]);
    const filled = stepper.step(state, bar(T0 + MINUTE, 100, 99, { low: 97.5 })).events;
    expect(types(filled)).toEqual(['OrderFilled', 'PositionChanged', 'CashBalanceChanged']);
    expect(filled[0]!.data).toMatchObject({ fill: { price: 98, liquidity: 'maker' } });
    expect(() => stepper.submit(state, { ...order, strategyId: 'nope' }, T0 + 2 * MINUTE)).toThrow(
      QcatError,
    );
    expect(stepper.cancel(state, 'manual-1', 'late', T0).events).toEqual([]);
  });

  it('refuses a configuration it cannot run', () => {
    const book = config().books[0]!;
    expect(() => new Stepper(config({ books: [book, book] }))).toThrow(/configured twice/);
    expect(() => new Stepper(config({ currency: 'EUR' }))).toThrow(/quoted in USDT/);
    expect(() => new Stepper(config({ books: [{ ...book, symbol: 'SOLUSDT' }] }))).toThrow(
      /no instrument/,
    );
    expect(() => new Stepper(config({ books: [{ ...book, allocation: 0 }] }))).toThrow(
      ValidationError,
    );
    expect(
      () => new Stepper(config({ books: [{ ...book, parameters: { fastPeriod: 1 } }] })),
    ).toThrow(/INVALID_PARAMETERS|parameters do not fit/);
  });
});

// ---------------------------------------------------------------------------------------------
// Parity: one uninterrupted backtest vs. bar by bar with restarts from serialized state.

const parityConfig = (): StepperConfig => ({
  portfolioId: 'p1',
  currency: 'USDT',
  initialCash: 50_000,
  timeframe: '1m',
  instruments: [BTC, ETH],
  books: [
    {
      strategyId: 'trend',
      symbol: BTC.symbol,
      kind: 'sma_crossover',
      parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
      allocation: 0.4,
    },
    {
      strategyId: 'revert',
      symbol: BTC.symbol,
      kind: 'rsi_mean_reversion',
      parameters: { period: 7, oversold: 35, overbought: 65, positionFraction: 0.4 },
      allocation: 0.3,
    },
    {
      strategyId: 'breakout',
      symbol: ETH.symbol,
      kind: 'donchian_breakout',
      parameters: { entryPeriod: 15, exitPeriod: 6, positionFraction: 0.8 },
      allocation: 0.3,
    },
  ],
  venue: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.02 },
  // Deterministic denials, so the parity covers OrderDenied too.
  risk: (order, context) =>
    order.strategyId === 'revert' && Math.floor(context.time / MINUTE) % 4 === 0
      ? { ok: false, reason: reason('THROTTLED', { minute: Math.floor(context.time / MINUTE) }) }
      : { ok: true },
});

/** Two symbols, 3,000 minutes each, interleaved by time. */
function parityCandles(): Candle[] {
  const btc = randomWalk(3_000, 1, { price: 30_000 });
  const eth = randomWalk(3_000, 2, { symbol: ETH.symbol, price: 2_000 });
  return btc.flatMap((candle, i) => [candle, eth[i]!]);
}

describe('parity: backtest = paper replay bar by bar with restarts', () => {
  const candles = parityCandles();
  const straight = backtest(parityConfig(), candles);

  it('covers every kind of event', () => {
    const counts = new Map<string, number>();
    for (const event of straight.events) counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
    for (const type of [
      'OrderSubmitted',
      'OrderAccepted',
      'OrderDenied',
      'OrderPartiallyFilled',
      'OrderFilled',
      'OrderCancelled',
      'PositionChanged',
      'PositionClosed',
      'CashBalanceChanged',
    ]) {
      expect(counts.get(type) ?? 0, type).toBeGreaterThan(0);
    }
    expect(straight.trades.length).toBeGreaterThan(20);
    expect(new Set(straight.trades.map((t) => t.strategyId))).toEqual(
      new Set(['trend', 'revert', 'breakout']),
    );
  });

  it('gives identical events when stopped, serialized, restarted (new process) and continued', () => {
    let stepper = new Stepper(parityConfig());
    let state: EngineState = stepper.initialState();
    const events: TradingEvent[] = [];
    candles.forEach((candle, i) => {
      if (i > 0 && i % 997 === 0) {
        // A restart: the state as it would be stored and loaded, a fresh stepper, and the last
        // bar delivered again (it must do nothing).
        state = JSON.parse(JSON.stringify(state)) as EngineState;
        stepper = new Stepper(parityConfig());
        expect(stepper.step(state, candles[i - 1]!).events).toEqual([]);
      }
      const result = stepper.step(state, candle);
      state = result.state;
      events.push(...result.events);
    });
    expect(events.length).toBe(straight.events.length);
    expect(events).toEqual(straight.events);
    expect(JSON.stringify(state)).toBe(JSON.stringify(straight.state));
  });

  it('is deterministic and its events are plain JSON', () => {
    const again = backtest(parityConfig(), candles);
    expect(again.events).toEqual(straight.events);
    expect(JSON.parse(JSON.stringify(straight.events))).toEqual(straight.events);
    expect(again.statistics).toEqual(straight.statistics);
  });

  it('continuing a backtest from a saved state gives the same events as one run', () => {
    const half = 3_001;
    const first = backtest(parityConfig(), candles.slice(0, half));
    const saved = JSON.parse(JSON.stringify(first.state)) as EngineState;
    const second = backtest(parityConfig(), candles.slice(half), { state: saved });
    expect([...first.events, ...second.events]).toEqual(straight.events);
  });

  it('every order event is what the order decider decides for the same command', () => {
    const states = new Map<string, OrderState>();
    let checked = 0;
    for (const event of straight.events) {
      const command = commandFor(event);
      if (!command) continue;
      const id =
        command.type === 'SubmitOrder' ? command.order.clientOrderId : command.clientOrderId;
      const state = states.get(id) ?? orders.initialState();
      const decided = orders.decide(command, state);
      expect(decided, `${event.type} ${id}`).toEqual([event]);
      states.set(id, orders.evolve(state, orders.parseEvent(event)));
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
    const statuses = new Set([...states.values()].map((s) => s.status));
    expect(statuses.has('filled') && statuses.has('cancelled') && statuses.has('denied')).toBe(
      true,
    );
    expect(statuses.has('rejected')).toBe(false);
  });
});

/** The order command that should produce `event`; null for accounting events. */
function commandFor(event: TradingEvent): OrderCommand | null {
  switch (event.type) {
    case 'OrderSubmitted': {
      const { time, ...order } = event.data;
      return { type: 'SubmitOrder', order, time };
    }
    case 'OrderAccepted':
      return { type: 'AcceptOrder', ...event.data };
    case 'OrderRejected':
      return { type: 'RejectOrder', ...event.data };
    case 'OrderDenied':
      return { type: 'DenyOrder', ...event.data };
    case 'OrderPartiallyFilled':
    case 'OrderFilled':
      return {
        type: 'RecordFill',
        clientOrderId: event.data.clientOrderId,
        fill: event.data.fill,
        time: event.data.time,
      };
    case 'OrderCancelled':
      return {
        type: 'CancelOrder',
        clientOrderId: event.data.clientOrderId,
        reason: event.data.reason,
        time: event.data.time,
      };
    default:
      return null;
  }
}
