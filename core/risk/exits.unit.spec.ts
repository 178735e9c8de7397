import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import type { Candle } from '../market/types.js';
import { MINUTE, T0, bar } from '../trading/fixtures.spec.js';
import { emptySnapshot, preTradeCheck } from './checks.js';
import { exitsStream } from './common.js';
import {
  evaluateExit,
  exits,
  initialAtr,
  updateAtr,
  type ExitPosition,
  type ExitRules,
  type ExitSettings,
  type ExitTracker,
  type ExitsEvent,
} from './exits.js';

const NO_RULES: ExitRules = { stopLoss: null, takeProfit: null, trailing: null, atrStop: null };
const rules = (overrides: Partial<ExitRules>): ExitSettings => ({
  rules: { ...NO_RULES, ...overrides },
  levels: null,
});

const position = (quantity: number, openedAt: number | null = T0, entry = 100): ExitPosition => ({
  portfolioId: 'p1',
  strategyId: 's1',
  symbol: 'BTCUSDT',
  quantity,
  averageEntryPrice: entry,
  openedAt,
});

const evaluate = (
  candle: Candle,
  settings: ExitSettings | undefined,
  held = position(2),
  tracker?: ExitTracker,
  exitPending = false,
) => evaluateExit(tracker, { position: held, candle, barMs: MINUTE, settings, exitPending });

/** Runs bars in order; each bar's exit reason (or null). */
function run(candles: Candle[], settings: ExitSettings, held: (i: number) => ExitPosition) {
  let tracker: ExitTracker | undefined;
  return candles.map((candle, i) => {
    const result = evaluate(candle, settings, held(i), tracker);
    tracker = result.tracker;
    return result.exit?.reason ?? null;
  });
}

describe('ATR (Wilder)', () => {
  it('averages the first true ranges, then smooths', () => {
    let atr = initialAtr(3);
    const values: (number | null)[] = [];
    for (const [high, low, close] of [
      [102, 98, 100],
      [103, 99, 101],
      [101, 95, 96],
      [100, 96, 99],
    ] as const) {
      atr = updateAtr(atr, { high, low, close });
      values.push(atr.atr);
    }
    // TR: 4 (first bar: high − low), 4, 6 (|95 − 101|), 4.
    expect(values.slice(0, 2)).toEqual([null, null]);
    expect(values[2]).toBeCloseTo(14 / 3, 12);
    expect(values[3]).toBeCloseTo(((14 / 3) * 2 + 4) / 3, 12);
  });
});

describe('fixed stop-loss and take-profit', () => {
  const both = rules({ stopLoss: 0.05, takeProfit: 0.1 });

  it('a long stops when the bar reaches entry × (1 − stopLoss)', () => {
    const result = evaluate(bar(T0, 99, 96, { low: 94 }), both);
    expect(result.levels).toEqual({ stopPrice: 95, takeProfitPrice: 110, trailingPrice: null });
    expect(result.exit).toEqual({
      kind: 'STOP_LOSS',
      order: {
        clientOrderId: `s1-BTCUSDT-exit-${T0}`,
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
      reason: 'STOP_LOSS: level=95, entry=100, low=94',
      level: 95,
      openedAt: T0,
      time: T0 + MINUTE,
    });
    expect(evaluate(bar(T0, 99, 96, { low: 95.5 }), both).exit).toBeNull();
  });

  it('takes profit at entry × (1 + takeProfit), touching is enough', () => {
    expect(evaluate(bar(T0, 105, 109, { high: 110 }), both).exit?.reason).toBe(
      'TAKE_PROFIT: level=110, entry=100, high=110',
    );
  });

  it('both in one bar: the one the intrabar path reaches first', () => {
    // Open 100 is nearer the low (94) than the high (111): low first.
    expect(evaluate(bar(T0, 100, 100, { low: 94, high: 111 }), both).exit?.kind).toBe('STOP_LOSS');
    // Open 108 is nearer the high: high first.
    expect(evaluate(bar(T0, 108, 100, { low: 94, high: 111 }), both).exit?.kind).toBe(
      'TAKE_PROFIT',
    );
  });

  it('a bar that opens beyond the stop stops at once', () => {
    expect(evaluate(bar(T0, 90, 99, { high: 120 }), both).exit?.kind).toBe('STOP_LOSS');
  });

  it('a short mirrors it: stop above, profit below, a buy to close', () => {
    const short = position(-2);
    const stopped = evaluate(bar(T0, 101, 104, { high: 106 }), both, short).exit;
    expect(stopped?.reason).toBe('STOP_LOSS: level=105, entry=100, high=106');
    expect(stopped?.order).toMatchObject({ side: 'buy', quantity: 2, reduceOnly: true });
    expect(evaluate(bar(T0, 95, 91, { low: 89 }), both, short).exit?.reason).toBe(
      'TAKE_PROFIT: level=90, entry=100, low=89',
    );
  });

  it('nothing while flat, or while an exit order is still open', () => {
    const flat = evaluate(bar(T0, 99, 96, { low: 50 }), both, position(0, null));
    expect(flat).toMatchObject({ exit: null, levels: null, tracker: { trip: null } });
    expect(
      evaluate(bar(T0, 99, 96, { low: 50 }), both, position(2), undefined, true).exit,
    ).toBeNull();
    expect(evaluate(bar(T0, 99, 96, { low: 50 }), undefined).exit).toBeNull();
  });
});

describe('trailing stop', () => {
  const trailing = rules({ trailing: { activation: 0.05, distance: 0.03 } });

  it('activates once the best price is up by the activation, then trails it by the distance', () => {
    const reasons = run(
      [bar(T0, 100, 105, { high: 106 }), bar(T0 + MINUTE, 105, 103, { low: 102 })],
      trailing,
      () => position(2),
    );
    // On the first bar the best price was still the entry: the bar's own high counts from the next.
    expect(reasons).toEqual([
      null,
      'TRAILING_STOP: level=102.82, peak=106, distance=0.03, low=102',
    ]);
  });

  it('does nothing before the activation', () => {
    const reasons = run([bar(T0, 100, 104), bar(T0 + MINUTE, 104, 90)], trailing, () =>
      position(2),
    );
    expect(reasons).toEqual([null, null]);
  });

  it('follows each new round trip from its own entry', () => {
    const reasons = run(
      [bar(T0, 100, 120), bar(T0 + MINUTE, 100, 101, { low: 99 })],
      trailing,
      (i) => (i === 0 ? position(2) : position(2, T0 + MINUTE, 100)),
    );
    expect(reasons).toEqual([null, null]);
  });

  it('a fixed stop above the trailing one is the one that applies', () => {
    const settings = rules({ stopLoss: 0.01, trailing: { activation: 0.05, distance: 0.5 } });
    const reasons = run([bar(T0, 100, 106), bar(T0 + MINUTE, 106, 98)], settings, () =>
      position(2),
    );
    expect(reasons).toEqual([null, 'STOP_LOSS: level=99, entry=100, low=98']);
  });
});

describe('ATR stop', () => {
  it('stops at entry − multiple × ATR of the bars before the entry', () => {
    const settings = rules({ atrStop: { period: 3, multiple: 2 } });
    const candles = [
      bar(T0, 100, 100, { high: 102, low: 98 }),
      bar(T0 + MINUTE, 100, 101, { high: 103, low: 99 }),
      bar(T0 + 2 * MINUTE, 101, 96, { high: 101, low: 95 }),
      bar(T0 + 3 * MINUTE, 100, 99, { high: 100, low: 96 }),
      bar(T0 + 4 * MINUTE, 99, 92, { low: 90 }),
    ];
    const opened = T0 + 3 * MINUTE;
    const held = (i: number) => (i < 3 ? position(0, null) : position(2, opened));
    expect(run(candles, settings, held)).toEqual([
      null,
      null,
      null,
      null,
      'STOP_LOSS: level=90.66666667, entry=100, low=90',
    ]);
  });
});

describe('moved levels', () => {
  it('replace the rules for their round trip only', () => {
    const settings: ExitSettings = {
      rules: { ...NO_RULES, stopLoss: 0.05 },
      levels: { openedAt: T0, stopPrice: 97, takeProfitPrice: null },
    };
    expect(evaluate(bar(T0, 99, 98, { low: 96.5 }), settings).exit?.reason).toBe(
      'STOP_LOSS: level=97, entry=100, low=96.5',
    );
    expect(evaluate(bar(T0, 99, 98, { low: 96.5 }), settings, position(2, T0 - 1)).exit).toBeNull();
  });
});

describe('an exit goes through the pre-trade check while the scope is halted', () => {
  it('is reduce-only, so it passes', () => {
    const exit = evaluate(bar(T0, 99, 96, { low: 94 }), rules({ stopLoss: 0.05 })).exit!;
    const halted = {
      ...emptySnapshot(),
      states: { 'strategy:s1': { base: 'HALTED' as const, temporary: null, resetAt: null } },
      killSwitch: { engaged: true, flatten: false, since: T0 },
    };
    const context = {
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: 'BTCUSDT',
      time: exit.time,
      referencePrice: 96,
      equity: 10_000,
      cash: 9_800,
      positionQuantity: 2,
      openOrders: 0,
    };
    expect(preTradeCheck(exit.order, context, halted)).toEqual({ ok: true });
  });
});

describe('exits decider', () => {
  const automation: Party = { id: 'system:automation', role: 'admin' };
  const book = { portfolioId: 'p1', strategyId: 's1', symbol: 'BTCUSDT' };
  const stop: ExitRules = { ...NO_RULES, stopLoss: 0.02 };
  const rulesSet: ExitsEvent = {
    type: 'ExitRulesSet',
    data: { ...book, rules: stop, by: automation, time: T0 },
  };

  it('sets rules, validated; the same again writes nothing', () => {
    expect(exitsStream('p1', 's1', 'BTCUSDT')).toBe('risk-exits-p1-s1-BTCUSDT');
    given(exits, [])
      .when({ type: 'SetExitRules', ...book, rules: stop, by: automation, time: T0 })
      .then([rulesSet]);
    given(exits, [rulesSet])
      .when({ type: 'SetExitRules', ...book, rules: stop, by: automation, time: T0 })
      .then([]);
    given(exits, [])
      .when({
        type: 'SetExitRules',
        ...book,
        rules: { ...NO_RULES, stopLoss: 2 },
        by: automation,
        time: T0,
      })
      .thenRefuses('INVALID_EXIT_RULES');
  });

  it('moves levels for a round trip, keeping what it does not move', () => {
    const move = (
      levels: { stopPrice?: number | null; takeProfitPrice?: number | null },
      openedAt = T0,
    ) =>
      ({
        type: 'MoveExitLevels',
        ...book,
        openedAt,
        ...levels,
        by: automation,
        reason: 'tighten',
        time: T0 + 1,
      }) as const;
    const [moved] = given(exits, [rulesSet])
      .when(move({ stopPrice: 99 }))
      .then([
        {
          type: 'ExitLevelsMoved',
          data: {
            ...book,
            openedAt: T0,
            stopPrice: 99,
            takeProfitPrice: null,
            by: automation,
            reason: 'tighten',
            time: T0 + 1,
          },
        },
      ]);
    const [second] = given(exits, [rulesSet, moved!])
      .when(move({ takeProfitPrice: 120 }))
      .then([
        {
          type: 'ExitLevelsMoved',
          data: {
            ...book,
            openedAt: T0,
            stopPrice: 99,
            takeProfitPrice: 120,
            by: automation,
            reason: 'tighten',
            time: T0 + 1,
          },
        },
      ]);
    expect(given(exits, [rulesSet, moved!, second!]).state.levels).toEqual({
      openedAt: T0,
      stopPrice: 99,
      takeProfitPrice: 120,
    });
    given(exits, [rulesSet, moved!])
      .when(move({ stopPrice: 99 }))
      .then([]);
    // A new round trip starts from the rules.
    const [fresh] = given(exits, [rulesSet, moved!])
      .when(move({ takeProfitPrice: 120 }, T0 + 5))
      .then([
        {
          type: 'ExitLevelsMoved',
          data: {
            ...book,
            openedAt: T0 + 5,
            stopPrice: null,
            takeProfitPrice: 120,
            by: automation,
            reason: 'tighten',
            time: T0 + 1,
          },
        },
      ]);
    expect(fresh).toBeDefined();
    given(exits, [])
      .when(move({ stopPrice: -1 }))
      .thenRefuses('INVALID_EXIT_LEVEL');
    given(exits, []).when(move({})).thenRefuses('INVALID_EXIT_LEVEL');
  });

  it('records an exit once', () => {
    const exit = evaluate(bar(T0, 99, 96, { low: 94 }), rules({ stopLoss: 0.05 })).exit!;
    const [recorded] = given(exits, [])
      .when({ type: 'RecordExit', exit })
      .then([
        {
          type: 'ExitTriggered',
          data: {
            ...book,
            kind: 'STOP_LOSS',
            clientOrderId: `s1-BTCUSDT-exit-${T0}`,
            quantity: 2,
            level: 95,
            reason: 'STOP_LOSS: level=95, entry=100, low=94',
            openedAt: T0,
            time: T0 + MINUTE,
          },
        },
      ]);
    given(exits, [recorded!]).when({ type: 'RecordExit', exit }).then([]);
  });
});
