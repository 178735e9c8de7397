import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import { foldEvents, aggregateOf } from '../aggregates.js';
import type { Party } from '../approvals/approval.js';
import { ValidationError } from '../errors.js';
import type { RecordedEvent } from '../eventstore/event-store.js';
import type { PortfolioEvent, ProposalInputs, Trigger } from './events.js';
import { allocationRequestId, portfolios, type PortfolioCommand } from './portfolio.js';
import { defaultPolicy } from './policy.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const trader: Party = { id: 'apikey:trader1', role: 'trader' };
const AT = '2026-01-05T00:00:00.000Z';
const P = 'paper-1h';

const policySet: PortfolioEvent = {
  type: 'PortfolioPolicySet',
  data: { portfolioId: P, policy: defaultPolicy(), version: 1, by: risk, at: AT },
};
const member = (strategyId: string): PortfolioEvent => ({
  type: 'PortfolioMemberAdded',
  data: { portfolioId: P, strategyId, by: risk, at: AT },
});
const trigger: Trigger = { type: 'manual', detail: 'asked by a person', figures: {} };
const inputs: ProposalInputs = {
  estimationDays: 60,
  from: null,
  to: null,
  observations: 0,
  volatilities: null,
  covariance: null,
  shrinkage: null,
  expectedVolatility: null,
  riskContributions: null,
  requestedTotal: 0.95,
};
const valuation = { equity: 100_000, pnl: { s1: 0, s2: 0 }, at: AT };
const propose = (
  weights: Record<string, number>,
  proposalId = 'p1',
): Extract<PortfolioCommand, { type: 'ProposeAllocation' }> => ({
  type: 'ProposeAllocation',
  portfolioId: P,
  proposalId,
  trigger,
  method: 'manual',
  weights,
  inputs,
  valuation,
  by: risk,
  at: AT,
});
const base = [policySet, member('s1'), member('s2')];

describe('portfolio aggregate', () => {
  it('a risk officer sets the policy (defaults filled in); a trader may not', () => {
    given(portfolios, [])
      .when({ type: 'SetPolicy', portfolioId: P, policy: {}, by: risk, at: AT })
      .then([policySet]);
    given(portfolios, [])
      .when({ type: 'SetPolicy', portfolioId: P, policy: {}, by: trader, at: AT })
      .thenRefuses('RISK_ROLE_REQUIRED');
  });

  it('a volatility target of zero is refused, naming the field', () => {
    const error = given(portfolios, [])
      .when({
        type: 'SetPolicy',
        portfolioId: P,
        policy: { method: 'volatility_target', targetVolatility: 0 },
        by: risk,
        at: AT,
      })
      .thenRefuses('INVALID_ALLOCATION_POLICY', /policy\.targetVolatility/);
    expect(error).toBeInstanceOf(ValidationError);
  });

  it('a small change is approved by the policy and applied at once, with target exposures', () => {
    const events = given(portfolios, base)
      .when(propose({ s1: 0.02, s2: 0.03 }))
      .then([
        expect.objectContaining({ type: 'AllocationProposed' }) as PortfolioEvent,
        {
          type: 'AllocationApproved',
          data: {
            portfolioId: P,
            proposalId: 'p1',
            authority: 'policy',
            requestId: null,
            approvers: [],
            at: AT,
          },
        },
        {
          type: 'AllocationApplied',
          data: {
            portfolioId: P,
            proposalId: 'p1',
            weights: { s1: 0.02, s2: 0.03 },
            targets: { s1: 2000, s2: 3000 },
            valuation,
            at: AT,
          },
        },
      ]);
    expect(events[0]?.data).toMatchObject({ requiresApproval: false, maxChange: 0.03 });
  });

  it('a change above the threshold waits for four eyes; the approval applies it', () => {
    const [proposed] = given(portfolios, base)
      .when(propose({ s1: 0.2, s2: 0.1 }))
      .then([expect.objectContaining({ type: 'AllocationProposed' }) as PortfolioEvent]);
    if (proposed?.type !== 'AllocationProposed') throw new Error('no proposal');
    expect(proposed.data).toMatchObject({
      requiresApproval: true,
      requestId: allocationRequestId(P, 'p1'),
      previousWeights: { s1: 0, s2: 0 },
      maxChange: 0.2,
    });
    const waiting = [...base, proposed];
    given(portfolios, waiting)
      .when(propose({ s1: 0.1, s2: 0.1 }, 'p2'))
      .thenRefuses('ALLOCATION_PROPOSAL_PENDING');
    const approve: PortfolioCommand = {
      type: 'ApproveAllocation',
      portfolioId: P,
      proposalId: 'p1',
      requestId: allocationRequestId(P, 'p1'),
      approvers: [risk2],
      at: AT,
    };
    const applied = given(portfolios, waiting)
      .when(approve)
      .then([
        expect.objectContaining({ type: 'AllocationApproved' }) as PortfolioEvent,
        expect.objectContaining({ type: 'AllocationApplied' }) as PortfolioEvent,
      ]);
    expect(applied[0]?.data).toMatchObject({ authority: 'approval', approvers: [risk2] });
    // Replayed by the flow: nothing new.
    given(portfolios, [...waiting, ...applied])
      .when(approve)
      .then([]);
    given(portfolios, waiting)
      .when({ ...approve, approvers: [] })
      .thenRefuses('APPROVAL_INCOMPLETE');
  });

  it('a rejected request leaves the allocation as it was', () => {
    const [proposed] = given(portfolios, base)
      .when(propose({ s1: 0.2, s2: 0.1 }))
      .then([expect.objectContaining({ type: 'AllocationProposed' }) as PortfolioEvent]);
    if (!proposed) throw new Error('no proposal');
    const decline = {
      type: 'DeclineAllocation',
      portfolioId: P,
      proposalId: 'p1',
      outcome: 'rejected',
      reason: 'too concentrated',
      at: AT,
    } as const;
    const [rejected] = given(portfolios, [...base, proposed])
      .when(decline)
      .then([
        {
          type: 'AllocationRejected',
          data: {
            portfolioId: P,
            proposalId: 'p1',
            outcome: 'rejected',
            reason: 'too concentrated',
            at: AT,
          },
        },
      ]);
    if (!rejected) throw new Error('not rejected');
    const state = given(portfolios, [...base, proposed, rejected]).state;
    expect(state.status === 'open' && [state.pending, state.current]).toEqual([null, null]);
  });

  it('bad weights: a specific refusal naming the field, nothing applied', () => {
    given(portfolios, base)
      .when(propose({ s1: 0.1, s2: 0.1, s3: 0.1 }))
      .thenRefuses('STRATEGY_NOT_IN_PORTFOLIO', /weights\.s3/);
    given(portfolios, base)
      .when(propose({ s1: 0.1 }))
      .thenRefuses('WEIGHT_MISSING', /weights\.s2/);
    given(portfolios, base)
      .when(propose({ s1: 0.3, s2: 0.1 }))
      .thenRefuses('WEIGHTS_BREAK_CONSTRAINTS', /weights\.s1: exceeds maxWeight 0\.2/);
    given(portfolios, [policySet])
      .when({
        type: 'RemoveMember',
        portfolioId: P,
        strategyId: 'x',
        reason: 'r',
        by: risk,
        at: AT,
      })
      .thenRefuses('STRATEGY_NOT_IN_PORTFOLIO', /strategyId/);
  });

  it('a data problem is recorded as a failed proposal, once', () => {
    const command = {
      type: 'RecordProposalFailure',
      portfolioId: P,
      proposalId: 'f1',
      trigger,
      method: 'risk_parity',
      code: 'SINGULAR_COVARIANCE',
      reason: 'no strategy moved',
      at: AT,
    } as const;
    const [failed] = given(portfolios, base)
      .when(command)
      .then([
        {
          type: 'AllocationProposalFailed',
          data: {
            portfolioId: P,
            proposalId: 'f1',
            trigger,
            method: 'risk_parity',
            code: 'SINGULAR_COVARIANCE',
            reason: 'no strategy moved',
            at: AT,
          },
        },
      ]);
    given(portfolios, [...base, failed as PortfolioEvent])
      .when(command)
      .then([]);
  });

  it('is registered for the audit: readable as of any instant', () => {
    const events = [...base];
    const recorded: RecordedEvent[] = events.map((event, index) => ({
      eventId: `00000000-0000-4000-8000-${index.toString().padStart(12, '0')}`,
      type: event.type,
      data: event.data,
      metadata: { actor: 'u' },
      streamId: `portfolio-${P}`,
      revision: BigInt(index),
      position: BigInt(index + 1),
      recordedAt: new Date(AT),
      hash: '0'.repeat(64),
    }));
    const aggregate = aggregateOf(`portfolio-${P}`);
    if (!aggregate) throw new Error('portfolio is not registered in core/aggregates.ts');
    expect(foldEvents(aggregate, recorded)).toMatchObject({ members: ['s1', 's2'] });
  });
});
