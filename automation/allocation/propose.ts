import type { Party } from '../../core/approvals/approval.js';
import { ValidationError } from '../../core/errors.js';
import { portfolioStream, type Trigger, type Valuation } from '../../core/portfolio/events.js';
import { portfolios, type PortfolioState } from '../../core/portfolio/portfolio.js';
import { intent, type Intent } from '../process-manager.js';
import { proposalIntent, type AllocationReads } from './rebalancing.js';

/**
 * A proposal a person asks for (`POST /api/v1/portfolios/{id}/allocation/proposals`,
 * `qcat portfolio propose`): the weights given (method `manual`), or computed with the policy's
 * method like the rebalancing process manager's. The caller issues the intent.
 */
export interface ManualProposal {
  portfolioId: string;
  proposalId: string;
  /** By strategy; omitted: computed. */
  weights?: Record<string, number> | undefined;
  reason: string;
  by: Party;
  now: Date;
}

/** The portfolio has no policy (never set): what the caller reports as not found. */
export class PortfolioNotFound extends Error {
  constructor(readonly portfolioId: string) {
    super(`portfolio ${portfolioId} has no allocation policy`);
  }
}

/** The portfolio was never valued: fixed weights have nothing to be measured against. */
export class PortfolioNotValued extends Error {
  constructor(readonly portfolioId: string) {
    super(`portfolio ${portfolioId} has not been valued yet`);
  }
}

export async function manualProposal(
  reads: AllocationReads,
  state: PortfolioState,
  request: ManualProposal,
): Promise<Intent> {
  const { portfolioId, proposalId, weights, by, now } = request;
  if (state.status !== 'open') throw new PortfolioNotFound(portfolioId);
  const trigger: Trigger = { type: 'manual', detail: request.reason, figures: { by: by.id } };
  const valuation: Valuation | undefined = await reads.valuation(portfolioId);
  if (weights === undefined)
    return proposalIntent(reads, state, trigger, valuation, proposalId, now, by);
  if (!valuation) throw new PortfolioNotValued(portfolioId);
  for (const [id, weight] of Object.entries(weights))
    if (!(weight >= 0 && weight <= 1))
      throw new ValidationError('INVALID_WEIGHT', `weights.${id}: must be from 0 to 1`);
  return intent(portfolios, portfolioStream(portfolioId), {
    type: 'ProposeAllocation',
    portfolioId,
    proposalId,
    trigger,
    method: 'manual',
    weights,
    inputs: {
      estimationDays: 0,
      from: null,
      to: null,
      observations: 0,
      volatilities: null,
      covariance: null,
      shrinkage: null,
      expectedVolatility: null,
      riskContributions: null,
      requestedTotal: Object.values(weights).reduce((s, w) => s + w, 0),
    },
    valuation,
    by,
    at: now.toISOString(),
  });
}
