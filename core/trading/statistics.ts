/**
 * Performance statistics on daily UTC mark-to-market equity, 365 periods a year. Every formula,
 * convention and edge case is written out in docs/trading.md; the names here follow it.
 */

export const PERIODS_PER_YEAR = 365;

export type Statistics = {
  /** Daily returns the figures are computed from (n). */
  days: number;
  initialEquity: number;
  finalEquity: number;
  /** E_n / E_0 − 1. */
  totalReturn: number;
  /** (E_n / E_0)^(365 / n) − 1; null without a day; −1 when the equity ended at or below 0. */
  cagr: number | null;
  /** mean(r) / sample std(r) × √365; null with fewer than 2 days or no variation. */
  sharpe: number | null;
  /** mean(r) / downside deviation × √365; null without a day below 0. */
  sortino: number | null;
  /** Largest fall from a running peak, as a fraction of that peak (≥ 0). */
  maxDrawdown: number;
  /** CAGR / max drawdown; null without a drawdown or a CAGR. */
  calmar: number | null;
  trades: number;
  /** Share of trades with net PnL > 0; null without trades. */
  winRate: number | null;
  /** Σ net PnL of winners / |Σ net PnL of losers|; null without a losing trade. */
  profitFactor: number | null;
  /** Mean net PnL per trade, quote currency; null without trades. */
  expectancy: number | null;
  /** Share of bars closed with a non-zero position; null without bars. */
  exposure: number | null;
};

export type StatisticsInput = {
  /** E_0 (the starting equity), then the equity at the end of each UTC day. */
  equity: readonly number[];
  /** Net PnL (after fees) of each closed round trip. */
  tradePnl: readonly number[];
  bars: number;
  barsInPosition: number;
};

/** r_i = E_i / E_{i−1} − 1 for i = 1..n. */
export function dailyReturns(equity: readonly number[]): number[] {
  const returns: number[] = [];
  for (let i = 1; i < equity.length; i++)
    returns.push((equity[i] ?? NaN) / (equity[i - 1] ?? NaN) - 1);
  return returns;
}

const mean = (values: readonly number[]): number =>
  values.reduce((sum, value) => sum + value, 0) / values.length;

/** Sample standard deviation (n − 1 in the denominator); null below 2 values. */
export function sampleStd(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values);
  let squares = 0;
  for (const value of values) squares += (value - m) ** 2;
  return Math.sqrt(squares / (values.length - 1));
}

/** Downside deviation below 0 over all n values: sqrt(Σ min(r, 0)² / n). */
export function downsideDeviation(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let squares = 0;
  for (const value of values) if (value < 0) squares += value * value;
  return Math.sqrt(squares / values.length);
}

/** Largest (peak − E) / peak over the series, peak = the running maximum. */
export function maxDrawdown(equity: readonly number[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const value of equity) {
    if (value > peak) peak = value;
    else if (peak > 0) worst = Math.max(worst, (peak - value) / peak);
  }
  return worst;
}

export function computeStatistics(input: StatisticsInput): Statistics {
  const { equity, tradePnl, bars, barsInPosition } = input;
  const initialEquity = equity[0];
  if (initialEquity === undefined || !(initialEquity > 0))
    throw new RangeError('statistics need a starting equity > 0');
  const finalEquity = equity[equity.length - 1] ?? initialEquity;
  const returns = dailyReturns(equity);
  const n = returns.length;
  const growth = finalEquity / initialEquity;
  const cagr = n === 0 ? null : growth <= 0 ? -1 : growth ** (PERIODS_PER_YEAR / n) - 1;
  const annual = Math.sqrt(PERIODS_PER_YEAR);
  const std = sampleStd(returns);
  const downside = downsideDeviation(returns);
  const sharpe = std === null || std === 0 ? null : (mean(returns) / std) * annual;
  const sortino = downside === null || downside === 0 ? null : (mean(returns) / downside) * annual;
  const drawdown = maxDrawdown(equity);
  const calmar = cagr === null || drawdown === 0 ? null : cagr / drawdown;

  let wins = 0;
  let grossProfit = 0;
  let grossLoss = 0;
  let total = 0;
  for (const pnl of tradePnl) {
    total += pnl;
    if (pnl > 0) {
      wins++;
      grossProfit += pnl;
    } else if (pnl < 0) {
      grossLoss -= pnl;
    }
  }
  const trades = tradePnl.length;
  return {
    days: n,
    initialEquity,
    finalEquity,
    totalReturn: growth - 1,
    cagr,
    sharpe,
    sortino,
    maxDrawdown: drawdown,
    calmar,
    trades,
    winRate: trades === 0 ? null : wins / trades,
    profitFactor: grossLoss === 0 ? null : grossProfit / grossLoss,
    expectancy: trades === 0 ? null : total / trades,
    exposure: bars === 0 ? null : barsInPosition / bars,
  };
}
