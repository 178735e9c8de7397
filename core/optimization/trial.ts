import type { JsonObject } from '../eventstore/event-store.js';
import type { Candle, Instrument } from '../market/types.js';
import type { Timeframe } from '../strategies/kinds.js';
import { backtest } from '../trading/backtest.js';
import type { PaperVenueCosts } from '../trading/venue.js';
import type { TrialRun } from './walk-forward.js';

/**
 * One trial: the backtester run over the window with one parameter set, reduced to what a
 * walk-forward needs (end-of-day equity per window day, each closed trade's day and net PnL).
 * The candles travel to worker threads once, packed into a SharedArrayBuffer (six float64 per
 * candle), and are unpacked once per thread: no copy per trial.
 */

export const DAY_MS = 86_400_000;

/** Everything a trial needs besides its parameters and the candles. */
export interface TrialSetup {
  kind: string;
  symbol: string;
  timeframe: Timeframe;
  instrument: Instrument;
  initialCash: number;
  costs: PaperVenueCosts;
  /** Window [from, to) in epoch ms; `from` is midnight UTC. */
  from: number;
  to: number;
}

/** UTC days in the window (its first day, day 0, is the day of `from`). */
export const windowDays = (from: number, to: number): number =>
  Math.ceil(to / DAY_MS) - Math.floor(from / DAY_MS);

export function runTrial(
  setup: TrialSetup,
  parameters: JsonObject,
  candles: readonly Candle[],
): TrialRun {
  const result = backtest(
    {
      portfolioId: 'optimization',
      currency: setup.instrument.quote,
      initialCash: setup.initialCash,
      timeframe: setup.timeframe,
      instruments: [setup.instrument],
      books: [
        {
          strategyId: 'trial',
          symbol: setup.symbol,
          kind: setup.kind,
          parameters,
          allocation: 1,
        },
      ],
      venue: setup.costs,
    },
    candles,
    { from: setup.from, to: setup.to, keepEvents: false },
  );
  const firstDay = Math.floor(setup.from / DAY_MS);
  const days = windowDays(setup.from, setup.to);
  const equity = new Float64Array(days);
  let filled = 0;
  let last = setup.initialCash;
  for (const entry of result.equity) {
    const day = Math.round(Date.parse(entry.date) / DAY_MS) - firstDay;
    if (day < 0 || day >= days) continue;
    while (filled < day) equity[filled++] = last;
    equity[filled++] = entry.equity;
    last = entry.equity;
  }
  while (filled < days) equity[filled++] = last;
  const tradeDays = new Int32Array(result.trades.length);
  const tradePnl = new Float64Array(result.trades.length);
  result.trades.forEach((trade, i) => {
    tradeDays[i] = Math.floor(trade.closedAt / DAY_MS) - firstDay;
    tradePnl[i] = trade.netPnl;
  });
  return { initialCash: setup.initialCash, equity, tradeDays, tradePnl };
}

const FIELDS = 6;

/** Candles packed into a SharedArrayBuffer: openTime, open, high, low, close, volume. */
export function packCandles(candles: readonly Candle[]): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(candles.length * FIELDS * 8);
  const view = new Float64Array(buffer);
  candles.forEach((c, i) => {
    const at = i * FIELDS;
    view[at] = c.openTime;
    view[at + 1] = c.open;
    view[at + 2] = c.high;
    view[at + 3] = c.low;
    view[at + 4] = c.close;
    view[at + 5] = c.volume;
  });
  return buffer;
}

export function unpackCandles(
  buffer: SharedArrayBuffer,
  symbol: string,
  timeframe: Timeframe,
): Candle[] {
  const view = new Float64Array(buffer);
  const candles: Candle[] = [];
  for (let at = 0; at < view.length; at += FIELDS)
    candles.push({
      symbol,
      timeframe,
      openTime: view[at] ?? 0,
      open: view[at + 1] ?? 0,
      high: view[at + 2] ?? 0,
      low: view[at + 3] ?? 0,
      close: view[at + 4] ?? 0,
      volume: view[at + 5] ?? 0,
    });
  return candles;
}
