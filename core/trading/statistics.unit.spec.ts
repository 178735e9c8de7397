import { describe, expect, it } from 'vitest';
import {
  computeStatistics,
  dailyReturns,
  downsideDeviation,
  maxDrawdown,
  sampleStd,
} from './statistics.js';

describe('statistics, hand-computed', () => {
  // E = 100, 110, 99, 108.9 → r = +10%, −10%, +10%.
  const equity = [100, 110, 99, 108.9];
  const stats = computeStatistics({
    equity,
    tradePnl: [10, -5, 20, -5, 0],
    bars: 120,
    barsInPosition: 30,
  });

  it('daily returns, mean, sample std and downside deviation', () => {
    const r = dailyReturns(equity);
    expect(r.map((x) => Number(x.toFixed(12)))).toEqual([0.1, -0.1, 0.1]);
    // mean 1/30; deviations 1/15, −2/15, 1/15 → Σ² = 6/225 → /(3 − 1) → std = √(1/75) = 0.11547005.
    expect(sampleStd(r)).toBeCloseTo(0.11547005, 8);
    // downside: √(0.01 / 3) = 0.05773503.
    expect(downsideDeviation(r)).toBeCloseTo(0.05773503, 8);
  });

  it('total return, CAGR, Sharpe, Sortino, max drawdown, Calmar', () => {
    expect(stats.days).toBe(3);
    expect(stats.totalReturn).toBeCloseTo(0.089, 12);
    // (1.089)^(365/3) − 1: ln 1.089 = 0.0852624, × 121.667 = 10.37359 → e^… − 1 ≈ 31,985.
    expect(stats.cagr!).toBeCloseTo(1.089 ** (365 / 3) - 1, 6);
    expect(stats.cagr!).toBeGreaterThan(31_900);
    expect(stats.cagr!).toBeLessThan(32_100);
    // Sharpe: (1/30) / 0.11547005 × √365 (19.10497) = 0.28867513 × 19.10497 = 5.51513.
    expect(stats.sharpe!).toBeCloseTo(5.51513, 4);
    // Sortino: (1/30) / 0.05773503 × 19.10497 = 0.57735027 × 19.10497 = 11.03026.
    expect(stats.sortino!).toBeCloseTo(11.03026, 4);
    // Peak 110 → 99: 10%.
    expect(stats.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(stats.calmar!).toBeCloseTo(stats.cagr! / 0.1, 6);
  });

  it('win rate, profit factor, expectancy, exposure', () => {
    expect(stats.trades).toBe(5);
    expect(stats.winRate).toBe(0.4); // 2 of 5 (a 0 trade is not a win)
    expect(stats.profitFactor).toBe(3); // 30 / 10
    expect(stats.expectancy).toBe(4); // 20 / 5
    expect(stats.exposure).toBe(0.25); // 30 / 120
  });

  it('max drawdown follows the running peak, not the first value', () => {
    expect(maxDrawdown([100, 120, 90, 130, 104])).toBeCloseTo(0.25, 12); // 120 → 90
    expect(maxDrawdown([100, 101, 102])).toBe(0);
  });
});

describe('statistics, edge cases', () => {
  it('profit factor is null without a losing trade; 0 without a winner', () => {
    const noLosers = computeStatistics({
      equity: [100, 105],
      tradePnl: [5, 3],
      bars: 1,
      barsInPosition: 1,
    });
    expect(noLosers.profitFactor).toBeNull();
    expect(noLosers.winRate).toBe(1);
    const noWinners = computeStatistics({
      equity: [100, 95],
      tradePnl: [-5],
      bars: 1,
      barsInPosition: 1,
    });
    expect(noWinners.profitFactor).toBe(0);
    expect(noWinners.winRate).toBe(0);
  });

  it('without trades: win rate, profit factor and expectancy are null', () => {
    const s = computeStatistics({ equity: [100, 100], tradePnl: [], bars: 0, barsInPosition: 0 });
    expect(s).toMatchObject({
      trades: 0,
      winRate: null,
      profitFactor: null,
      expectancy: null,
      exposure: null,
    });
  });

  it('flat equity: CAGR 0, no drawdown; Sharpe, Sortino and Calmar are null', () => {
    const s = computeStatistics({
      equity: [100, 100, 100],
      tradePnl: [],
      bars: 2,
      barsInPosition: 0,
    });
    expect(s).toMatchObject({ cagr: 0, maxDrawdown: 0, sharpe: null, sortino: null, calmar: null });
  });

  it('one day: Sharpe is null (no sample deviation); no day at all: CAGR is null too', () => {
    const one = computeStatistics({ equity: [100, 90], tradePnl: [], bars: 1, barsInPosition: 0 });
    expect(one.sharpe).toBeNull();
    expect(one.sortino).toBeCloseTo((-0.1 / 0.1) * Math.sqrt(365), 9);
    const none = computeStatistics({ equity: [100], tradePnl: [], bars: 0, barsInPosition: 0 });
    expect(none).toMatchObject({ days: 0, cagr: null, totalReturn: 0, finalEquity: 100 });
  });

  it('equity at or below zero: CAGR −1', () => {
    const s = computeStatistics({
      equity: [100, 50, -10],
      tradePnl: [],
      bars: 2,
      barsInPosition: 2,
    });
    expect(s.cagr).toBe(-1);
    expect(s.maxDrawdown).toBeCloseTo(1.1, 12);
  });

  it('refuses a series without a positive start', () => {
    expect(() =>
      computeStatistics({ equity: [], tradePnl: [], bars: 0, barsInPosition: 0 }),
    ).toThrow(RangeError);
  });
});
