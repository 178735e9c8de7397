/**
 * Shared fixtures of the core/trading unit specs (not a spec itself: vitest runs `*.unit.spec.ts`).
 */
import type { Candle, Instrument } from '../market/types.js';
import type { Timeframe } from '../strategies/kinds.js';

export const BTC: Instrument = {
  symbol: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  tickSize: 0.01,
  lotSize: 0.001,
  minNotional: 10,
};

export const ETH: Instrument = {
  symbol: 'ETHUSDT',
  base: 'ETH',
  quote: 'USDT',
  tickSize: 0.01,
  lotSize: 0.01,
  minNotional: 10,
};

export const T0 = Date.UTC(2024, 0, 1);
export const MINUTE = 60_000;
export const DAY = 86_400_000;

/** A bar; high and low default to the extremes of open and close. */
export function bar(
  openTime: number,
  open: number,
  close: number,
  extra: {
    high?: number;
    low?: number;
    volume?: number;
    symbol?: string;
    timeframe?: Timeframe;
  } = {},
): Candle {
  return {
    symbol: extra.symbol ?? BTC.symbol,
    timeframe: extra.timeframe ?? '1m',
    openTime,
    open,
    high: extra.high ?? Math.max(open, close),
    low: extra.low ?? Math.min(open, close),
    close,
    volume: extra.volume ?? 1_000,
  };
}

/** Bars from closes: each opens at the previous close. */
export function barsFromCloses(
  closes: readonly number[],
  timeframe: Timeframe = '1m',
  step = MINUTE,
): Candle[] {
  return closes.map((close, i) =>
    bar(T0 + i * step, i === 0 ? close : closes[i - 1]!, close, { timeframe }),
  );
}

/** mulberry32: a tiny seeded generator for test data. */
export function seeded(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random walk of 1-minute bars on the tick, volumes in lots. */
export function randomWalk(
  count: number,
  seed: number,
  options: { symbol?: string; start?: number; price?: number; volatility?: number } = {},
): Candle[] {
  const random = seeded(seed);
  const candles: Candle[] = [];
  let price = options.price ?? 100;
  const volatility = options.volatility ?? 0.004;
  const onTick = (value: number): number => Math.round(value * 100) / 100;
  for (let i = 0; i < count; i++) {
    const open = price;
    const close = Math.max(0.01, onTick(open * (1 + (random() - 0.5) * volatility * 2)));
    const high = onTick(Math.max(open, close) * (1 + random() * volatility));
    const low = Math.max(0.01, onTick(Math.min(open, close) * (1 - random() * volatility)));
    candles.push({
      symbol: options.symbol ?? BTC.symbol,
      timeframe: '1m',
      openTime: (options.start ?? T0) + i * MINUTE,
      open,
      high,
      low,
      close,
      volume: Math.round((0.5 + random() * 20) * 1000) / 1000,
    });
    price = close;
  }
  return candles;
}
