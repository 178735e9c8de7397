import type { Trigger, Valuation } from '../../core/portfolio/events.js';
import type { PortfolioState } from '../../core/portfolio/portfolio.js';

/**
 * Capability 3, the decision: should the portfolio get a new allocation proposal now, and why?
 * Pure: the portfolio's state, its latest valuation, the cause and the time in; a trigger naming
 * its figures, or null, out. The rules, in order (docs/portfolio.md):
 *   - a proposal waits for its approval request: nothing (it decides first);
 *   - a strategy joined or left (and the policy rebalances on membership): `membership`;
 *   - members but no allocation yet: `membership` (the first one);
 *   - equity moved by more than `equityMove` since the allocation in force: `equity`;
 *   - a member's weight drifted more than `driftBand` from its target: `drift`;
 *   - `everyMs` passed since the last proposal: `schedule`.
 * Automatic causes (all but membership) wait COOLDOWN_MS after the last proposal, so a data
 * problem recorded as a failed proposal is not recorded again on every bar.
 */

export const COOLDOWN_MS = 3_600_000;

export type Cause =
  | { type: 'membership'; strategyId: string; joined: boolean }
  | { type: 'valuation' }
  | { type: 'tick' };

export type RebalanceInput = {
  state: PortfolioState;
  valuation: Valuation | undefined;
  cause: Cause;
  now: Date;
};

const round = (value: number): number => Number(value.toPrecision(6));

export function rebalanceTrigger({ state, valuation, cause, now }: RebalanceInput): Trigger | null {
  if (state.status !== 'open' || state.pending || state.members.length === 0) return null;
  const { rebalance } = state.policy;
  if (cause.type === 'membership') {
    if (!rebalance.onMembershipChange) return null;
    return {
      type: 'membership',
      detail: `strategy ${cause.strategyId} ${cause.joined ? 'joined' : 'left'} the portfolio`,
      figures: { strategyId: cause.strategyId, joined: cause.joined, members: state.members },
    };
  }
  const last = state.lastProposalAt ? Date.parse(state.lastProposalAt) : -Infinity;
  if (now.getTime() - last < COOLDOWN_MS) return null;
  const current = state.current;
  if (!current) {
    if (!rebalance.onMembershipChange) return null;
    return {
      type: 'membership',
      detail: `${state.members.length} member(s) and no allocation yet`,
      figures: { members: state.members },
    };
  }
  if (valuation && valuation.equity > 0) {
    const then = current.valuation.equity;
    const move = valuation.equity / then - 1;
    if (rebalance.equityMove !== null && Math.abs(move) > rebalance.equityMove)
      return {
        type: 'equity',
        detail: `equity moved ${(move * 100).toFixed(2)}% since the allocation in force (band ±${(rebalance.equityMove * 100).toFixed(2)}%)`,
        figures: {
          equityAtAllocation: then,
          equityNow: valuation.equity,
          move: round(move),
          band: rebalance.equityMove,
        },
      };
    if (rebalance.driftBand !== null) {
      const drift: Record<string, number> = {};
      let worst = { strategyId: '', drift: 0 };
      for (const id of state.members) {
        const weight = current.weights[id] ?? 0;
        const actual =
          (weight * then + (valuation.pnl[id] ?? 0) - (current.valuation.pnl[id] ?? 0)) /
          valuation.equity;
        drift[id] = round(actual - weight);
        if (Math.abs(actual - weight) > Math.abs(worst.drift))
          worst = { strategyId: id, drift: actual - weight };
      }
      if (Math.abs(worst.drift) > rebalance.driftBand)
        return {
          type: 'drift',
          detail: `${worst.strategyId} drifted ${(worst.drift * 100).toFixed(2)} pp from its target (band ${(rebalance.driftBand * 100).toFixed(2)} pp)`,
          figures: { drift, worst: worst.strategyId, band: rebalance.driftBand },
        };
    }
  }
  if (
    rebalance.everyMs !== null &&
    now.getTime() - Math.max(last, Date.parse(current.at)) >= rebalance.everyMs
  )
    return {
      type: 'schedule',
      detail: `the schedule (every ${(rebalance.everyMs / 3_600_000).toString()} h) came round`,
      figures: { everyMs: rebalance.everyMs, lastProposalAt: state.lastProposalAt },
    };
  return null;
}
