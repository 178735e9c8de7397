import { z } from 'zod';
import { ROLES, type Role } from '../access/roles.js';
import {
  APPROVAL_RULES,
  missingRoles,
  type ApprovalKind,
  type Party,
} from '../approvals/approval.js';
import { QcatError } from '../errors.js';

/**
 * What every risk module shares: scopes, trading states, stream ids and the approval check of
 * commands that carry an approved request. Every risk stream is in the `risk` category (the `risk`
 * WebSocket channel); times are epoch milliseconds, like the trading engine's.
 */

export const RISK_SCOPE_TYPES = ['portfolio', 'strategy', 'symbol'] as const;
export type RiskScopeType = (typeof RISK_SCOPE_TYPES)[number];
export type RiskScope = { type: RiskScopeType; id: string };

/** `<type>:<id>`: how scopes are keyed in snapshots and written in denial reasons. */
export const scopeKey = (scope: RiskScope): string => `${scope.type}:${scope.id}`;

/** ACTIVE: all orders; REDUCING: only orders that shrink a position; HALTED: only reduce-only ones. */
export const TRADING_STATES = ['ACTIVE', 'REDUCING', 'HALTED'] as const;
export type TradingState = (typeof TRADING_STATES)[number];

/** ACTIVE 0 < REDUCING 1 < HALTED 2. */
export const strictness = (state: TradingState): number => TRADING_STATES.indexOf(state);
/**
 * The base state after a TradingStateChanged: a person's change (`manual`) sets it; an automatic
 * one (`trigger`, `cooldown`, decided by an engine from a copy that may lag the log) never loosens
 * what is in force, so it cannot undo a risk officer's halt made in the meantime.
 */
export const foldedBase = (
  current: TradingState,
  change: { cause: 'trigger' | 'manual' | 'cooldown'; base: TradingState },
): TradingState => (change.cause === 'manual' ? change.base : stricter(current, change.base));

export const stricter = (a: TradingState, b: TradingState): TradingState =>
  strictness(a) >= strictness(b) ? a : b;

/** Streams. */
export const limitsStream = (scope: RiskScope): string => `risk-limits-${scope.type}-${scope.id}`;
export const tradingStateStream = (scope: RiskScope): string =>
  `risk-state-${scope.type}-${scope.id}`;
export const KILL_SWITCH_STREAM = 'risk-killswitch-global';
export const exitsStream = (portfolioId: string, strategyId: string, symbol: string): string =>
  `risk-exits-${portfolioId}-${strategyId}-${symbol}`;

/** Approval subjects (the `subject` of the approval request a risk command waits for). */
export const limitsSubject = (scope: RiskScope) => ({ type: 'risk_limits', id: scopeKey(scope) });
export const tradingStateSubject = (scope: RiskScope) => ({
  type: 'risk_state',
  id: scopeKey(scope),
});
export const KILL_SWITCH_SUBJECT = { type: 'risk_killswitch', id: 'global' } as const;

export const refuse = (
  code: string,
  message: string,
  details: Record<string, unknown> = {},
): never => {
  throw new QcatError(code, message, details);
};

/**
 * Refuses a command whose approvers do not satisfy the kind's rule (APPROVAL_RULES): the approvals
 * aggregate already enforced it, so this only guards against a command sent without one.
 */
export function requireApproval(kind: ApprovalKind, requestId: string, approvers: Party[]): void {
  const rule = APPROVAL_RULES[kind];
  const distinct = new Set(approvers.map((a) => a.id)).size;
  const eligible = approvers.every((a) => rule.eligibleRoles.includes(a.role));
  const missing = missingRoles(rule, approvers);
  if (requestId === '' || distinct < rule.approvals || !eligible || missing.length > 0)
    refuse(
      'APPROVAL_INCOMPLETE',
      `request ${requestId || '(none)'} is not an approved ${kind}: it needs ${rule.approvals.toString()} approver(s) among ${rule.eligibleRoles.join(', ')}${missing.length > 0 ? `, including ${missing.join(', ')}` : ''}`,
      { kind, requestId },
    );
}

/** Roles that may engage the kill switch and move a trading state by hand. */
export const RISK_ACTORS: readonly Role[] = ['risk_officer', 'admin'];

export function requireRiskActor(by: Party, action: string): void {
  if (!RISK_ACTORS.includes(by.role))
    refuse(
      'RISK_ROLE_REQUIRED',
      `only a risk officer or an admin may ${action}; ${by.id} is ${by.role}`,
      {
        role: by.role,
      },
    );
}

/** A number as written in reasons and events: 10 significant digits, no float dust. */
export const num = (value: number): number =>
  Number.isFinite(value) ? Number(value.toPrecision(10)) : value;

export const partySchema = z.object({ id: z.string(), role: z.enum(ROLES) });
export const scopeTypeSchema = z.enum(RISK_SCOPE_TYPES);
export const tradingStateSchema = z.enum(TRADING_STATES);

/** Keeps the last `max` ids of a list (idempotency memory of a stream). */
export const remember = (ids: readonly string[], id: string, max = 50): string[] =>
  [...ids, id].slice(-max);
