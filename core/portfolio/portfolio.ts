import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../approvals/approval.js';
import type { Decider } from '../decider.js';
import { QcatError, ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { remember, requireApproval, requireRiskActor } from '../risk/common.js';
import { checkConstraints, constraintBreach } from './constraints.js';
import {
  portfolioEventSchema,
  type AppliedData,
  type PortfolioEvent,
  type ProposalInputs,
  type ProposedData,
  type Trigger,
  type Valuation,
} from './events.js';
import type { AllocationMethod } from './methods.js';
import { policySchema, type AllocationPolicy } from './policy.js';

/**
 * A portfolio: its member strategies, its allocation policy and its allocations. A risk officer or
 * an admin sets the policy and the members; proposals come from the rebalancing process manager
 * (automation/allocation) or a person. A proposal that moves any weight by more than the policy's
 * approval threshold waits for a second person (an `allocation_change` approval request, four
 * eyes); a smaller one is approved by the policy itself and applied at once. The paper engine
 * sizes the members' orders from the applied weights. docs/portfolio.md.
 */

export type PortfolioCommand =
  | { type: 'SetPolicy'; portfolioId: string; policy: JsonObject; by: Party; at: string }
  | { type: 'AddMember'; portfolioId: string; strategyId: string; by: Party; at: string }
  | {
      type: 'RemoveMember';
      portfolioId: string;
      strategyId: string;
      reason: string;
      by: Party;
      at: string;
    }
  | {
      type: 'ProposeAllocation';
      portfolioId: string;
      proposalId: string;
      trigger: Trigger;
      method: AllocationMethod | 'manual';
      /** By strategy: every member, nothing else. */
      weights: Record<string, number>;
      inputs: ProposalInputs;
      valuation: Valuation;
      by: Party;
      at: string;
    }
  | {
      type: 'RecordProposalFailure';
      portfolioId: string;
      proposalId: string;
      trigger: Trigger;
      method: AllocationMethod;
      code: string;
      reason: string;
      at: string;
    }
  /** From the approval flow: the request of a pending proposal was approved. */
  | {
      type: 'ApproveAllocation';
      portfolioId: string;
      proposalId: string;
      requestId: string;
      approvers: Party[];
      at: string;
    }
  /** From the approval flow: the request ended otherwise. */
  | {
      type: 'DeclineAllocation';
      portfolioId: string;
      proposalId: string;
      outcome: 'rejected' | 'withdrawn' | 'expired';
      reason: string;
      at: string;
    };

export type PortfolioState =
  | { status: 'none' }
  | {
      status: 'open';
      portfolioId: string;
      policy: AllocationPolicy;
      policyVersion: number;
      members: string[];
      /** The allocation in force; null before the first. */
      current: AppliedData | null;
      /** A proposal waiting for its approval request. */
      pending: ProposedData | null;
      /** When the last proposal (or failure) was recorded: the schedule counts from it. */
      lastProposalAt: string | null;
      /** Ids of the last proposals (failed ones too): a replayed proposal writes nothing. */
      proposals: string[];
    };

type Open = Extract<PortfolioState, { status: 'open' }>;

/** Approval request ids are uuids: the request of a proposal is derived from its ids. */
const REQUEST_NAMESPACE = '6f1d2c8e-3a4b-4f5e-9c7d-8e9f0a1b2c3d';
export const allocationRequestId = (portfolioId: string, proposalId: string): string =>
  uuidv5(`${portfolioId}/${proposalId}`, REQUEST_NAMESPACE);

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};
const invalidField = (code: string, path: string, message: string): never => {
  throw new ValidationError(code, `${path}: ${message}`, { errors: [{ path, message }] });
};

const open = (state: PortfolioState, portfolioId: string): Open =>
  state.status === 'open'
    ? state
    : refuse('PORTFOLIO_NOT_FOUND', `portfolio ${portfolioId} has no allocation policy yet`);

/** The weights in force, 0 for a member without one. */
export const currentWeights = (state: Open): Record<string, number> =>
  Object.fromEntries(state.members.map((id) => [id, state.current?.weights[id] ?? 0]));

function checkProposal(
  state: Open,
  command: Extract<PortfolioCommand, { type: 'ProposeAllocation' }>,
) {
  for (const strategyId of Object.keys(command.weights))
    if (!state.members.includes(strategyId))
      invalidField(
        'STRATEGY_NOT_IN_PORTFOLIO',
        `weights.${strategyId}`,
        `strategy ${strategyId} is not a member of portfolio ${state.portfolioId}`,
      );
  for (const strategyId of state.members)
    if (!Object.hasOwn(command.weights, strategyId))
      invalidField(
        'WEIGHT_MISSING',
        `weights.${strategyId}`,
        'every member needs a weight (0 closes it)',
      );
  const weights = state.members.map((id) => command.weights[id] ?? 0);
  const breach = constraintBreach(weights, state.policy.constraints);
  if (breach) {
    const path = breach.field.replace(
      /^weights\[(\d+)\]$/,
      (_, i: string) => `weights.${state.members[Number(i)] ?? i}`,
    );
    invalidField('WEIGHTS_BREAK_CONSTRAINTS', path, breach.message);
  }
  if (!(command.valuation.equity > 0) || !Number.isFinite(command.valuation.equity))
    invalidField('INVALID_VALUATION', 'valuation.equity', 'must be a finite number > 0');
}

function applied(
  proposal: Pick<ProposedData, 'portfolioId' | 'proposalId' | 'weights' | 'valuation'>,
  at: string,
): PortfolioEvent {
  const targets = Object.fromEntries(
    Object.entries(proposal.weights).map(([id, weight]) => [
      id,
      weight * proposal.valuation.equity,
    ]),
  );
  return {
    type: 'AllocationApplied',
    data: {
      portfolioId: proposal.portfolioId,
      proposalId: proposal.proposalId,
      weights: proposal.weights,
      targets,
      valuation: proposal.valuation,
      at,
    },
  };
}

/** A valid policy whose constraints the members can meet; each one a new version. */
function setPolicy(
  command: Extract<PortfolioCommand, { type: 'SetPolicy' }>,
  state: PortfolioState,
): PortfolioEvent[] {
  requireRiskActor(command.by, 'set an allocation policy');
  const parsed = policySchema.safeParse(command.policy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = ['policy', ...(issue?.path ?? [])].join('.');
    return invalidField('INVALID_ALLOCATION_POLICY', path, issue?.message ?? 'is invalid');
  }
  const members = state.status === 'open' ? state.members.length : 0;
  checkConstraints(parsed.data.constraints, Math.max(members, 1));
  const version = state.status === 'open' ? state.policyVersion + 1 : 1;
  return [
    {
      type: 'PortfolioPolicySet',
      data: {
        portfolioId: command.portfolioId,
        policy: parsed.data,
        version,
        by: command.by,
        at: command.at,
      },
    },
  ];
}

/**
 * A proposal for the members of an open portfolio with none pending. It waits for an approval when
 * a weight moves by more than the policy's threshold; else it is approved by the policy and applied
 * at once.
 */
function propose(
  command: Extract<PortfolioCommand, { type: 'ProposeAllocation' }>,
  state: PortfolioState,
): PortfolioEvent[] {
  const portfolio = open(state, command.portfolioId);
  if (portfolio.proposals.includes(command.proposalId)) return [];
  if (portfolio.pending)
    refuse(
      'ALLOCATION_PROPOSAL_PENDING',
      `proposal ${portfolio.pending.proposalId} still waits for its approval request ${portfolio.pending.requestId ?? ''}`,
      { openRequestId: portfolio.pending.requestId },
    );
  checkProposal(portfolio, command);
  const previousWeights = currentWeights(portfolio);
  const maxChange = Math.max(
    0,
    ...portfolio.members.map((id) =>
      Math.abs((command.weights[id] ?? 0) - (previousWeights[id] ?? 0)),
    ),
  );
  const requiresApproval = maxChange > portfolio.policy.rebalance.approvalThreshold + 1e-12;
  const proposal: ProposedData = {
    portfolioId: command.portfolioId,
    proposalId: command.proposalId,
    trigger: command.trigger,
    method: command.method,
    members: portfolio.members,
    weights: command.weights,
    previousWeights,
    maxChange,
    inputs: command.inputs,
    valuation: command.valuation,
    requiresApproval,
    requestId: requiresApproval
      ? allocationRequestId(command.portfolioId, command.proposalId)
      : null,
    proposedBy: command.by,
    at: command.at,
  };
  const proposed: PortfolioEvent = { type: 'AllocationProposed', data: proposal };
  if (requiresApproval) return [proposed];
  return [
    proposed,
    {
      type: 'AllocationApproved',
      data: {
        portfolioId: command.portfolioId,
        proposalId: command.proposalId,
        authority: 'policy',
        requestId: null,
        approvers: [],
        at: command.at,
      },
    },
    applied(proposal, command.at),
  ];
}

export const portfolios: Decider<PortfolioState, PortfolioCommand, PortfolioEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'PortfolioPolicySet')
      return state.status === 'none'
        ? {
            status: 'open',
            portfolioId: event.data.portfolioId,
            policy: event.data.policy,
            policyVersion: event.data.version,
            members: [],
            current: null,
            pending: null,
            lastProposalAt: null,
            proposals: [],
          }
        : { ...state, policy: event.data.policy, policyVersion: event.data.version };
    if (state.status === 'none') return state;
    switch (event.type) {
      case 'PortfolioMemberAdded':
        return { ...state, members: [...state.members, event.data.strategyId] };
      case 'PortfolioMemberRemoved':
        return { ...state, members: state.members.filter((id) => id !== event.data.strategyId) };
      case 'AllocationProposed':
        return {
          ...state,
          pending: event.data.requiresApproval ? event.data : null,
          lastProposalAt: event.data.at,
          proposals: remember(state.proposals, event.data.proposalId),
        };
      case 'AllocationProposalFailed':
        return {
          ...state,
          lastProposalAt: event.data.at,
          proposals: remember(state.proposals, event.data.proposalId),
        };
      case 'AllocationApproved':
        return state;
      case 'AllocationApplied':
        return { ...state, current: event.data, pending: null };
      case 'AllocationRejected':
        return { ...state, pending: null };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'SetPolicy':
        return setPolicy(command, state);
      case 'AddMember': {
        const portfolio = open(state, command.portfolioId);
        requireRiskActor(command.by, 'change the members of a portfolio');
        if (portfolio.members.includes(command.strategyId)) return [];
        checkConstraints(portfolio.policy.constraints, portfolio.members.length + 1);
        const { portfolioId, strategyId, by, at } = command;
        return [{ type: 'PortfolioMemberAdded', data: { portfolioId, strategyId, by, at } }];
      }
      case 'RemoveMember': {
        const portfolio = open(state, command.portfolioId);
        requireRiskActor(command.by, 'change the members of a portfolio');
        if (!portfolio.members.includes(command.strategyId))
          return invalidField(
            'STRATEGY_NOT_IN_PORTFOLIO',
            'strategyId',
            `strategy ${command.strategyId} is not a member of portfolio ${command.portfolioId}`,
          );
        const { portfolioId, strategyId, by, reason, at } = command;
        return [
          { type: 'PortfolioMemberRemoved', data: { portfolioId, strategyId, by, reason, at } },
        ];
      }
      case 'ProposeAllocation':
        return propose(command, state);
      case 'RecordProposalFailure': {
        const portfolio = open(state, command.portfolioId);
        if (portfolio.proposals.includes(command.proposalId)) return [];
        const { type: _type, ...data } = command;
        return [{ type: 'AllocationProposalFailed', data }];
      }
      case 'ApproveAllocation': {
        const portfolio = open(state, command.portfolioId);
        const pending = portfolio.pending;
        // An outcome the portfolio no longer waits for (replayed, superseded) changes nothing.
        if (pending?.proposalId !== command.proposalId || pending.requestId !== command.requestId)
          return [];
        requireApproval('allocation_change', command.requestId, command.approvers);
        return [
          {
            type: 'AllocationApproved',
            data: {
              portfolioId: command.portfolioId,
              proposalId: command.proposalId,
              authority: 'approval',
              requestId: command.requestId,
              approvers: command.approvers,
              at: command.at,
            },
          },
          applied(pending, command.at),
        ];
      }
      case 'DeclineAllocation': {
        const portfolio = open(state, command.portfolioId);
        if (portfolio.pending?.proposalId !== command.proposalId) return [];
        const { type: _type, ...data } = command;
        return [{ type: 'AllocationRejected', data }];
      }
    }
  },

  parseEvent: (event) => portfolioEventSchema.parse(event),
};
