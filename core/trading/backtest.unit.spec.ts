import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import type { Instrument } from '../market/types.js';
import { backtest } from './backtest.js';
import { DAY, T0, bar, barsFromCloses } from './fixtures.spec.js';
import { closedTrades, type StepperConfig } from './stepper.js';

const instrument: Instrument = {
  symbol: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  tickSize: 0.01,
  lotSize: 0.001,
  minNotional: 1,
};

/** Daily bars, no costs, SMA(2, 3) holding all of the capital while long. */
const daily = (overrides: Partial<StepperConfig> = {}): StepperConfig => ({
  portfolioId: 'p1',
  currency: 'USDT',
  initialCash: 1_000,
  timeframe: '1d',
  instruments: [instrument],
  books: [
    {
      strategyId: 's1',
      symbol: 'BTCUSDT',
      kind: 'sma_crossover',
      parameters: { fastPeriod: 2, slowPeriod: 3, positionFraction: 1 },
      allocation: 1,
    },
  ],
  venue: { slippageBps: 0, makerFeeBps: 0, takerFeeBps: 0, maxVolumeShare: null },
  ...overrides,
});

describe('backtest, hand-computed', () => {
  // Closes 10, 11, 12, 13, 10, 10 (each bar opens at the previous close).
  // Day 2: SMA2 11.5 > SMA3 11 → buy 1000 / 12 = 83.333 BTC, filled at day 3's open 12:
  //        cash 1000 − 999.996 = 0.004.
  // Day 3: equity 0.004 + 83.333 × 13 = 1083.333. Day 4: SMA2 11.5 < SMA3 11.667 → sell;
  //        equity 0.004 + 83.333 × 10 = 833.334. Day 5: sold at the open 10 → cash 833.334.
  const result = backtest(daily(), barsFromCloses([10, 11, 12, 13, 10, 10], '1d', DAY));

  it('produces the daily UTC mark-to-market equity', () => {
    expect(result.bars).toBe(6);
    expect(result.equity.map((e) => e.date)).toEqual([
      '2024-01-01',
      '2024-01-02',
      '2024-01-03',
      '2024-01-04',
      '2024-01-05',
      '2024-01-06',
    ]);
    const values = [1_000, 1_000, 1_000, 1_083.333, 833.334, 833.334];
    result.equity.forEach((entry, i) => {
      expect(entry.equity).toBeCloseTo(values[i]!, 9);
    });
  });

  it('produces the round trip', () => {
    expect(result.trades).toHaveLength(1);
    expect(result.trades[0]).toMatchObject({
      strategyId: 's1',
      side: 'long',
      quantity: 83.333,
      entryPrice: 12,
      exitPrice: 10,
      openedAt: T0 + 3 * DAY,
      closedAt: T0 + 5 * DAY,
      fees: 0,
    });
    expect(result.trades[0]!.netPnl).toBeCloseTo(-166.666, 9);
    expect(closedTrades(result.events)).toEqual(result.trades);
  });

  it('computes the statistics from E0 = 1000 and the six days', () => {
    const s = result.statistics;
    expect(s.days).toBe(6);
    expect(s.initialEquity).toBe(1_000);
    expect(s.totalReturn).toBeCloseTo(-0.166666, 9);
    // (1083.333 − 833.334) / 1083.333
    expect(s.maxDrawdown).toBeCloseTo(249.999 / 1_083.333, 9);
    expect(s.cagr!).toBeCloseTo(0.833334 ** (365 / 6) - 1, 9);
    expect(s.calmar!).toBeCloseTo(s.cagr! / s.maxDrawdown, 9);
    expect(s).toMatchObject({ trades: 1, winRate: 0, profitFactor: 0 });
    expect(s.expectancy!).toBeCloseTo(-166.666, 9);
    // In position at the close of days 3 and 4: 2 of 6 bars.
    expect(s.exposure).toBeCloseTo(2 / 6, 12);
  });
});

describe('backtest, ranges and days', () => {
  it('carries the equity over days without bars and keeps only the range', () => {
    const hourly = daily({ timeframe: '1h' });
    const H = 3_600_000;
    const candles = [
      bar(T0, 10, 10, { timeframe: '1h' }),
      bar(T0 + 23 * H, 10, 11, { timeframe: '1h' }),
      bar(T0 + 2 * DAY, 11, 12, { timeframe: '1h' }),
      bar(T0 + 3 * DAY, 12, 13, { timeframe: '1h' }),
    ];
    const all = backtest(hourly, candles);
    expect(all.equity.map((e) => e.date)).toEqual([
      '2024-01-01',
      '2024-01-02',
      '2024-01-03',
      '2024-01-04',
    ]);
    expect(all.statistics.days).toBe(4);
    const part = backtest(hourly, candles, { from: T0 + 23 * H, to: T0 + 3 * DAY });
    expect(part.bars).toBe(2);
    expect(part.firstBar).toBe(T0 + 23 * H);
    expect(part.lastBar).toBe(T0 + 2 * DAY);
    expect(part.equity.map((e) => e.date)).toEqual(['2024-01-01', '2024-01-02', '2024-01-03']);
  });

  it('returns an empty result for an empty range', () => {
    const empty = backtest(daily(), [], {});
    expect(empty).toMatchObject({ bars: 0, firstBar: null, events: [], trades: [], equity: [] });
    expect(empty.statistics).toMatchObject({ days: 0, totalReturn: 0, exposure: null });
  });

  it('refuses candles out of time order', () => {
    const candles = barsFromCloses([10, 11, 12], '1d', DAY);
    expect(() => backtest(daily(), [candles[1]!, candles[0]!])).toThrow(ValidationError);
  });

  it('can drop the event list and still count trades', () => {
    const candles = barsFromCloses([10, 11, 12, 13, 10, 10], '1d', DAY);
    const lean = backtest(daily(), candles, { keepEvents: false });
    expect(lean.events).toEqual([]);
    expect(lean.trades).toHaveLength(1);
  });
});
