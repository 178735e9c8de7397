import { z } from 'zod';
import { ROLES } from '../access/roles.js';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError, ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';

/**
 * The optimization policy (one stream): the standing approvals risk officers grant automation.
 * A standing approval lets a passing optimization's parameters apply to a strategy without a
 * second person, when every parameter stays within ± `maxRelativeChange` of its live value. It is
 * itself granted with four eyes: a risk officer requests it, another risk officer approves it
 * through an approval request (kind `standing_approval`); it ends when it expires or is revoked.
 *
 * The stream once held the adoption gate too (`AdoptionGateSet`): the gate's thresholds now live
 * in the automation policy only (capability 2), and those events are read but no longer in force.
 */

export const OPTIMIZATION_POLICY_STREAM = 'optimizationpolicy-global';

/** Bounds a risk officer may grant: at most ±50 % per parameter, for at most 90 days. */
export const MAX_RELATIVE_CHANGE = 0.5;
export const MAX_STANDING_DAYS = 90;
const DAY = 86_400_000;

export type StandingStatus = 'pending' | 'active' | 'declined' | 'revoked';

export interface StandingApproval extends JsonObject {
  standingApprovalId: string;
  /** The approval request that grants it (four eyes). */
  requestId: string;
  /** The strategy it covers; null: every strategy. */
  strategyId: string | null;
  /** Each numeric parameter may move at most this share of its live value (0.25 = ±25 %). */
  maxRelativeChange: number;
  expiresAt: string;
  requestedBy: Party;
  reason: string;
  status: StandingStatus;
  /** Who approved it, once active. */
  approvers: Party[];
  /** Why it was declined or revoked. */
  endedBecause: string | null;
}

interface Ref extends JsonObject {
  standingApprovalId: string;
  requestId: string;
}

export type OptimizationPolicyEvent =
  /** No longer written: the gate is capability 2's thresholds (see above). */
  | DomainEvent<'AdoptionGateSet', { gate: JsonObject; setBy: Party; reason: string }>
  | DomainEvent<
      'StandingApprovalRequested',
      Ref & {
        strategyId: string | null;
        maxRelativeChange: number;
        expiresAt: string;
        requestedBy: Party;
        reason: string;
        requestedAt: string;
      }
    >
  | DomainEvent<'StandingApprovalGranted', Ref & { approvers: Party[] }>
  | DomainEvent<
      'StandingApprovalDeclined',
      Ref & { outcome: 'rejected' | 'withdrawn' | 'expired'; reason: string }
    >
  | DomainEvent<'StandingApprovalRevoked', Ref & { by: Party; reason: string }>;

export type OptimizationPolicyCommand =
  | {
      type: 'RequestStandingApproval';
      standingApprovalId: string;
      requestId: string;
      strategyId: string | null;
      maxRelativeChange: number;
      expiresAt: string;
      by: Party;
      reason: string;
      now: string;
    }
  | { type: 'RevokeStandingApproval'; standingApprovalId: string; by: Party; reason: string }
  // From the approval request's outcome (automation/optimization/standing-approvals.ts):
  | {
      type: 'GrantStandingApproval';
      standingApprovalId: string;
      requestId: string;
      approvers: Party[];
    }
  | {
      type: 'DeclineStandingApproval';
      standingApprovalId: string;
      requestId: string;
      outcome: 'rejected' | 'withdrawn' | 'expired';
      reason: string;
    };

export interface OptimizationPolicy {
  standing: Record<string, StandingApproval>;
}

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const ref = { standingApprovalId: z.string(), requestId: z.string() };
const policyEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('AdoptionGateSet'),
    data: z.object({ gate: z.record(z.string(), z.json()), setBy: party, reason: z.string() }),
  }),
  z.object({
    type: z.literal('StandingApprovalRequested'),
    data: z.object({
      ...ref,
      strategyId: z.string().nullable(),
      maxRelativeChange: z.number(),
      expiresAt: z.string(),
      requestedBy: party,
      reason: z.string(),
      requestedAt: z.string(),
    }),
  }),
  z.object({
    type: z.literal('StandingApprovalGranted'),
    data: z.object({ ...ref, approvers: z.array(party) }),
  }),
  z.object({
    type: z.literal('StandingApprovalDeclined'),
    data: z.object({
      ...ref,
      outcome: z.enum(['rejected', 'withdrawn', 'expired']),
      reason: z.string(),
    }),
  }),
  z.object({
    type: z.literal('StandingApprovalRevoked'),
    data: z.object({ ...ref, by: party, reason: z.string() }),
  }),
]);

const invalid = (path: string, message: string): never => {
  throw new ValidationError('INVALID_STANDING_APPROVAL', `${path} ${message}`, {
    errors: [{ path, message }],
  });
};

const requireRisk = (by: Party, what: string): void => {
  if (by.role !== 'risk_officer' && by.role !== 'admin')
    throw new QcatError(
      'RISK_ROLE_REQUIRED',
      `only a risk officer or an admin may ${what}, not a ${by.role}`,
    );
};

function request(
  command: Extract<OptimizationPolicyCommand, { type: 'RequestStandingApproval' }>,
  policy: OptimizationPolicy,
): OptimizationPolicyEvent[] {
  requireRisk(command.by, 'request a standing approval');
  if (policy.standing[command.standingApprovalId])
    throw new QcatError(
      'STANDING_APPROVAL_EXISTS',
      `standing approval ${command.standingApprovalId} exists already`,
    );
  const change = command.maxRelativeChange;
  if (!(change > 0 && change <= MAX_RELATIVE_CHANGE))
    invalid('maxRelativeChange', `must be above 0 and at most ${MAX_RELATIVE_CHANGE}`);
  const now = Date.parse(command.now);
  const expires = Date.parse(command.expiresAt);
  if (!(expires > now)) invalid('expiresAt', 'must be in the future');
  if (expires - now > MAX_STANDING_DAYS * DAY)
    invalid('expiresAt', `must be at most ${MAX_STANDING_DAYS} days ahead`);
  if (command.reason.trim() === '') invalid('reason', 'must not be blank');
  return [
    {
      type: 'StandingApprovalRequested',
      data: {
        standingApprovalId: command.standingApprovalId,
        requestId: command.requestId,
        strategyId: command.strategyId,
        maxRelativeChange: change,
        expiresAt: new Date(expires).toISOString(),
        requestedBy: command.by,
        reason: command.reason,
        requestedAt: command.now,
      },
    },
  ];
}

function decide(
  command: OptimizationPolicyCommand,
  policy: OptimizationPolicy,
): OptimizationPolicyEvent[] {
  if (command.type === 'RequestStandingApproval') return request(command, policy);
  const standing = policy.standing[command.standingApprovalId];
  if (!standing)
    throw new QcatError(
      'STANDING_APPROVAL_NOT_FOUND',
      `standing approval ${command.standingApprovalId} does not exist`,
    );
  const ids = { standingApprovalId: standing.standingApprovalId, requestId: standing.requestId };
  switch (command.type) {
    case 'GrantStandingApproval':
      // An outcome of a request it no longer waits for (a replay) changes nothing.
      if (standing.status !== 'pending' || command.requestId !== standing.requestId) return [];
      return [{ type: 'StandingApprovalGranted', data: { ...ids, approvers: command.approvers } }];
    case 'DeclineStandingApproval':
      if (standing.status !== 'pending' || command.requestId !== standing.requestId) return [];
      return [
        {
          type: 'StandingApprovalDeclined',
          data: { ...ids, outcome: command.outcome, reason: command.reason },
        },
      ];
    case 'RevokeStandingApproval':
      requireRisk(command.by, 'revoke a standing approval');
      if (standing.status !== 'pending' && standing.status !== 'active')
        throw new QcatError(
          'STANDING_APPROVAL_ENDED',
          `standing approval ${standing.standingApprovalId} is ${standing.status} already`,
          { currentState: standing.status },
        );
      if (command.reason.trim() === '') invalid('reason', 'must not be blank');
      return [
        {
          type: 'StandingApprovalRevoked',
          data: { ...ids, by: command.by, reason: command.reason },
        },
      ];
  }
}

function evolve(policy: OptimizationPolicy, event: OptimizationPolicyEvent): OptimizationPolicy {
  if (event.type === 'AdoptionGateSet') return policy;
  if (event.type === 'StandingApprovalRequested') {
    const { requestedAt: _at, ...data } = event.data;
    return {
      standing: {
        ...policy.standing,
        [data.standingApprovalId]: {
          ...data,
          status: 'pending',
          approvers: [],
          endedBecause: null,
        },
      },
    };
  }
  const current = policy.standing[event.data.standingApprovalId];
  if (!current) return policy;
  const next: StandingApproval =
    event.type === 'StandingApprovalGranted'
      ? { ...current, status: 'active', approvers: event.data.approvers }
      : event.type === 'StandingApprovalDeclined'
        ? {
            ...current,
            status: 'declined',
            endedBecause: `${event.data.outcome}: ${event.data.reason}`,
          }
        : {
            ...current,
            status: 'revoked',
            endedBecause: `revoked by ${event.data.by.id}: ${event.data.reason}`,
          };
  return { standing: { ...policy.standing, [next.standingApprovalId]: next } };
}

export const optimizationPolicy: Decider<
  OptimizationPolicy,
  OptimizationPolicyCommand,
  OptimizationPolicyEvent
> = {
  initialState: () => ({ standing: {} }),
  evolve,
  decide,
  parseEvent: (event) => policyEvent.parse(event),
};

/**
 * The standing approval in force for `strategyId` at `now`: active, not expired, covering it;
 * one naming the strategy before one covering every strategy, then the latest to expire.
 */
export function standingApprovalFor(
  policy: OptimizationPolicy,
  strategyId: string,
  now: Date,
): StandingApproval | undefined {
  return Object.values(policy.standing)
    .filter(
      (s) =>
        s.status === 'active' &&
        Date.parse(s.expiresAt) > now.getTime() &&
        (s.strategyId === null || s.strategyId === strategyId),
    )
    .sort(
      (a, b) =>
        Number(b.strategyId !== null) - Number(a.strategyId !== null) ||
        Date.parse(b.expiresAt) - Date.parse(a.expiresAt),
    )[0];
}
