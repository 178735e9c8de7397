import { ValidationError } from '../errors.js';
import { computeStatistics, type Statistics } from '../trading/statistics.js';

/**
 * Walk-forward plans over the UTC days of a window. The window is cut into `inSampleBlocks +
 * folds` blocks of equal length (the first block takes the days left over); fold i is scored
 * out-of-sample on block `inSampleBlocks + i` after its parameters were chosen in-sample on the
 * blocks before it: all of them (anchored) or the last `inSampleBlocks` (rolling).
 *
 * A trial runs its parameters once over the whole window (indicators stay warm across block
 * boundaries, as they would live); folds are slices of its daily equity and closed trades.
 */

export const WALK_FORWARD_SCHEMES = ['rolling', 'anchored'] as const;
export type WalkForwardScheme = (typeof WALK_FORWARD_SCHEMES)[number];

export interface WalkForwardPlan {
  scheme: WalkForwardScheme;
  folds: number;
  inSampleBlocks: number;
}

export const DEFAULT_WALK_FORWARD: WalkForwardPlan = {
  scheme: 'rolling',
  folds: 5,
  inSampleBlocks: 3,
};
export const MAX_FOLDS = 20;
/** A block needs a few daily returns for a Sharpe ratio to mean anything. */
export const MIN_BLOCK_DAYS = 5;

/** Days [from, to) of the window, as indices from its first day. */
export interface DayRange {
  from: number;
  to: number;
}

export interface Fold {
  index: number;
  inSample: DayRange;
  outOfSample: DayRange;
}

export function planFolds(plan: WalkForwardPlan, days: number): Fold[] {
  const fail = (path: string, message: string): never => {
    throw new ValidationError('INVALID_WALK_FORWARD', `${path} ${message}`, {
      errors: [{ path, message }],
    });
  };
  const { folds, inSampleBlocks } = plan;
  if (!Number.isInteger(folds) || folds < 1 || folds > MAX_FOLDS)
    fail('walkForward.folds', `must be an integer from 1 to ${MAX_FOLDS}`);
  if (!Number.isInteger(inSampleBlocks) || inSampleBlocks < 1 || inSampleBlocks > MAX_FOLDS)
    fail('walkForward.inSampleBlocks', `must be an integer from 1 to ${MAX_FOLDS}`);
  const blocks = folds + inSampleBlocks;
  const length = Math.floor(days / blocks);
  if (length < MIN_BLOCK_DAYS)
    fail(
      'walkForward.folds',
      `cut the ${days}-day window into ${blocks} blocks of ${length} days; a block needs at least ${MIN_BLOCK_DAYS} (fewer folds or a longer window)`,
    );
  const start = (block: number): number => (block === 0 ? 0 : days - (blocks - block) * length);
  return Array.from({ length: folds }, (_, i) => {
    const test = inSampleBlocks + i;
    return {
      index: i,
      inSample: {
        from: plan.scheme === 'anchored' ? 0 : start(test - inSampleBlocks),
        to: start(test),
      },
      outOfSample: { from: start(test), to: start(test) + length },
    };
  });
}

/** What one trial produced over the window: end-of-day equity per window day and its trades. */
export interface TrialRun {
  initialCash: number;
  /** Equity at the end of each day of the window (days before the first candle hold the cash). */
  equity: Float64Array;
  /** Window day on which each closed trade closed, and its net PnL. */
  tradeDays: Int32Array;
  tradePnl: Float64Array;
}

/** The statistics of a trial over days [from, to) of the window. */
export function statisticsOver(run: TrialRun, range: DayRange): Statistics {
  const start = range.from === 0 ? run.initialCash : (run.equity[range.from - 1] ?? NaN);
  const equity = [start];
  for (let d = range.from; d < range.to; d++) equity.push(run.equity[d] ?? NaN);
  const tradePnl: number[] = [];
  for (let i = 0; i < run.tradeDays.length; i++) {
    const day = run.tradeDays[i] ?? -1;
    if (day >= range.from && day < range.to) tradePnl.push(run.tradePnl[i] ?? 0);
  }
  return computeStatistics({ equity, tradePnl, bars: 0, barsInPosition: 0 });
}

/** Daily returns r_d = E_d / E_{d−1} − 1 over [from, to) (the first against the day before). */
export function returnsOver(run: TrialRun, range: DayRange): Float64Array {
  const out = new Float64Array(range.to - range.from);
  let previous = range.from === 0 ? run.initialCash : (run.equity[range.from - 1] ?? NaN);
  for (let d = range.from; d < range.to; d++) {
    const value = run.equity[d] ?? NaN;
    out[d - range.from] = value / previous - 1;
    previous = value;
  }
  return out;
}

/**
 * The out-of-sample equity of a walk-forward: each fold's block earned with the parameters
 * chosen for it, chained from the initial cash. `chosen[i]` is fold i's trial run (null: the
 * fold found no scored trial and stayed in cash).
 */
export function stitchedEquity(
  folds: readonly Fold[],
  chosen: readonly (TrialRun | null)[],
  initialCash: number,
): { day: number; equity: number }[] {
  const points: { day: number; equity: number }[] = [];
  let equity = initialCash;
  folds.forEach((fold, i) => {
    const run = chosen[i] ?? null;
    const returns = run ? returnsOver(run, fold.outOfSample) : null;
    for (let d = fold.outOfSample.from; d < fold.outOfSample.to; d++) {
      equity *= 1 + (returns?.[d - fold.outOfSample.from] ?? 0);
      points.push({ day: d, equity });
    }
  });
  return points;
}
