import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../../core/approvals/approval.js';
import {
  automaticRequest,
  seedOf,
  type AutomaticSearch,
  type LiveStrategy,
} from '../../core/optimization/automatic.js';
import { optimizations, optimizationStream } from '../../core/optimization/optimization.js';
import type { OptimizationTrigger } from '../../core/optimization/request.js';
import { computeStatistics } from '../../core/trading/statistics.js';
import { intent, type Intent } from '../process-manager.js';

/**
 * Capabilities 1 (optimize when profit falls short) and 6 (periodic optimization), the decisions:
 * pure functions of what the process manager read (automation/optimization/automatic-optimizer.ts).
 */

const DAY = 86_400_000;
/** Fewer daily returns than this in the window say nothing about a strategy: no trigger. */
export const MIN_DAYS = 7;

/** Rolling figures of a running strategy over the window, from its daily net PnL. */
export interface PerformanceFigures {
  /** Daily returns in the window. */
  days: number;
  /** Annualized (365) Sharpe ratio of the daily returns; null without variation. */
  sharpe: number | null;
  /** Largest fall from a running peak of capital + net PnL, as a fraction of the peak. */
  maxDrawdown: number;
}

/**
 * The figures over the window from the net PnL at the end of each UTC day (carried over days
 * without a valuation), on the strategy's capital: equity = capital + net PnL. The first row is
 * the day before the window (its start), when there is one.
 */
export function performanceFigures(
  capital: number,
  dailyNetPnl: readonly { day: string; netPnl: number }[],
): PerformanceFigures | null {
  if (!(capital > 0) || dailyNetPnl.length < 2) return null;
  const equity: number[] = [];
  const first = Date.parse(dailyNetPnl[0]?.day ?? '');
  let next = 0;
  let last = 0;
  for (const row of dailyNetPnl) {
    const index = Math.round((Date.parse(row.day) - first) / DAY);
    for (; next < index; next++) equity.push(capital + last);
    last = row.netPnl;
    equity.push(capital + last);
    next = index + 1;
  }
  if (!(Math.min(...equity) > 0)) return { days: equity.length - 1, sharpe: null, maxDrawdown: 1 };
  const stats = computeStatistics({ equity, tradePnl: [], bars: 0, barsInPosition: 0 });
  return { days: stats.days, sharpe: stats.sharpe, maxDrawdown: stats.maxDrawdown };
}

export interface UnderperformanceThresholds {
  sharpeBelow: number;
  drawdownAbove: number;
  windowDays: number;
}

const fixed = (value: number): number => Math.round(value * 10_000) / 10_000;

/**
 * The trigger when the rolling Sharpe ratio is below `sharpeBelow` or the drawdown above
 * `drawdownAbove`, naming the figures that fired it and the thresholds; null otherwise, and with
 * fewer than MIN_DAYS daily returns.
 */
export function underperformanceTrigger(
  figures: PerformanceFigures | null,
  thresholds: UnderperformanceThresholds,
): OptimizationTrigger | null {
  if (!figures || figures.days < MIN_DAYS) return null;
  const lowSharpe = figures.sharpe !== null && figures.sharpe < thresholds.sharpeBelow;
  const deepDrawdown = figures.maxDrawdown > thresholds.drawdownAbove;
  if (!lowSharpe && !deepDrawdown) return null;
  return {
    type: 'underperformance',
    figures: {
      days: figures.days,
      maxDrawdown: fixed(figures.maxDrawdown),
      ...(figures.sharpe === null ? {} : { sharpe: fixed(figures.sharpe) }),
    },
    thresholds: {
      sharpeBelow: thresholds.sharpeBelow,
      drawdownAbove: thresholds.drawdownAbove,
      windowDays: thresholds.windowDays,
    },
  };
}

/** The strategy's optimizations as the read model shows them. */
export interface OptimizationHistory {
  /** When the latest optimization of the strategy (any trigger) was requested. */
  lastRequestedAt: Date | null;
  /** One of them has not finished yet. */
  unfinished: boolean;
}

const utcDay = (at: Date): number => Math.floor(at.getTime() / DAY);

/**
 * Why the strategy is not optimized again now, or undefined: one of its runs is unfinished, or
 * its latest was requested fewer than `cooldownDays` UTC days ago (manual runs count too).
 */
export function cooldownHold(
  history: OptimizationHistory,
  cooldownDays: number,
  now: Date,
): string | undefined {
  if (history.unfinished) return 'OPTIMIZATION_UNFINISHED: an optimization of it is still running';
  const last = history.lastRequestedAt;
  if (last && utcDay(now) - utcDay(last) < cooldownDays)
    return `COOLING_DOWN: last optimization requested ${last.toISOString()}, cooldown ${cooldownDays} day(s)`;
  return undefined;
}

const RUN_NAMESPACE = '3f9b8e2a-6c1d-4a57-8e0f-b2d4c6a8e913';

/** The run's id from its cause (manager, slot, strategy): one cause, one optimization. */
export const automaticOptimizationId = (manager: string, slot: string, strategyId: string) =>
  uuidv5(`${manager}:${slot}:${strategyId}`, RUN_NAMESPACE);

export interface AutomaticDecision {
  manager: string;
  /** The tick's slot: the UTC day (capability 1) or the schedule's time (capability 6). */
  slot: string;
  strategy: LiveStrategy;
  trigger: OptimizationTrigger | null;
  history: OptimizationHistory;
  settings: AutomaticSearch & { cooldownDays: number };
  candlesInWindow: number;
  now: Date;
  by: Party;
}

/**
 * The decision: no trigger, or a strategy still cooling down, gives nothing; otherwise one
 * RequestOptimization of the strategy, its id and seed derived from the cause, keyed by the
 * strategy. A window without candles is left to the aggregate, which refuses it (and the refusal
 * is recorded with its reason).
 */
export function automaticOptimization(decision: AutomaticDecision): Intent[] {
  const { manager, slot, strategy, trigger, settings, now } = decision;
  if (!trigger) return [];
  if (cooldownHold(decision.history, settings.cooldownDays, now)) return [];
  const optimizationId = automaticOptimizationId(manager, slot, strategy.strategyId);
  return [
    intent(
      optimizations,
      optimizationStream(optimizationId),
      {
        type: 'RequestOptimization',
        optimizationId,
        requestedBy: decision.by,
        ...automaticRequest(strategy, settings, trigger, now, decision.candlesInWindow),
        seed: seedOf(optimizationId),
      },
      strategy.strategyId,
    ),
  ];
}
