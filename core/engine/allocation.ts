import { limitsIn, scopesOf, type RiskSnapshot } from '../risk/checks.js';
import type { Headroom } from '../trading/stepper.js';

/**
 * What the paper engine takes from a portfolio's applied allocation (core/portfolio): the weight
 * of each member strategy and the sizing settings of its policy. docs/portfolio.md, capability 4.
 */
export type AppliedAllocation = {
  proposalId: string;
  /** By strategy: fractions of the portfolio's equity; a strategy without one gets 0. */
  weights: Record<string, number>;
  sizing: { enabled: boolean; band: number };
};

export interface AllocationSource {
  /** The allocation in force for the portfolio, if any. */
  current(portfolioId: string): Promise<AppliedAllocation | undefined>;
}

/**
 * The room the risk limits in force leave one book (the strictest of its portfolio, strategy and
 * symbol scopes): balance-driven sizing never asks for more, so its orders pass the pre-trade
 * check instead of being denied bar after bar. The check still runs on every order: limits win.
 */
export const headroomFrom =
  (snapshot: () => RiskSnapshot, portfolioId: string): Headroom =>
  (book, equity) => {
    let orderNotional = Infinity;
    let positionNotional = Infinity;
    for (const scope of scopesOf(portfolioId, book.strategyId, book.symbol)) {
      const limits = limitsIn(snapshot(), scope);
      if (limits.maxOrderNotional !== null)
        orderNotional = Math.min(orderNotional, limits.maxOrderNotional);
      if (limits.maxPositionNotional !== null)
        positionNotional = Math.min(positionNotional, limits.maxPositionNotional);
      if (limits.maxPositionShareOfEquity !== null)
        positionNotional = Math.min(positionNotional, limits.maxPositionShareOfEquity * equity);
    }
    // A hair under the limits: rounding must not push an order over them.
    return { orderNotional: orderNotional * 0.999, positionNotional: positionNotional * 0.999 };
  };

/**
 * A strategy's share of equity per book under an allocation: its weight split evenly over the
 * symbols it trades (its capital is weight × equity in all).
 */
export const bookAllocation = (
  allocation: AppliedAllocation,
  strategyId: string,
  symbols: number,
): number =>
  Object.hasOwn(allocation.weights, strategyId)
    ? (allocation.weights[strategyId] ?? 0) / Math.max(1, symbols)
    : 0;
