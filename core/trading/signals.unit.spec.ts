import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import type { Candle } from '../market/types.js';
import { T0, bar, barsFromCloses, randomWalk } from './fixtures.spec.js';
import {
  SIGNALS,
  createSignal,
  donchianBreakout,
  newWindow,
  pushWindow,
  rsiMeanReversion,
  rsiOf,
  smaCrossover,
  windowMean,
  type DonchianBreakoutState,
  type RsiMeanReversionState,
  type SignalState,
} from './signals.js';

const run = (kind: string, parameters: object, candles: readonly Candle[]) => {
  const signal = createSignal(kind, parameters);
  const state = signal.initialState();
  return { state, targets: candles.map((candle) => signal.update(state, candle)) };
};

describe('SMA crossover', () => {
  it('is long while SMA(fast) > SMA(slow), hand-computed', () => {
    // fast 2, slow 3. Bar 3: fast (11+12)/2 = 11.5 > slow 11 → long; bar 4: 11.5 > 11.33;
    // bar 5: 10.5 < 11; bar 6: 9.5 < 10; bar 7: 9.5 < 9.67; bar 8: 11 > 10.33 → long.
    const candles = barsFromCloses([10, 11, 12, 11, 10, 9, 10, 12]);
    const { targets } = run(
      'sma_crossover',
      { fastPeriod: 2, slowPeriod: 3, positionFraction: 0.5 },
      candles,
    );
    expect(targets).toEqual([0, 0, 0.5, 0.5, 0, 0, 0, 0.5]);
  });

  it('is flat when the averages are equal (strictly above is needed)', () => {
    const { targets } = run(
      'sma_crossover',
      { fastPeriod: 2, slowPeriod: 3, positionFraction: 1 },
      barsFromCloses([10, 10, 10, 10]),
    );
    expect(targets).toEqual([0, 0, 0, 0]);
  });

  it('fills parameter defaults from the kind schema (20/50/0.5)', () => {
    const signal = createSignal('sma_crossover', {});
    const state = signal.initialState();
    expect(state.kind === 'sma_crossover' && state.fast.values.length).toBe(20);
    expect(state.kind === 'sma_crossover' && state.slow.values.length).toBe(50);
    // 50 rising closes: the fast mean is above the slow one on the 50th bar, long 0.5.
    const targets = barsFromCloses(Array.from({ length: 50 }, (_, i) => 100 + i)).map((c) =>
      signal.update(state, c),
    );
    expect(targets.slice(0, 49).every((t) => t === 0)).toBe(true);
    expect(targets[49]).toBe(0.5);
  });

  it('agrees with a brute-force SMA over a random walk', () => {
    const candles = randomWalk(2_000, 7);
    const p = { fastPeriod: 7, slowPeriod: 19, positionFraction: 0.25 };
    const { targets } = run('sma_crossover', p, candles);
    const closes = candles.map((c) => c.close);
    const mean = (from: number, to: number) =>
      closes.slice(from, to).reduce((a, b) => a + b, 0) / (to - from);
    let changes = 0;
    targets.forEach((target, i) => {
      const expected =
        i + 1 < p.slowPeriod
          ? 0
          : mean(i + 1 - p.fastPeriod, i + 1) > mean(i + 1 - p.slowPeriod, i + 1)
            ? 0.25
            : 0;
      expect(target, `bar ${i}`).toBe(expected);
      if (i > 0 && target !== targets[i - 1]) changes++;
    });
    expect(changes).toBeGreaterThan(20);
  });

  it('keeps the running sum exact over many values (re-summed at every wrap)', () => {
    const window = newWindow(5);
    const values = randomWalk(100_003, 3).map((c) => c.close * 1_000.123);
    for (const value of values) pushWindow(window, value);
    const last = values.slice(-5);
    expect(windowMean(window)).toBeCloseTo(last.reduce((a, b) => a + b, 0) / 5, 9);
    expect(windowMean(newWindow(3))).toBeNull();
  });
});

describe('RSI mean reversion (Wilder)', () => {
  it('matches hand-computed RSI values and enters/exits at the thresholds', () => {
    // period 3; changes −1, −1, −1 → avg gain 0, avg loss 1 → RSI 0 → long.
    // +1: gain (0·2+1)/3 = 1/3, loss (1·2)/3 = 2/3 → RSI 33.33 (hold).
    // +1: 5/9, 4/9 → RSI 55.56 (hold). +2: 28/27, 8/27 → RSI 77.78 ≥ 70 → exit.
    // −1: 56/81, 43/81 → RSI 56.57 (flat).
    const candles = barsFromCloses([100, 99, 98, 97, 98, 99, 101, 100]);
    const signal = createSignal('rsi_mean_reversion', {
      period: 3,
      oversold: 30,
      overbought: 70,
      positionFraction: 0.5,
    });
    const state = signal.initialState() as RsiMeanReversionState;
    const rsis: (number | null)[] = [];
    const targets = candles.map((candle) => {
      const target = signal.update(state, candle);
      rsis.push(state.rsi);
      return target;
    });
    expect(targets).toEqual([0, 0, 0, 0.5, 0.5, 0.5, 0, 0]);
    const expected = [null, null, null, 0, 100 / 3, 500 / 9, 700 / 9, 100 - 4300 / 99];
    rsis.forEach((rsi, i) => {
      if (expected[i] === null) expect(rsi).toBeNull();
      else expect(rsi).toBeCloseTo(expected[i]!, 10);
    });
  });

  it('defines RSI with no losses as 100 and with no movement as 50', () => {
    expect(rsiOf(1, 0)).toBe(100);
    expect(rsiOf(0, 0)).toBe(50);
    expect(rsiOf(1, 1)).toBe(50);
    expect(rsiOf(0, 2)).toBe(0);
  });

  it('holds its position between the thresholds', () => {
    const p = { period: 2, oversold: 30, overbought: 70, positionFraction: 1 };
    const state = rsiMeanReversion.initialState(p);
    // Falls → RSI 0 → long; a small rise keeps RSI below 70 → still long.
    const targets = barsFromCloses([10, 9, 8, 8.5]).map((c) =>
      rsiMeanReversion.update(state, c, p),
    );
    expect(targets).toEqual([0, 0, 1, 1]);
    expect(state.rsi).toBeGreaterThan(30);
    expect(state.rsi).toBeLessThan(70);
  });
});

describe('Donchian breakout', () => {
  const bars = [
    [10, 8, 9],
    [11, 9, 10],
    [12, 10, 11],
    [13, 11, 12.5],
    [13, 11.5, 12],
    [12, 9, 9.5],
    [14, 9, 13.5],
  ].map(([high, low, close], i) => bar(T0 + i * 60_000, close!, close!, { high, low }));

  it('breaks out above the previous highest high and exits below the previous lowest low', () => {
    // entry 3, exit 2. Bar 3: close 12.5 > max(10, 11, 12) → long. Bar 5: close 9.5 < min(11, 11.5)
    // → flat. Bar 6: close 13.5 > max(13, 13, 12) → long.
    const p = { entryPeriod: 3, exitPeriod: 2, positionFraction: 0.5 };
    const state = donchianBreakout.initialState(p);
    const channel: [number | null, number | null][] = [];
    const targets = bars.map((candle) => {
      const target = donchianBreakout.update(state, candle, p);
      channel.push([state.upper, state.lower]);
      return target;
    });
    expect(targets).toEqual([0, 0, 0, 0.5, 0.5, 0, 0.5]);
    expect(channel).toEqual([
      [null, null],
      [null, null],
      [null, 8],
      [12, 9],
      [13, 10],
      [13, 11],
      [13, 9],
    ]);
  });

  it('agrees with a brute-force channel over a random walk', () => {
    const candles = randomWalk(3_000, 11);
    const p = { entryPeriod: 20, exitPeriod: 7, positionFraction: 1 };
    const signal = createSignal('donchian_breakout', p);
    const state = signal.initialState() as DonchianBreakoutState;
    let long = false;
    let entries = 0;
    candles.forEach((candle, i) => {
      const target = signal.update(state, candle);
      const upper = i >= 20 ? Math.max(...candles.slice(i - 20, i).map((c) => c.high)) : null;
      const lower = i >= 7 ? Math.min(...candles.slice(i - 7, i).map((c) => c.low)) : null;
      expect([state.upper, state.lower], `bar ${i}`).toEqual([upper, lower]);
      if (!long && upper !== null && candle.close > upper) {
        long = true;
        entries++;
      } else if (long && lower !== null && candle.close < lower) long = false;
      expect(target).toBe(long ? 1 : 0);
    });
    expect(entries).toBeGreaterThan(5);
  });
});

describe('signal state', () => {
  it.each([
    ['sma_crossover', { fastPeriod: 5, slowPeriod: 13 }],
    ['rsi_mean_reversion', { period: 6 }],
    ['donchian_breakout', { entryPeriod: 12, exitPeriod: 5 }],
  ])('%s continues identically after a JSON round trip', (kind, parameters) => {
    const candles = randomWalk(1_500, 5);
    const signal = createSignal(kind, parameters);
    const straight = signal.initialState();
    const expected = candles.map((c) => signal.update(straight, c));
    let state: SignalState = signal.initialState();
    const targets = candles.map((c, i) => {
      if (i % 97 === 0) state = JSON.parse(JSON.stringify(state)) as SignalState;
      return signal.update(state, c);
    });
    expect(targets).toEqual(expected);
    expect(new Set(expected).size).toBe(2);
  });

  it('has a signal for every strategy kind and refuses bad parameters with the kind schema', () => {
    expect(Object.keys(SIGNALS).sort()).toEqual([
      'donchian_breakout',
      'rsi_mean_reversion',
      'sma_crossover',
    ]);
    expect(() => createSignal('sma_crossover', { fastPeriod: 50, slowPeriod: 20 })).toThrow(
      ValidationError,
    );
    expect(() => createSignal('macd', {})).toThrow(/unknown strategy kind/);
    const sma = createSignal('sma_crossover', {});
    const rsi = createSignal('rsi_mean_reversion', {});
    expect(() => sma.update(rsi.initialState(), barsFromCloses([1])[0]!)).toThrow(TypeError);
    expect(smaCrossover.name).toBe('sma_crossover');
  });
});
