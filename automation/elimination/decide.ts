import type { EliminationFigures, EliminationState } from '../../core/strategies/elimination.js';
import { maxDrawdown, PERIODS_PER_YEAR, sampleStd } from '../../core/trading/statistics.js';

/**
 * Capability 7, the decision (pure; given/when/then in decide.unit.spec.ts). A strategy's rolling
 * figures over the policy's window (from the day it is watched from) breach the policy when
 *   - its Sharpe ratio (daily returns, √365) is below `sharpeBelow`, or
 *   - its largest fall from a peak is above `drawdownAbove`, or
 *   - its last `losingWeeksInARow` whole weeks (7-day blocks ending on the last day) each lost.
 * Then, in order:
 *   - watched and trading (paper or live), with at least MIN_DAYS of figures and a breach: suspend;
 *   - suspended, and a person resumed or retired it meanwhile: the suspension is cleared;
 *   - suspended for `coolingDays` and still breaching: propose retirement (four eyes);
 *   - suspended for `coolingDays` and no longer breaching: it recovered, resume it;
 *   - otherwise nothing.
 */

export type EliminationThresholds = {
  sharpeBelow: number;
  drawdownAbove: number;
  losingWeeksInARow: number;
  windowDays: number;
  coolingDays: number;
};

/** Fewer days than this say nothing either way. */
export const MIN_DAYS = 7;
const DAY_MS = 86_400_000;
const round = (value: number): number => Number(value.toPrecision(6));

/**
 * The figures of a daily equity series: `equity[0]` the start, then one value per UTC day
 * (`days[i]` names the day of `equity[i + 1]`).
 */
export function figuresOf(equity: readonly number[], days: readonly string[]): EliminationFigures {
  const returns: number[] = [];
  for (let i = 1; i < equity.length; i++)
    returns.push((equity[i] as number) / (equity[i - 1] as number) - 1);
  const std = sampleStd(returns);
  const mean = returns.reduce((sum, r) => sum + r, 0) / Math.max(returns.length, 1);
  const sharpe = std === null || std === 0 ? null : (mean / std) * Math.sqrt(PERIODS_PER_YEAR);
  let losing = 0;
  for (let end = equity.length - 1; end - 7 >= 0; end -= 7) {
    if ((equity[end] as number) < (equity[end - 7] as number)) losing++;
    else break;
  }
  return {
    from: days[0] ?? '',
    to: days.at(-1) ?? '',
    days: returns.length,
    sharpe: sharpe === null || !Number.isFinite(sharpe) ? null : round(sharpe),
    drawdown: round(maxDrawdown(equity)),
    losingWeeksInARow: losing,
  };
}

/** What breaches the policy, each as `CODE: figures` (empty: nothing). */
export function breachesOf(f: EliminationFigures, t: EliminationThresholds): string[] {
  const out: string[] = [];
  if (f.sharpe !== null && f.sharpe < t.sharpeBelow)
    out.push(`SHARPE_BELOW: sharpe=${f.sharpe} < ${t.sharpeBelow} over ${f.days} days`);
  if (f.drawdown > t.drawdownAbove)
    out.push(`DRAWDOWN_ABOVE: drawdown=${f.drawdown} > ${t.drawdownAbove}`);
  if (f.losingWeeksInARow >= t.losingWeeksInARow)
    out.push(
      `LOSING_WEEKS: ${f.losingWeeksInARow} losing weeks in a row (limit ${t.losingWeeksInARow})`,
    );
  return out;
}

/** The first day the figures may cover: the window's start, or the day it is watched from. */
export function windowStart(record: EliminationState, windowDays: number, now: Date): Date {
  const window = now.getTime() - windowDays * DAY_MS;
  const watched = record.watchFrom ? Date.parse(record.watchFrom) : -Infinity;
  return new Date(Math.max(window, watched));
}

export type EliminationInput = {
  strategy: { strategyId: string; status: string };
  record: EliminationState;
  /** Over `windowStart(record, …)` to now; null when there is nothing to compute them on. */
  figures: EliminationFigures | null;
  thresholds: EliminationThresholds;
  now: Date;
};

export type EliminationDecision =
  | { type: 'suspend'; figures: EliminationFigures; breaches: string[] }
  | { type: 'propose_retirement'; figures: EliminationFigures; breaches: string[] }
  | { type: 'recover'; figures: EliminationFigures }
  | { type: 'clear'; outcome: 'resumed' | 'retired'; reason: string }
  | null;

const trading = (status: string): boolean => status === 'paper' || status === 'live';

export function eliminationDecision(input: EliminationInput): EliminationDecision {
  const { strategy, record, figures, thresholds, now } = input;
  const enough = figures !== null && figures.days >= MIN_DAYS;
  const breaches = enough ? breachesOf(figures, thresholds) : [];
  switch (record.status) {
    case 'watching':
      if (!trading(strategy.status) || !enough || breaches.length === 0) return null;
      return { type: 'suspend', figures, breaches };
    case 'suspended': {
      if (strategy.status === 'retired')
        return { type: 'clear', outcome: 'retired', reason: 'retired by a person while suspended' };
      if (trading(strategy.status))
        return { type: 'clear', outcome: 'resumed', reason: 'resumed by a person while suspended' };
      const since = Date.parse(record.suspendedAt ?? now.toISOString());
      if (now.getTime() - since < thresholds.coolingDays * DAY_MS || !enough) return null;
      if (breaches.length > 0) return { type: 'propose_retirement', figures, breaches };
      return { type: 'recover', figures };
    }
    case 'retirement_proposed':
      if (trading(strategy.status))
        return {
          type: 'clear',
          outcome: 'resumed',
          reason: 'resumed by a person before retirement',
        };
      return null;
    case 'retired':
      return null;
  }
}
