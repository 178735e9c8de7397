import { describe, expect, it } from 'vitest';
import { flatPosition } from '../trading/accounting.js';
import { MINUTE, T0, bar } from '../trading/fixtures.spec.js';
import { evolveSnapshot } from './aggregate.js';
import {
  DAY_MS,
  evaluateBreakers,
  evaluateDailyLoss,
  evaluateDrawdown,
  evaluatePriceMove,
  flattenOrders,
  initialBreakerState,
  strategyEquity,
  type DailyLossTracker,
  type DrawdownTracker,
  type PriceTracker,
} from './breakers.js';
import { emptySnapshot, preTradeCheck } from './checks.js';
import type { RiskScope } from './common.js';
import { DEFAULT_LIMITS } from './limits.js';
import { tradingStates, type RiskTriggerFiredData } from './trading-state.js';

const strategy: RiskScope = { type: 'strategy', id: 's1' };
const portfolio: RiskScope = { type: 'portfolio', id: 'p1' };

/** Feeds equities one minute apart; the triggers that fired, by index. */
function drawdownRun(
  equities: number[],
  scope = strategy,
  maxDrawdown: number | null = 0.1,
  resetAt: (i: number) => number | null = () => null,
) {
  let tracker: DrawdownTracker | undefined;
  const fired: [number, RiskTriggerFiredData][] = [];
  equities.forEach((equity, i) => {
    const result = evaluateDrawdown(tracker, {
      scope,
      equity,
      time: T0 + i * MINUTE,
      resetAt: resetAt(i),
      maxDrawdown,
    });
    tracker = result.tracker;
    if (result.trigger) fired.push([i, result.trigger]);
  });
  return { fired, tracker };
}

describe('drawdown breaker', () => {
  it('fires once when equity falls more than the limit below its high-water mark', () => {
    const { fired } = drawdownRun([1000, 1100, 1000, 989, 950, 900]);
    expect(fired).toEqual([
      [
        3,
        {
          triggerId: `strategy_drawdown-strategy-s1-${T0 + 3 * MINUTE}`,
          rule: 'strategy_drawdown',
          scopeType: 'strategy',
          scopeId: 's1',
          threshold: 0.1,
          observed: 0.1009090909,
          reference: 1100,
          value: 989,
          window: { from: T0 + MINUTE, to: T0 + 3 * MINUTE },
          action: 'HALTED',
          until: null,
          time: T0 + 3 * MINUTE,
        },
      ],
    ]);
  });

  it('exactly at the limit does not fire; the portfolio breaker flattens', () => {
    expect(drawdownRun([1000, 900], portfolio, 0.1).fired).toEqual([]);
    const { fired } = drawdownRun([1000, 840], portfolio, 0.15);
    expect(fired[0]![1]).toMatchObject({ rule: 'portfolio_drawdown', action: 'FLATTEN' });
    expect(drawdownRun([1000, 1], strategy, null).fired).toEqual([]);
  });

  it('a reset re-arms it and measures from the equity at the reset', () => {
    const { fired } = drawdownRun([1000, 850, 850, 800, 760], strategy, 0.1, (i) =>
      i >= 2 ? T0 + 2 * MINUTE : null,
    );
    // Fired at 850; after the reset the mark is 850: 800 is 5.9% below, 760 is 10.6%.
    expect(fired.map(([i, t]) => [i, t.reference])).toEqual([
      [1, 1000],
      [4, 850],
    ]);
  });
});

describe('daily loss breaker', () => {
  const day = (n: number, minutes = 0) => T0 + n * DAY_MS + minutes * MINUTE;

  function run(points: [number, number][], limit = 0.05) {
    let tracker: DailyLossTracker | undefined;
    const fired: RiskTriggerFiredData[] = [];
    for (const [time, equity] of points) {
      const result = evaluateDailyLoss(tracker, {
        scope: portfolio,
        equity,
        time,
        resetAt: null,
        dailyLossLimit: limit,
      });
      tracker = result.tracker;
      if (result.trigger) fired.push(result.trigger);
    }
    return fired;
  }

  it('fires when the day loses more than the limit of its opening equity; REDUCING to midnight', () => {
    const fired = run([
      [day(0, 1), 1000],
      [day(0, 600), 960],
      [day(0, 700), 949],
      [day(0, 800), 900],
    ]);
    expect(fired).toEqual([
      {
        triggerId: `daily_loss-portfolio-p1-${day(0, 700)}`,
        rule: 'daily_loss',
        scopeType: 'portfolio',
        scopeId: 'p1',
        threshold: 0.05,
        observed: 0.051,
        reference: 1000,
        value: 949,
        window: { from: day(0), to: day(0, 700) },
        action: 'REDUCING',
        until: day(1),
        time: day(0, 700),
      },
    ]);
  });

  it('a new UTC day opens at the last equity of the day before and re-arms', () => {
    const fired = run([
      [day(0, 1), 1000],
      [day(0, 700), 900],
      [day(0, 1439), 880],
      // Day 1 opens at 880: 840 is 4.5% down, 830 is 5.7%.
      [day(1), 840],
      [day(1, 5), 830],
    ]);
    expect(fired.map((t) => [t.time, t.reference, t.until])).toEqual([
      [day(0, 700), 1000, day(1)],
      [day(1, 5), 880, day(2)],
    ]);
  });
});

describe('price breaker', () => {
  const limit = { maxMove: 0.1, windowMs: 5 * MINUTE, cooldownMs: 10 * MINUTE };

  function run(
    candles: ReturnType<typeof bar>[],
    resetAt: (i: number) => number | null = () => null,
  ) {
    let tracker: PriceTracker | undefined;
    const fired: [number, RiskTriggerFiredData][] = [];
    candles.forEach((candle, i) => {
      const result = evaluatePriceMove(tracker, {
        symbol: candle.symbol,
        candle,
        barMs: MINUTE,
        priceBreaker: limit,
        resetAt: resetAt(i),
      });
      tracker = result.tracker;
      if (result.trigger) fired.push([i, result.trigger]);
    });
    return { fired, tracker };
  }

  it('halts the symbol for the cooldown when it moves more than the limit within the window', () => {
    const { fired } = run([
      bar(T0, 100, 100),
      bar(T0 + MINUTE, 100, 98),
      bar(T0 + 2 * MINUTE, 98, 95, { low: 89 }),
    ]);
    expect(fired).toEqual([
      [
        2,
        {
          triggerId: `price_breaker-symbol-BTCUSDT-${T0 + 3 * MINUTE}`,
          rule: 'price_breaker',
          scopeType: 'symbol',
          scopeId: 'BTCUSDT',
          threshold: 0.1,
          observed: 0.11,
          reference: 100,
          value: 89,
          window: { from: T0 - 2 * MINUTE, to: T0 + 3 * MINUTE },
          action: 'HALTED',
          until: T0 + 13 * MINUTE,
          time: T0 + 3 * MINUTE,
        },
      ],
    ]);
  });

  it('catches rises; a slow move spread beyond the window does not fire', () => {
    const up = run([bar(T0, 100, 100), bar(T0 + MINUTE, 100, 108, { high: 111 })]);
    expect(up.fired[0]![1]).toMatchObject({ observed: 0.11, reference: 100, value: 111 });
    const closes = [100, 97, 94, 91, 88, 85, 82, 79];
    const slow = run(
      closes.map((c, i) => bar(T0 + i * 2 * MINUTE, i === 0 ? c : closes[i - 1]!, c)),
    );
    expect(slow.fired).toEqual([]);
  });

  it('does not fire again within the cooldown; fires again after it if the move is still in the window', () => {
    const candles = [bar(T0, 100, 100), bar(T0 + MINUTE, 100, 85)];
    for (let i = 2; i < 14; i++) candles.push(bar(T0 + i * MINUTE, 85, 85));
    const { fired } = run(candles);
    expect(fired.map(([i]) => i)).toEqual([1]);
    const long = { ...limit, windowMs: 30 * MINUTE };
    let tracker: PriceTracker | undefined;
    const times: number[] = [];
    for (const candle of candles) {
      const result = evaluatePriceMove(tracker, {
        symbol: 'BTCUSDT',
        candle,
        barMs: MINUTE,
        priceBreaker: long,
        resetAt: null,
      });
      tracker = result.tracker;
      if (result.trigger) times.push(result.trigger.time);
    }
    expect(times).toEqual([T0 + 2 * MINUTE, T0 + 12 * MINUTE]);
  });

  it('a reset forgets the prices before it', () => {
    const candles = [bar(T0, 100, 100), bar(T0 + MINUTE, 100, 85)];
    for (let i = 2; i < 14; i++) candles.push(bar(T0 + i * MINUTE, 85, 85));
    const long = { ...limit, windowMs: 30 * MINUTE };
    let tracker: PriceTracker | undefined;
    const times: number[] = [];
    candles.forEach((candle, i) => {
      const result = evaluatePriceMove(tracker, {
        symbol: 'BTCUSDT',
        candle,
        barMs: MINUTE,
        priceBreaker: long,
        resetAt: i >= 5 ? T0 + 5 * MINUTE : null,
      });
      tracker = result.tracker;
      if (result.trigger) times.push(result.trigger.time);
    });
    expect(times).toEqual([T0 + 2 * MINUTE]);
  });
});

describe('all breakers of a bar, into the trading state and the pre-trade check', () => {
  it('fires, halts the symbol through the decider, and the check denies until the cooldown ends', () => {
    const snapshot = emptySnapshot();
    let state = initialBreakerState();
    const candles = [bar(T0, 100, 100), bar(T0 + MINUTE, 100, 80)];
    const triggers: RiskTriggerFiredData[] = [];
    for (const candle of candles) {
      const time = candle.openTime + MINUTE;
      const before = JSON.stringify(state);
      const result = evaluateBreakers(state, {
        time,
        portfolio: { id: 'p1', equity: 10_000 },
        strategies: [{ id: 's1', equity: 5_000 }],
        bar: { candle, barMs: MINUTE },
        snapshot,
      });
      expect(JSON.stringify(state)).toBe(before);
      state = result.state;
      triggers.push(...result.triggers);
    }
    expect(Object.keys(state.drawdown)).toEqual(['portfolio:p1', 'strategy:s1']);
    expect(triggers.map((t) => [t.rule, t.scopeId])).toEqual([['price_breaker', 'BTCUSDT']]);
    const trigger = triggers[0]!;
    const events = tradingStates.decide(
      { type: 'FireTrigger', trigger },
      tradingStates.initialState(),
    );
    const after = events.reduce(evolveSnapshot, snapshot);
    const until = trigger.until!;
    const order = {
      clientOrderId: 'o',
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: 'BTCUSDT',
      side: 'buy' as const,
      type: 'market' as const,
      quantity: 1,
      limitPrice: null,
      stopPrice: null,
      reduceOnly: false,
    };
    const context = (time: number) => ({
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: 'BTCUSDT',
      time,
      referencePrice: 80,
      equity: 10_000,
      cash: 10_000,
      positionQuantity: 0,
      openOrders: 0,
    });
    expect(preTradeCheck(order, context(trigger.time), after)).toEqual({
      ok: false,
      reason: `TRADING_HALTED: scope=symbol:BTCUSDT, until=${until}`,
    });
    expect(preTradeCheck(order, context(until), after)).toEqual({ ok: true });
  });

  it('uses the limits of the snapshot (none: no drawdown breaker)', () => {
    const noDrawdown = evolveSnapshot(emptySnapshot(), {
      type: 'LimitsChanged',
      data: {
        scopeType: 'strategy',
        scopeId: 's1',
        requestId: 'r1',
        approvers: [],
        changes: { maxDrawdown: null },
        previous: { maxDrawdown: 0.1 },
        limits: { ...DEFAULT_LIMITS.strategy, maxDrawdown: null },
        time: T0,
      },
    });
    let state = initialBreakerState();
    const rules: string[] = [];
    for (const [i, equity] of [1000, 500].entries()) {
      const result = evaluateBreakers(state, {
        time: T0 + i * MINUTE,
        portfolio: { id: 'p1', equity: 10_000 },
        strategies: [{ id: 's1', equity }],
        snapshot: noDrawdown,
      });
      state = result.state;
      rules.push(...result.triggers.map((t) => t.rule));
    }
    expect(rules).toEqual([]);
    const result = evaluateBreakers(initialBreakerState(), {
      time: T0,
      portfolio: { id: 'p1', equity: 10_000 },
      strategies: [{ id: 's1', equity: 1000 }],
      snapshot: emptySnapshot(),
    });
    const again = evaluateBreakers(result.state, {
      time: T0 + MINUTE,
      portfolio: { id: 'p1', equity: 10_000 },
      strategies: [{ id: 's1', equity: 850 }],
      snapshot: emptySnapshot(),
    });
    // Strategies have no daily loss limit by default; the portfolio's did not move.
    expect(again.triggers.map((t) => [t.rule, t.action])).toEqual([
      ['strategy_drawdown', 'HALTED'],
    ]);
  });
});

describe('engine helpers', () => {
  it('strategy equity: capital plus realized, minus fees, plus unrealized at the marks', () => {
    const long = {
      ...flatPosition('s1', 'BTCUSDT'),
      quantity: 2,
      averageEntryPrice: 100,
      realizedPnl: 50,
      feesPaid: 3,
    };
    const eth = { ...flatPosition('s1', 'ETHUSDT'), quantity: -10, averageEntryPrice: 10 };
    const marks: Record<string, number> = { BTCUSDT: 110 };
    expect(strategyEquity(1000, [long, eth], (s) => marks[s])).toBe(1000 + 50 - 3 + 20 + 0);
  });

  it('flatten orders: reduce-only market orders for every open position in scope', () => {
    const positions = [
      { strategyId: 's1', symbol: 'BTCUSDT', quantity: 2 },
      { strategyId: 's1', symbol: 'ETHUSDT', quantity: 0 },
      { strategyId: 's2', symbol: 'ETHUSDT', quantity: -3 },
    ];
    expect(flattenOrders('p1', positions, { type: 'portfolio', id: 'p1' }, T0)).toEqual([
      {
        clientOrderId: `s1-BTCUSDT-flat-${T0}`,
        portfolioId: 'p1',
        strategyId: 's1',
        symbol: 'BTCUSDT',
        side: 'sell',
        type: 'market',
        quantity: 2,
        limitPrice: null,
        stopPrice: null,
        reduceOnly: true,
      },
      {
        clientOrderId: `s2-ETHUSDT-flat-${T0}`,
        portfolioId: 'p1',
        strategyId: 's2',
        symbol: 'ETHUSDT',
        side: 'buy',
        type: 'market',
        quantity: 3,
        limitPrice: null,
        stopPrice: null,
        reduceOnly: true,
      },
    ]);
    expect(flattenOrders('p1', positions, { type: 'strategy', id: 's2' }, T0)).toHaveLength(1);
    expect(flattenOrders('p1', positions, { type: 'portfolio', id: 'other' }, T0)).toEqual([]);
  });
});
