import { ValidationError } from '../errors.js';
import type { Statistics } from '../trading/statistics.js';

/**
 * What an optimization maximizes, computed from the performance statistics of
 * core/trading/statistics.ts (daily UTC equity, 365 periods a year). A window with fewer closed
 * trades than `minTrades` has no score: a parameter set that barely trades cannot win by luck.
 */

export const OBJECTIVES = ['sharpe', 'sortino', 'calmar', 'netPnl'] as const;
export type ObjectiveName = (typeof OBJECTIVES)[number];

export interface Objective {
  name: ObjectiveName;
  /** Fewest closed trades a window needs to be scored. */
  minTrades: number;
}

export const DEFAULT_MIN_TRADES = 5;
export const MAX_MIN_TRADES = 100_000;

/**
 * Ratios are undefined for a window without trades (flat equity has no variation and no
 * drawdown); only net PnL is defined there (zero).
 */
const DEFINED_WITHOUT_TRADES: Readonly<Record<ObjectiveName, boolean>> = {
  sharpe: false,
  sortino: false,
  calmar: false,
  netPnl: true,
};

export function checkObjective(objective: Objective): void {
  const { name, minTrades } = objective;
  const fail = (path: string, message: string): never => {
    throw new ValidationError('INVALID_OBJECTIVE', `${path} ${message}`, {
      errors: [{ path, message }],
    });
  };
  if (!Number.isInteger(minTrades) || minTrades < 0 || minTrades > MAX_MIN_TRADES)
    fail('objective.minTrades', `must be an integer from 0 to ${MAX_MIN_TRADES}`);
  if (minTrades === 0 && !DEFINED_WITHOUT_TRADES[name])
    fail(
      'objective.minTrades',
      `must be at least 1 for ${name}: it is undefined for a window with zero trades`,
    );
}

/** The window's score, or null when it has too few trades or the ratio is undefined. */
export function scoreOf(objective: Objective, statistics: Statistics): number | null {
  if (statistics.trades < objective.minTrades) return null;
  switch (objective.name) {
    case 'sharpe':
      return statistics.sharpe;
    case 'sortino':
      return statistics.sortino;
    case 'calmar':
      return statistics.calmar;
    case 'netPnl':
      return statistics.finalEquity - statistics.initialEquity;
  }
}
