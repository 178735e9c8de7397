/**
 * The average true range (Wilder) the exits' ATR stop is set from, one bar at a time. Plain JSON,
 * kept in the engine's exit tracker between cycles.
 */
import type { Candle } from '../market/types.js';

export type AtrState = {
  period: number;
  /** True ranges seen (up to `period`). */
  count: number;
  previousClose: number | null;
  /** Sum of the first true ranges, until `period` of them were seen. */
  sum: number;
  /** null until `period` true ranges were seen. */
  atr: number | null;
};

export const initialAtr = (period: number): AtrState => ({
  period,
  count: 0,
  previousClose: null,
  sum: 0,
  atr: null,
});

/**
 * One bar more. TR = max(high − low, |high − previous close|, |low − previous close|) (high − low
 * on the first bar); the first ATR is the mean of the first `period` TRs, then
 * ATR = (ATR × (period − 1) + TR) / period.
 */
export function updateAtr(
  state: AtrState,
  candle: Pick<Candle, 'high' | 'low' | 'close'>,
): AtrState {
  const { high, low, close } = candle;
  const previous = state.previousClose;
  const tr =
    previous === null
      ? high - low
      : Math.max(high - low, Math.abs(high - previous), Math.abs(low - previous));
  const { period } = state;
  if (state.atr !== null)
    return { ...state, previousClose: close, atr: (state.atr * (period - 1) + tr) / period };
  const count = state.count + 1;
  const sum = state.sum + tr;
  return { period, count, previousClose: close, sum, atr: count === period ? sum / period : null };
}
