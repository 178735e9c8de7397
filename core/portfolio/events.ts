import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { DomainEvent } from '../decider.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { partySchema } from '../risk/common.js';
import { ALLOCATION_METHODS, type AllocationMethod } from './methods.js';
import { policySchema, type AllocationPolicy } from './policy.js';

/**
 * The events of a portfolio (`portfolio-<portfolioId>`, e.g. `portfolio-paper-1h`), one zod schema
 * per type shared by the decider, the read model and the process manager. Times are ISO strings.
 */

export const portfolioStream = (portfolioId: string): string => `portfolio-${portfolioId}`;

/** What made a proposal: the rebalance rules of capability 3, or a person. */
export const TRIGGER_TYPES = ['schedule', 'drift', 'membership', 'equity', 'manual'] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];

export interface Trigger extends JsonObject {
  type: TriggerType;
  /** One sentence with the figures, for people. */
  detail: string;
  /** The figures that fired it (drift per strategy, equity then and now, …). */
  figures: JsonObject;
}

/** How a proposal's weights came about: every input the method used. */
export interface ProposalInputs extends JsonObject {
  estimationDays: number;
  /** Window of the daily returns used (ISO dates), null without an estimate. */
  from: string | null;
  to: string | null;
  observations: number;
  /** By strategy; null when the method needed no estimate and none could be made. */
  volatilities: Record<string, number> | null;
  /** In `members` order; the Ledoit–Wolf covariance (annualized). */
  covariance: number[][] | null;
  shrinkage: number | null;
  expectedVolatility: number | null;
  riskContributions: Record<string, number> | null;
  /** Σ weights the method asked for before the constraints. */
  requestedTotal: number;
}

/** The portfolio when the proposal was made: equity and each member's net PnL so far. */
export interface Valuation extends JsonObject {
  equity: number;
  pnl: Record<string, number>;
  /** ISO instant of the valuation. */
  at: string;
}

type Ref = { portfolioId: string };
export type ProposedData = Ref & {
  proposalId: string;
  trigger: Trigger;
  method: AllocationMethod | 'manual';
  members: string[];
  weights: Record<string, number>;
  previousWeights: Record<string, number>;
  /** max |new − previous| over the members (percentage points as a fraction). */
  maxChange: number;
  inputs: ProposalInputs;
  valuation: Valuation;
  requiresApproval: boolean;
  /** The approval request opened for it (four eyes), when required. */
  requestId: string | null;
  proposedBy: Party;
  at: string;
};
export type AppliedData = Ref & {
  proposalId: string;
  weights: Record<string, number>;
  /** Target exposure (capital) per strategy: weight × equity at the valuation. */
  targets: Record<string, number>;
  valuation: Valuation;
  at: string;
};

export type PortfolioEvent =
  | DomainEvent<
      'PortfolioPolicySet',
      Ref & { policy: AllocationPolicy & JsonObject; version: number; by: Party; at: string }
    >
  | DomainEvent<'PortfolioMemberAdded', Ref & { strategyId: string; by: Party; at: string }>
  | DomainEvent<
      'PortfolioMemberRemoved',
      Ref & { strategyId: string; by: Party; reason: string; at: string }
    >
  | DomainEvent<'AllocationProposed', ProposedData & JsonObject>
  | DomainEvent<
      'AllocationProposalFailed',
      Ref & {
        proposalId: string;
        trigger: Trigger;
        method: AllocationMethod;
        code: string;
        reason: string;
        at: string;
      }
    >
  | DomainEvent<
      'AllocationApproved',
      Ref & {
        proposalId: string;
        authority: 'policy' | 'approval';
        requestId: string | null;
        approvers: Party[];
        at: string;
      }
    >
  | DomainEvent<'AllocationApplied', AppliedData & JsonObject>
  | DomainEvent<
      'AllocationRejected',
      Ref & {
        proposalId: string;
        outcome: 'rejected' | 'withdrawn' | 'expired';
        reason: string;
        at: string;
      }
    >;

const numbers = z.record(z.string(), z.number());
const triggerSchema = z.object({
  type: z.enum(TRIGGER_TYPES),
  detail: z.string(),
  figures: z.record(z.string(), z.json()),
});
const valuationSchema = z.object({ equity: z.number(), pnl: numbers, at: z.string() });
const ref = { portfolioId: z.string() };
const method = z.enum(ALLOCATION_METHODS);

export const portfolioEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('PortfolioPolicySet'),
    data: z.object({
      ...ref,
      policy: policySchema,
      version: z.number(),
      by: partySchema,
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('PortfolioMemberAdded'),
    data: z.object({ ...ref, strategyId: z.string(), by: partySchema, at: z.string() }),
  }),
  z.object({
    type: z.literal('PortfolioMemberRemoved'),
    data: z.object({
      ...ref,
      strategyId: z.string(),
      by: partySchema,
      reason: z.string(),
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('AllocationProposed'),
    data: z.object({
      ...ref,
      proposalId: z.string(),
      trigger: triggerSchema,
      method: z.union([method, z.literal('manual')]),
      members: z.array(z.string()),
      weights: numbers,
      previousWeights: numbers,
      maxChange: z.number(),
      inputs: z.object({
        estimationDays: z.number(),
        from: z.string().nullable(),
        to: z.string().nullable(),
        observations: z.number(),
        volatilities: numbers.nullable(),
        covariance: z.array(z.array(z.number())).nullable(),
        shrinkage: z.number().nullable(),
        expectedVolatility: z.number().nullable(),
        riskContributions: numbers.nullable(),
        requestedTotal: z.number(),
      }),
      valuation: valuationSchema,
      requiresApproval: z.boolean(),
      requestId: z.string().nullable(),
      proposedBy: partySchema,
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('AllocationProposalFailed'),
    data: z.object({
      ...ref,
      proposalId: z.string(),
      trigger: triggerSchema,
      method,
      code: z.string(),
      reason: z.string(),
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('AllocationApproved'),
    data: z.object({
      ...ref,
      proposalId: z.string(),
      authority: z.enum(['policy', 'approval']),
      requestId: z.string().nullable(),
      approvers: z.array(partySchema),
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('AllocationApplied'),
    data: z.object({
      ...ref,
      proposalId: z.string(),
      weights: numbers,
      targets: numbers,
      valuation: valuationSchema,
      at: z.string(),
    }),
  }),
  z.object({
    type: z.literal('AllocationRejected'),
    data: z.object({
      ...ref,
      proposalId: z.string(),
      outcome: z.enum(['rejected', 'withdrawn', 'expired']),
      reason: z.string(),
      at: z.string(),
    }),
  }),
]);
