// Under 400 lines without comments (what the max-lines rule counts): the approval decider with
// its rules per kind.
import { z } from 'zod';
import { ROLES, type Role } from '../access/roles.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';

/**
 * Approval requests (four eyes), reused by every slice that needs one: a request has a kind, a
 * subject, a requester and a rule naming who may approve; it ends approved, rejected, expired or
 * withdrawn. The requester can never approve their own request.
 */

export const APPROVAL_KINDS = [
  'strategy_activation',
  'parameter_change',
  'risk_limit_change',
  'mode_change',
  'risk_reset',
  'allocation_change',
  'standing_approval',
  'strategy_retirement',
] as const;
export type ApprovalKind = (typeof APPROVAL_KINDS)[number];

export const APPROVAL_STATUSES = [
  'pending',
  'approved',
  'rejected',
  'withdrawn',
  'expired',
] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** Who acts: a principal (an API key: `apikey:<keyId>`, or `system:<process>`) in a role. */
export interface Party extends JsonObject {
  id: string;
  role: Role;
}

export interface ApprovalRule extends JsonObject {
  /** Distinct approvers needed, none of them the requester. */
  approvals: number;
  /** Roles whose holders may approve or reject. */
  eligibleRoles: Role[];
  /** Roles that must be among the approvers (each at least once). */
  mustInclude: Role[];
}

/**
 * The rule of each kind, copied into the request when it is made, so a later change of policy
 * never changes an open request. Promotion to live (a mode change) needs two distinct approvers,
 * one of them a risk officer. A risk-limit change and a risk reset need a risk officer other than
 * the requester.
 */
export const APPROVAL_RULES: Readonly<Record<ApprovalKind, ApprovalRule>> = {
  strategy_activation: { approvals: 1, eligibleRoles: ['risk_officer', 'admin'], mustInclude: [] },
  parameter_change: {
    approvals: 1,
    eligibleRoles: ['risk_officer', 'analyst', 'admin'],
    mustInclude: [],
  },
  risk_limit_change: {
    approvals: 1,
    eligibleRoles: ['risk_officer'],
    mustInclude: ['risk_officer'],
  },
  mode_change: {
    approvals: 2,
    eligibleRoles: ['risk_officer', 'admin', 'trader', 'analyst'],
    mustInclude: ['risk_officer'],
  },
  /** Loosens a risk trading state or releases the kill switch (core/risk). */
  risk_reset: { approvals: 1, eligibleRoles: ['risk_officer'], mustInclude: ['risk_officer'] },
  /** A portfolio allocation moving a weight by more than its policy's threshold (core/portfolio). */
  allocation_change: {
    approvals: 1,
    eligibleRoles: ['risk_officer', 'admin'],
    mustInclude: [],
  },
  /** Lets automation apply optimized parameters within bounds (core/optimization/policy.ts). */
  standing_approval: {
    approvals: 1,
    eligibleRoles: ['risk_officer'],
    mustInclude: ['risk_officer'],
  },
  /** Retiring a strategy that elimination (automation capability 7) proposes. */
  strategy_retirement: {
    approvals: 1,
    eligibleRoles: ['risk_officer', 'admin'],
    mustInclude: [],
  },
};

/** How long a request stays open before it expires. */
export const APPROVAL_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export interface Subject extends JsonObject {
  type: string;
  id: string;
}

/** Stream of one approval request: `approval-<requestId>`. */
export const approvalStream = (requestId: string): string => `approval-${requestId}`;

interface Outcome extends JsonObject {
  requestId: string;
  kind: ApprovalKind;
  subject: Subject;
}

export type ApprovalEvent =
  | DomainEvent<
      'ApprovalRequested',
      Outcome & {
        requester: Party;
        rule: ApprovalRule;
        payload: JsonObject;
        reason: string;
        requestedAt: string;
        expiresAt: string;
      }
    >
  | DomainEvent<'ApprovalGranted', { requestId: string; approver: Party; comment: string }>
  | DomainEvent<'ApprovalApproved', Outcome & { payload: JsonObject; approvers: Party[] }>
  | DomainEvent<'ApprovalRejected', Outcome & { by: Party; reason: string }>
  | DomainEvent<'ApprovalWithdrawn', Outcome & { by: Party; reason: string }>
  | DomainEvent<'ApprovalExpired', Outcome & { expiredAt: string }>;

export type ApprovalCommand =
  | {
      type: 'RequestApproval';
      requestId: string;
      kind: ApprovalKind;
      subject: Subject;
      requester: Party;
      payload: JsonObject;
      reason: string;
      now: string;
    }
  | { type: 'GrantApproval'; requestId: string; approver: Party; comment: string; now: string }
  | { type: 'RejectApproval'; requestId: string; by: Party; reason: string; now: string }
  | { type: 'WithdrawApproval'; requestId: string; by: Party; reason: string }
  | { type: 'ExpireApproval'; requestId: string; now: string };

export type ApprovalState =
  | { status: 'none' }
  | {
      status: ApprovalStatus;
      requestId: string;
      kind: ApprovalKind;
      subject: Subject;
      requester: Party;
      rule: ApprovalRule;
      payload: JsonObject;
      expiresAt: string;
      approvers: Party[];
    };

const role = z.enum(ROLES);
const party = z.object({ id: z.string(), role });
const subject = z.object({ type: z.string(), id: z.string() });
const kind = z.enum(APPROVAL_KINDS);
const outcome = { requestId: z.string(), kind, subject };
const json = z.record(z.string(), z.json());

const approvalEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ApprovalRequested'),
    data: z.object({
      ...outcome,
      requester: party,
      rule: z.object({
        approvals: z.number(),
        eligibleRoles: z.array(role),
        mustInclude: z.array(role),
      }),
      payload: json,
      reason: z.string(),
      requestedAt: z.string(),
      expiresAt: z.string(),
    }),
  }),
  z.object({
    type: z.literal('ApprovalGranted'),
    data: z.object({ requestId: z.string(), approver: party, comment: z.string() }),
  }),
  z.object({
    type: z.literal('ApprovalApproved'),
    data: z.object({ ...outcome, payload: json, approvers: z.array(party) }),
  }),
  z.object({
    type: z.literal('ApprovalRejected'),
    data: z.object({ ...outcome, by: party, reason: z.string() }),
  }),
  z.object({
    type: z.literal('ApprovalWithdrawn'),
    data: z.object({ ...outcome, by: party, reason: z.string() }),
  }),
  z.object({
    type: z.literal('ApprovalExpired'),
    data: z.object({ ...outcome, expiredAt: z.string() }),
  }),
]);

type Open = Exclude<ApprovalState, { status: 'none' }>;

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};

function pending(state: ApprovalState, requestId: string, now?: string): Open {
  if (state.status === 'none') refuse('APPROVAL_NOT_FOUND', `approval ${requestId} does not exist`);
  const open = state as Open;
  if (open.status !== 'pending') {
    refuse('APPROVAL_NOT_PENDING', `approval ${requestId} is already ${open.status}`, {
      currentState: open.status,
    });
  }
  if (now !== undefined && Date.parse(now) >= Date.parse(open.expiresAt)) {
    refuse('APPROVAL_EXPIRED', `approval ${requestId} expired at ${open.expiresAt}`);
  }
  return open;
}

/** Roles the rule still needs among the approvers. */
export function missingRoles(rule: ApprovalRule, approvers: readonly Party[]): Role[] {
  return rule.mustInclude.filter((needed) => !approvers.some((a) => a.role === needed));
}

/**
 * Why `who` may not approve this request now, or undefined when they may. Shared by the decider
 * and the approval queue, so the queue never offers what the decider would refuse.
 */
export function approvalBlocker(
  request: Pick<Open, 'requester' | 'rule' | 'approvers'>,
  who: Party,
): { code: string; message: string } | undefined {
  if (who.id === request.requester.id)
    return {
      code: 'SELF_APPROVAL_FORBIDDEN',
      message: 'four eyes: the requester cannot approve their own request',
    };
  if (request.approvers.some((a) => a.id === who.id))
    return { code: 'ALREADY_APPROVED', message: `${who.id} has already approved this request` };
  if (!request.rule.eligibleRoles.includes(who.role))
    return {
      code: 'APPROVER_ROLE_NOT_ELIGIBLE',
      message: `role ${who.role} may not approve this request; eligible: ${request.rule.eligibleRoles.join(', ')}`,
    };
  const missing = missingRoles(request.rule, request.approvers);
  const slotsLeft = request.rule.approvals - request.approvers.length;
  if (missing.length >= slotsLeft && !missing.includes(who.role))
    return {
      code: 'APPROVAL_NEEDS_ROLE',
      message: `the remaining approval must come from: ${missing.join(', ')}`,
    };
  return undefined;
}

/** One more approver; the last one needed (count and roles) approves the request. */
function grant(
  command: Extract<ApprovalCommand, { type: 'GrantApproval' }>,
  state: ApprovalState,
): ApprovalEvent[] {
  const open = pending(state, command.requestId, command.now);
  const blocker = approvalBlocker(open, command.approver);
  if (blocker) refuse(blocker.code, blocker.message);
  const approvers = [...open.approvers, command.approver];
  const granted: ApprovalEvent = {
    type: 'ApprovalGranted',
    data: { requestId: open.requestId, approver: command.approver, comment: command.comment },
  };
  const complete =
    approvers.length >= open.rule.approvals && missingRoles(open.rule, approvers).length === 0;
  if (!complete) return [granted];
  return [
    granted,
    {
      type: 'ApprovalApproved',
      data: {
        requestId: open.requestId,
        kind: open.kind,
        subject: open.subject,
        payload: open.payload,
        approvers,
      },
    },
  ];
}

/** An eligible approver other than the requester rejects the request. */
function reject(
  command: Extract<ApprovalCommand, { type: 'RejectApproval' }>,
  state: ApprovalState,
): ApprovalEvent[] {
  const open = pending(state, command.requestId, command.now);
  if (command.by.id === open.requester.id)
    refuse(
      'SELF_REJECTION_FORBIDDEN',
      'the requester withdraws their own request rather than rejecting it',
    );
  if (!open.rule.eligibleRoles.includes(command.by.role))
    refuse(
      'APPROVER_ROLE_NOT_ELIGIBLE',
      `role ${command.by.role} may not reject this request; eligible: ${open.rule.eligibleRoles.join(', ')}`,
    );
  return [
    {
      type: 'ApprovalRejected',
      data: {
        requestId: open.requestId,
        kind: open.kind,
        subject: open.subject,
        by: command.by,
        reason: command.reason,
      },
    },
  ];
}

export const approvals: Decider<ApprovalState, ApprovalCommand, ApprovalEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'ApprovalRequested':
        return {
          status: 'pending',
          requestId: event.data.requestId,
          kind: event.data.kind,
          subject: event.data.subject,
          requester: event.data.requester,
          rule: event.data.rule,
          payload: event.data.payload,
          expiresAt: event.data.expiresAt,
          approvers: [],
        };
      case 'ApprovalGranted':
        return state.status === 'none'
          ? state
          : { ...state, approvers: [...state.approvers, event.data.approver] };
      case 'ApprovalApproved':
        return state.status === 'none' ? state : { ...state, status: 'approved' };
      case 'ApprovalRejected':
        return state.status === 'none' ? state : { ...state, status: 'rejected' };
      case 'ApprovalWithdrawn':
        return state.status === 'none' ? state : { ...state, status: 'withdrawn' };
      case 'ApprovalExpired':
        return state.status === 'none' ? state : { ...state, status: 'expired' };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'RequestApproval': {
        // Re-requesting the same id (a process manager replaying) changes nothing.
        if (state.status !== 'none') return [];
        const rule = APPROVAL_RULES[command.kind];
        return [
          {
            type: 'ApprovalRequested',
            data: {
              requestId: command.requestId,
              kind: command.kind,
              subject: command.subject,
              requester: command.requester,
              rule,
              payload: command.payload,
              reason: command.reason,
              requestedAt: command.now,
              expiresAt: new Date(Date.parse(command.now) + APPROVAL_TTL_MS).toISOString(),
            },
          },
        ];
      }
      case 'GrantApproval':
        return grant(command, state);
      case 'RejectApproval':
        return reject(command, state);
      case 'WithdrawApproval': {
        if (state.status !== 'none' && state.status !== 'pending') return [];
        const open = pending(state, command.requestId);
        if (command.by.id !== open.requester.id && command.by.role !== 'admin')
          refuse('NOT_REQUESTER', 'only the requester (or an admin) can withdraw a request');
        return [
          {
            type: 'ApprovalWithdrawn',
            data: {
              requestId: open.requestId,
              kind: open.kind,
              subject: open.subject,
              by: command.by,
              reason: command.reason,
            },
          },
        ];
      }
      case 'ExpireApproval': {
        if (state.status !== 'pending') return [];
        if (Date.parse(command.now) < Date.parse(state.expiresAt))
          refuse('APPROVAL_NOT_DUE', `approval ${state.requestId} expires at ${state.expiresAt}`);
        return [
          {
            type: 'ApprovalExpired',
            data: {
              requestId: state.requestId,
              kind: state.kind,
              subject: state.subject,
              expiredAt: state.expiresAt,
            },
          },
        ];
      }
    }
  },

  parseEvent: (event) => approvalEvent.parse(event),
};
