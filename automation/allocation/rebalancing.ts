import { approvalStream, approvals, type Party } from '../../core/approvals/approval.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { isQcatError } from '../../core/errors.js';
import type { JsonObject, RecordedEvent } from '../../core/eventstore/event-store.js';
import { allocate } from '../../core/portfolio/allocate.js';
import { portfolioStream, type Trigger, type Valuation } from '../../core/portfolio/events.js';
import { portfolios, type PortfolioState } from '../../core/portfolio/portfolio.js';
import { portfolioValuedEvent } from '../../core/trading/accounting-events.js';
import { intent, type Intent, type ProcessManager } from '../process-manager.js';
import { rebalanceTrigger, type Cause } from './decide.js';

/**
 * Capability 3 (rebalancing) and the allocation's four-eyes bridge, as one process manager:
 *   - on a valuation, a membership change or the hourly tick it asks `rebalanceTrigger` whether a
 *     proposal is due; if so it computes one with the portfolio's policy (core/portfolio/allocate)
 *     and proposes it, or records the data problem as a failed proposal;
 *   - a proposal that needs a second person opens an `allocation_change` approval request, and the
 *     request's outcome approves or declines the proposal.
 * Turn it off per portfolio in the policy (`rebalance`: everyMs, driftBand, equityMove null,
 * onMembershipChange false). docs/portfolio.md.
 */

export const ALLOCATION_MANAGER = 'allocation';
const PARTY: Party = { id: 'automation:allocation', role: 'admin' };

/** What it reads besides streams (projections/allocation-queries.ts). */
export interface AllocationReads {
  valuation(portfolioId: string): Promise<Valuation | undefined>;
  dailyReturns(
    portfolioId: string,
    members: readonly string[],
    days: number,
    until: Date,
    bases: Readonly<Record<string, number>>,
  ): Promise<{ from: string | null; to: string | null; series: number[][] }>;
  portfolios(): Promise<{ portfolioId: string }[]>;
}

type Open = Extract<PortfolioState, { status: 'open' }>;

/** The request subject of a proposal: `<portfolioId>/<proposalId>` (neither holds a `/`). */
const subjectOf = (portfolioId: string, proposalId: string) => ({
  type: 'portfolio_allocation',
  id: `${portfolioId}/${proposalId}`,
});

/** Turns the trigger into a proposal (or a recorded failure) with every figure it used. */
export async function proposalIntent(
  reads: AllocationReads,
  state: Open,
  trigger: Trigger,
  valuation: Valuation | undefined,
  proposalId: string,
  now: Date,
  by: Party = PARTY,
): Promise<Intent> {
  const { portfolioId, policy, members } = state;
  const stream = portfolioStream(portfolioId);
  const at = now.toISOString();
  const fail = (code: string, reason: string): Intent =>
    intent(portfolios, stream, {
      type: 'RecordProposalFailure',
      portfolioId,
      proposalId,
      trigger,
      method: policy.method,
      code,
      reason,
      at,
    });
  if (!valuation || !(valuation.equity > 0))
    return fail(
      'NO_VALUATION',
      'the portfolio has not been valued yet (is its paper engine running?)',
    );
  const bases = Object.fromEntries(
    members.flatMap((id) => {
      const target = state.current?.targets[id] ?? 0;
      return target > 0 ? [[id, target]] : [];
    }),
  );
  const returns = await reads.dailyReturns(portfolioId, members, policy.estimationDays, now, bases);
  let result;
  try {
    result = allocate(policy, returns.series);
  } catch (error) {
    if (!isQcatError(error)) throw error;
    return fail(error.code, error.message);
  }
  if (!result.ok) return fail(result.code, result.reason);
  const byMember = (values: readonly number[] | null) =>
    values ? Object.fromEntries(members.map((id, i) => [id, values[i] ?? 0])) : null;
  return intent(portfolios, stream, {
    type: 'ProposeAllocation',
    portfolioId,
    proposalId,
    trigger,
    method: policy.method,
    weights: byMember(result.weights) ?? {},
    inputs: {
      estimationDays: policy.estimationDays,
      from: returns.from,
      to: returns.to,
      observations: result.observations,
      volatilities: byMember(result.volatilities),
      covariance: result.covariance,
      shrinkage: result.shrinkage,
      expectedVolatility: result.expectedVolatility,
      riskContributions: byMember(result.riskContributions),
      requestedTotal: result.requestedTotal,
    },
    valuation,
    by,
    at,
  });
}

const valuationOf = (event: RecordedEvent): { portfolioId: string; valuation: Valuation } => {
  const data = portfolioValuedEvent.parse(event);
  const pnl: Record<string, number> = {};
  for (const p of data.positions)
    pnl[p.strategyId] = (pnl[p.strategyId] ?? 0) + p.realizedPnl - p.feesPaid + p.unrealizedPnl;
  return {
    portfolioId: data.portfolioId,
    valuation: { equity: data.equity, pnl, at: new Date(data.time).toISOString() },
  };
};

interface AllocationDeps {
  commands: CommandHandler;
  reads: AllocationReads;
}

/** A proposal when `rebalanceTrigger` says one is due for the portfolio, else nothing. */
async function rebalance(
  { commands, reads }: AllocationDeps,
  portfolioId: string,
  cause: Cause,
  valuation: Valuation | undefined,
  now: Date,
  causeId: string,
): Promise<Intent[]> {
  const { state } = await commands.load(portfolios, portfolioStream(portfolioId));
  if (state.status !== 'open') return [];
  const trigger = rebalanceTrigger({ state, valuation, cause, now });
  if (!trigger) return [];
  const proposalId = `${trigger.type}-${causeId}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100);
  // Gated by the automation policy's `rebalance` switch; the approval bridge below is not.
  const proposal = await proposalIntent(reads, state, trigger, valuation, proposalId, now);
  return [{ ...proposal, capability: 'rebalance' }];
}

/** A member joined or left: a proposal if the policy rebalances on membership changes. */
async function onMembershipChange(
  deps: AllocationDeps,
  event: RecordedEvent,
  data: JsonObject,
): Promise<Intent[]> {
  const parsed = portfolios.parseEvent({ type: event.type, data });
  if (parsed.type !== 'PortfolioMemberAdded' && parsed.type !== 'PortfolioMemberRemoved') return [];
  const { portfolioId, strategyId } = parsed.data;
  const cause: Cause = {
    type: 'membership',
    strategyId,
    joined: parsed.type === 'PortfolioMemberAdded',
  };
  return rebalance(
    deps,
    portfolioId,
    cause,
    await deps.reads.valuation(portfolioId),
    event.recordedAt,
    event.eventId,
  );
}

/** A proposal that needs a second person opens an `allocation_change` approval request. */
function requestApproval(event: RecordedEvent, data: JsonObject): Intent[] {
  const parsed = portfolios.parseEvent({ type: event.type, data });
  if (parsed.type !== 'AllocationProposed' || !parsed.data.requestId) return [];
  const p = parsed.data;
  return [
    intent(approvals, approvalStream(parsed.data.requestId), {
      type: 'RequestApproval',
      requestId: parsed.data.requestId,
      kind: 'allocation_change',
      subject: subjectOf(p.portfolioId, p.proposalId),
      requester: p.proposedBy,
      payload: {
        portfolioId: p.portfolioId,
        proposalId: p.proposalId,
        method: p.method,
        weights: p.weights,
        previousWeights: p.previousWeights,
        maxChange: p.maxChange,
      },
      reason: `${p.trigger.type}: ${p.trigger.detail}`,
      now: event.recordedAt.toISOString(),
    }),
  ];
}

/** The outcome of an `allocation_change` request approves or declines its proposal. */
function onApprovalOutcome(event: RecordedEvent, data: JsonObject): Intent[] {
  const parsed = approvals.parseEvent({ type: event.type, data });
  if (parsed.type === 'ApprovalRequested' || parsed.type === 'ApprovalGranted') return [];
  if (parsed.data.kind !== 'allocation_change') return [];
  const slash = parsed.data.subject.id.indexOf('/');
  const portfolioId = parsed.data.subject.id.slice(0, slash);
  const proposalId = parsed.data.subject.id.slice(slash + 1);
  const stream = portfolioStream(portfolioId);
  const at = event.recordedAt.toISOString();
  if (parsed.type === 'ApprovalApproved')
    return [
      intent(portfolios, stream, {
        type: 'ApproveAllocation',
        portfolioId,
        proposalId,
        requestId: parsed.data.requestId,
        approvers: parsed.data.approvers,
        at,
      }),
    ];
  const outcome =
    parsed.type === 'ApprovalRejected'
      ? 'rejected'
      : parsed.type === 'ApprovalWithdrawn'
        ? 'withdrawn'
        : 'expired';
  const reason =
    parsed.type === 'ApprovalExpired'
      ? `the request expired at ${parsed.data.expiredAt}`
      : parsed.data.reason;
  return [
    intent(portfolios, stream, {
      type: 'DeclineAllocation',
      portfolioId,
      proposalId,
      outcome,
      reason,
      at,
    }),
  ];
}

export function allocationManager(deps: AllocationDeps): ProcessManager {
  const { reads } = deps;
  return {
    name: ALLOCATION_MANAGER,
    serves: ['rebalance'],
    handles: [
      'PortfolioValued',
      'PortfolioMemberAdded',
      'PortfolioMemberRemoved',
      'AllocationProposed',
      'ApprovalApproved',
      'ApprovalRejected',
      'ApprovalWithdrawn',
      'ApprovalExpired',
    ],
    tickMs: 60_000,

    async react(event) {
      const data = event.data as JsonObject;
      switch (event.type) {
        case 'PortfolioValued': {
          const { portfolioId, valuation } = valuationOf(event);
          return rebalance(
            deps,
            portfolioId,
            { type: 'valuation' },
            valuation,
            event.recordedAt,
            event.eventId,
          );
        }
        case 'PortfolioMemberAdded':
        case 'PortfolioMemberRemoved':
          return onMembershipChange(deps, event, data);
        case 'AllocationProposed':
          return requestApproval(event, data);
        default:
          return onApprovalOutcome(event, data);
      }
    },

    async tick(now) {
      const slot = now.toISOString().slice(0, 13);
      const intents: Intent[] = [];
      for (const { portfolioId } of await reads.portfolios())
        intents.push(
          ...(await rebalance(
            deps,
            portfolioId,
            { type: 'tick' },
            await reads.valuation(portfolioId),
            now,
            `tick-${slot}`,
          )),
        );
      return { slot, intents };
    },
  };
}
