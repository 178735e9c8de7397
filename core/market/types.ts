import type { Timeframe } from '../strategies/kinds.js';

/** A tradable pair on the venue. Prices are multiples of `tickSize`, quantities of `lotSize`. */
export type Instrument = {
  symbol: string;
  base: string;
  quote: string;
  tickSize: number;
  lotSize: number;
  /** Smallest price × quantity an order may have, in the quote currency. */
  minNotional: number;
};

/** One bar. `openTime` is the UTC start of the bar in epoch milliseconds. */
export type Candle = {
  symbol: string;
  timeframe: Timeframe;
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Traded quantity in the base currency. */
  volume: number;
};

/** Length of each timeframe in milliseconds. */
export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};
