import { describe, expect, it } from 'vitest';
import { generateCandles } from '../market/synthetic.js';
import type { Candle } from '../market/types.js';
import {
  DEFAULT_WEIGHTS,
  recommend,
  robustZ,
  scoreHotSymbols,
  type SymbolSeries,
} from './score.js';
import {
  injectIntoCandles,
  syntheticDerivatives,
  type InjectedRegime,
} from './synthetic-derivatives.js';

const HOUR = 3_600_000;
const at = Date.UTC(2026, 10, 1);

const generated = new Map<number, Candle[]>();
/** The synthetic market's hourly candles (generated from 1-minute bars: seconds, so kept). */
const candlesOf = (seed: number): Candle[] => {
  const cached = generated.get(seed);
  if (cached) return cached;
  const candles = [
    ...generateCandles({ seed, from: at - 32 * 24 * HOUR, to: at, timeframe: '1h' }),
  ];
  generated.set(seed, candles);
  return candles;
};

/** Twelve synthetic symbols, 32 days of hourly candles with open interest and funding. */
function market(seed: number, injections: readonly InjectedRegime[] = []): SymbolSeries[] {
  const candles: Candle[] = injectIntoCandles(candlesOf(seed), injections);
  const symbols = [...new Set(candles.map((c) => c.symbol))];
  return symbols.map((symbol) => {
    const own = candles.filter((c) => c.symbol === symbol);
    return { symbol, candles: own, ...syntheticDerivatives(String(seed), own, injections) };
  });
}

const injected: InjectedRegime[] = [
  { kind: 'volume_jump', symbol: 'SOLUSDT', from: at - 20 * HOUR },
  { kind: 'open_interest_buildup', symbol: 'LINKUSDT', from: at - 24 * HOUR },
  { kind: 'funding_extreme', symbol: 'DOGEUSDT', from: at - 16 * HOUR },
  { kind: 'breakout', symbol: 'AVAXUSDT', from: at - 24 * HOUR },
];

// Generating a month of a dozen symbols takes seconds on a busy machine.
describe('hot-symbol scores', { timeout: 60_000 }, () => {
  it('robust z: distance from the median in MAD-estimated sigmas, clipped', () => {
    expect(robustZ(13, [10, 11, 12, 13, 14])).toBeCloseTo(1 / 1.4826, 10);
    expect(robustZ(10, [10, 10, 10])).toBe(0);
    expect(robustZ(1e9, [1, 2, 3, 4])).toBe(6);
  });

  it.each([1, 2, 42])(
    'ranks every injected regime in the top five, each in its own dimension (seed %i)',
    (seed) => {
      const scores = scoreHotSymbols(market(seed, injected), { at });
      const top = scores.slice(0, 5).map((s) => s.symbol);
      for (const { symbol } of injected) expect(top).toContain(symbol);
      const of = (symbol: string) => scores.find((s) => s.symbol === symbol)!.dimensions;
      expect(of('SOLUSDT').volumeJump.z).toBeGreaterThan(4);
      expect(of('LINKUSDT').openInterest.z).toBeGreaterThan(4);
      expect(of('DOGEUSDT').funding.z).toBeGreaterThan(4);
      expect(of('AVAXUSDT').turnover.z).toBeGreaterThan(4);
    },
  );

  it.each([1, 2, 42])('recommends nothing strong in a quiet market (seed %i)', (seed) => {
    const scores = scoreHotSymbols(market(seed), { at });
    expect(scores).toHaveLength(12);
    expect(recommend(scores, 5, 1)).toEqual([]);
    expect(recommend(scoreHotSymbols(market(seed, injected), { at }), 5, 1).length).toBeGreaterThan(
      1,
    );
  });

  it('marks a dimension without a series missing and leaves it out, never a silent zero', () => {
    const series = market(42, injected).map((s) =>
      s.symbol === 'DOGEUSDT' ? { symbol: s.symbol, candles: s.candles } : s,
    );
    const doge = scoreHotSymbols(series, { at }).find((s) => s.symbol === 'DOGEUSDT')!;
    expect(doge.dimensions.funding).toEqual({
      z: null,
      rank: null,
      missing: 'no funding-rate series',
    });
    expect(doge.dimensions.openInterest.missing).toBe('no open-interest series');
    const present = ['volumeJump', 'turnover', 'regime'] as const;
    const weight = present.reduce((sum, d) => sum + DEFAULT_WEIGHTS[d], 0);
    const expected = present.reduce(
      (sum, d) => sum + DEFAULT_WEIGHTS[d] * doge.dimensions[d].z!,
      0,
    );
    expect(doge.score).toBeCloseTo(expected / weight, 12);
  });

  it('gives the same scores for the same series', () => {
    const series = market(7, injected);
    expect(scoreHotSymbols(series, { at })).toEqual(scoreHotSymbols(series, { at }));
  });
});
