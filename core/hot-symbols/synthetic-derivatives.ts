import { Random } from '../market/random.js';
import type { Candle } from '../market/types.js';

/**
 * Open interest and funding rates for the synthetic market, drawn from its price path (so they
 * move with it), plus regimes injected on purpose: what hot-symbol scoring is tested against
 * (docs/hot-symbols.md). Deterministic in (key, candles, injections).
 *
 * - Open interest (hourly): log OI follows half the hour's log return, reverts to its base
 *   (about 20 hours of turnover) at 2 % an hour, with 0.5 % hourly noise.
 * - Funding (every 8 h): 0.01 % plus 1 % of the last 8 hours' return, with noise; within ±0.3 %.
 */
export type InjectedRegime =
  /** Traded volume × strength (default 6) from `from` on. */
  | { kind: 'volume_jump'; symbol: string; from: number; strength?: number }
  /** Open interest grows by `strength` (default 0.6 = +60 %) over the first 24 h after `from`. */
  | { kind: 'open_interest_buildup'; symbol: string; from: number; strength?: number }
  /** Funding at `strength` (default 0.003 per period) from `from` on. */
  | { kind: 'funding_extreme'; symbol: string; from: number; strength?: number }
  /**
   * A breakout from the range: over 24 h from `from` the price climbs to (1 + strength) × the
   * highest high of the 30 days before (default 0.1), on volume × 2.5, then holds there.
   */
  | { kind: 'breakout'; symbol: string; from: number; strength?: number };

const HOUR = 3_600_000;
const FUNDING_PERIOD = 8 * HOUR;

const injectionsOf = (symbol: string, all: readonly InjectedRegime[]) =>
  all.filter((i) => i.symbol === symbol);

/** The candles with volume jumps and breakouts applied (others pass through unchanged). */
export function injectIntoCandles(
  candles: readonly Candle[],
  injections: readonly InjectedRegime[],
): Candle[] {
  // A breakout's lift: from the close before it to (1 + strength) × the 30-day high.
  const lifts = new Map<InjectedRegime, number>();
  for (const injection of injections) {
    if (injection.kind !== 'breakout') continue;
    const before = candles.filter(
      (c) =>
        c.symbol === injection.symbol &&
        c.openTime < injection.from &&
        c.openTime >= injection.from - 30 * 24 * HOUR,
    );
    const high = Math.max(...before.map((c) => c.high));
    const close = before.at(-1)?.close ?? high;
    lifts.set(injection, Math.max(0, Math.log(((1 + (injection.strength ?? 0.1)) * high) / close)));
  }
  return candles.map((candle) => {
    let out = candle;
    for (const injection of injectionsOf(candle.symbol, injections)) {
      if (candle.openTime < injection.from) continue;
      if (injection.kind === 'volume_jump')
        out = { ...out, volume: out.volume * (injection.strength ?? 6) };
      if (injection.kind === 'breakout') {
        const lift = lifts.get(injection) ?? 0;
        const at = (time: number): number =>
          Math.exp(lift * Math.min(1, Math.max(0, (time - injection.from) / (24 * HOUR))));
        const [open, close] = [at(candle.openTime), at(candle.openTime + HOUR)];
        out = {
          ...out,
          open: out.open * open,
          close: out.close * close,
          high: out.high * Math.max(open, close),
          low: out.low * Math.min(open, close),
          volume: out.volume * 2.5,
        };
      }
    }
    return out;
  });
}

/** Open interest by hour and funding every 8 hours for one symbol's 1-hour candles. */
export function syntheticDerivatives(
  key: string,
  candles: readonly Candle[],
  injections: readonly InjectedRegime[] = [],
): { openInterest: { time: number; value: number }[]; funding: { time: number; rate: number }[] } {
  const first = candles[0];
  if (!first) return { openInterest: [], funding: [] };
  const random = new Random(`derivatives:${key}:${first.symbol}`);
  const mine = injectionsOf(first.symbol, injections);
  const hourlyQuote =
    candles.reduce((sum, c) => sum + c.close * c.volume, 0) / Math.max(1, candles.length);
  const base = Math.log((20 * hourlyQuote) / first.close);
  let logOi = base;
  let lastFundingClose = first.open;
  const openInterest: { time: number; value: number }[] = [];
  const funding: { time: number; rate: number }[] = [];
  let previousClose = first.open;
  for (const candle of candles) {
    const ret = Math.log(candle.close / previousClose);
    previousClose = candle.close;
    logOi += 0.5 * ret - 0.02 * (logOi - base) + 0.005 * random.normal();
    for (const injection of mine)
      if (
        injection.kind === 'open_interest_buildup' &&
        candle.openTime >= injection.from &&
        candle.openTime < injection.from + 24 * HOUR
      )
        logOi += Math.log(1 + (injection.strength ?? 0.6)) / 24 + 0.02 * (logOi - base);
    const time = candle.openTime + HOUR;
    openInterest.push({ time, value: Math.exp(logOi) });
    if (time % FUNDING_PERIOD === 0) {
      const premium = Math.log(candle.close / lastFundingClose);
      lastFundingClose = candle.close;
      let rate = Math.max(
        -0.003,
        Math.min(0.003, 0.0001 + 0.01 * premium + 0.00005 * random.normal()),
      );
      for (const injection of mine)
        if (injection.kind === 'funding_extreme' && time > injection.from)
          rate = injection.strength ?? 0.003;
      funding.push({ time, rate });
    }
  }
  return { openInterest, funding };
}
