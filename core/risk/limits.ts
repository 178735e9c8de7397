import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { amountSchema } from '../domain-bounds.js';
import { ValidationError } from '../errors.js';
import { RECENT_ORDERS_KEPT } from '../trading/stepper.js';
import {
  RISK_SCOPE_TYPES,
  partySchema,
  refuse,
  remember,
  requireApproval,
  requireRiskActor,
  scopeTypeSchema,
  type RiskScope,
  type RiskScopeType,
} from './common.js';

/**
 * Risk limits, one aggregate per scope: `risk-limits-portfolio-<portfolioId>`,
 * `risk-limits-strategy-<strategyId>`, `risk-limits-symbol-<symbol>`. A scope without a stream has
 * the defaults of its type. Limits are set once (`LimitsSet`, at most as loose as the defaults);
 * every later change comes from an approved `risk_limit_change` request (`LimitsChanged`).
 * `null` means "no limit". What each limit measures at each scope: docs/risk.md.
 */

export type OrderRateLimit = {
  /** Orders (that passed the check) allowed within the window, 1..RECENT_ORDERS_KEPT. */
  maxOrders: number;
  windowMs: number;
};

export type PriceBreakerLimit = {
  /** Largest move allowed within the window, as a fraction (0.1 = 10%). */
  maxMove: number;
  windowMs: number;
  /** How long the symbol stays HALTED once the breaker fired. */
  cooldownMs: number;
};

export type RiskLimits = {
  /** Quote currency; per order. */
  maxOrderNotional: number | null;
  /** Quote currency; of one position (see docs/risk.md for what a position is at each scope). */
  maxPositionNotional: number | null;
  /** Fraction of the portfolio's equity one position may be worth. */
  maxPositionShareOfEquity: number | null;
  /** Quote currency; Σ |quantity| × mark over the scope's books. */
  maxGrossExposure: number | null;
  /** Gross exposure of the scope / the portfolio's equity. */
  maxLeverage: number | null;
  orderRate: OrderRateLimit | null;
  /** Fraction of the UTC day's opening equity (portfolio and strategy scopes). */
  dailyLossLimit: number | null;
  /** Fraction below the equity high-water mark (portfolio and strategy scopes). */
  maxDrawdown: number | null;
  /** Symbol scope only. */
  priceBreaker: PriceBreakerLimit | null;
};

export type LimitName = keyof RiskLimits;
export type LimitChanges = Partial<RiskLimits>;

const NONE: RiskLimits = {
  maxOrderNotional: null,
  maxPositionNotional: null,
  maxPositionShareOfEquity: null,
  maxGrossExposure: null,
  maxLeverage: null,
  orderRate: null,
  dailyLossLimit: null,
  maxDrawdown: null,
  priceBreaker: null,
};

export const LIMIT_NAMES = Object.keys(NONE) as LimitName[];

/** The limits of a scope that has never been set. */
export const DEFAULT_LIMITS: Readonly<Record<RiskScopeType, Readonly<RiskLimits>>> = {
  portfolio: {
    ...NONE,
    maxPositionShareOfEquity: 0.2,
    maxLeverage: 10,
    dailyLossLimit: 0.05,
    maxDrawdown: 0.15,
  },
  strategy: { ...NONE, maxDrawdown: 0.1 },
  symbol: { ...NONE, priceBreaker: { maxMove: 0.1, windowMs: 3_600_000, cooldownMs: 3_600_000 } },
};

/** The scopes at which each limit can be set. */
export const LIMIT_SCOPES: Readonly<Record<LimitName, readonly RiskScopeType[]>> = {
  maxOrderNotional: RISK_SCOPE_TYPES,
  maxPositionNotional: RISK_SCOPE_TYPES,
  maxPositionShareOfEquity: RISK_SCOPE_TYPES,
  maxGrossExposure: RISK_SCOPE_TYPES,
  maxLeverage: RISK_SCOPE_TYPES,
  orderRate: RISK_SCOPE_TYPES,
  dailyLossLimit: ['portfolio', 'strategy'],
  maxDrawdown: ['portfolio', 'strategy'],
  priceBreaker: ['symbol'],
};

const fraction = z.number().positive().max(1);
const duration = z.number().int().positive();
const orderRateSchema = z.strictObject({
  maxOrders: z.number().int().min(1).max(RECENT_ORDERS_KEPT),
  windowMs: duration,
});
const priceBreakerSchema = z.strictObject({
  maxMove: fraction,
  windowMs: duration,
  cooldownMs: duration,
});
/** The limits, with notionals and other amounts checked by `positive`. */
const limitsShape = (positive: z.ZodNumber) => ({
  maxOrderNotional: positive.nullable(),
  maxPositionNotional: positive.nullable(),
  maxPositionShareOfEquity: positive.max(100).nullable(),
  maxGrossExposure: positive.nullable(),
  maxLeverage: positive.max(1000).nullable(),
  orderRate: orderRateSchema.nullable(),
  dailyLossLimit: fraction.nullable(),
  maxDrawdown: fraction.nullable(),
  priceBreaker: priceBreakerSchema.nullable(),
});
/** New limits: amounts in the domain's sane range (core/domain-bounds.ts, ADR 011). */
const changesSchema = z.strictObject(limitsShape(amountSchema)).partial();
/** Recorded limits are read as they were accepted then, so an older event always folds. */
const limitsSchema = z.object(limitsShape(z.number().positive()));

/**
 * Checks changes to a scope's limits: known names, values in range (fractions in (0, 1], orderRate
 * maxOrders ≤ RECENT_ORDERS_KEPT), only limits the scope type has. Throws ValidationError
 * `INVALID_LIMITS` or `LIMIT_NOT_APPLICABLE`. The API calls it before it opens an approval request.
 */
export function validateLimitChanges(scopeType: RiskScopeType, changes: unknown): LimitChanges {
  const parsed = changesSchema.safeParse(changes);
  if (!parsed.success)
    throw new ValidationError(
      'INVALID_LIMITS',
      parsed.error.issues
        .map((issue) => `${issue.path.join('.') || 'limits'}: ${issue.message}`)
        .join('; '),
    );
  const result = parsed.data as LimitChanges;
  for (const name of Object.keys(result) as LimitName[]) {
    if (!LIMIT_SCOPES[name].includes(scopeType))
      throw new ValidationError(
        'LIMIT_NOT_APPLICABLE',
        `${name} cannot be set on a ${scopeType}; it applies to: ${LIMIT_SCOPES[name].join(', ')}`,
      );
  }
  if (Object.keys(result).length === 0)
    throw new ValidationError('INVALID_LIMITS', 'no limit to change');
  return result;
}

/** Whether `value` is at least as strict as `reference` (null: no limit, the loosest). */
export function atLeastAsStrict(name: LimitName, value: unknown, reference: unknown): boolean {
  if (reference === null) return true;
  if (value === null) return false;
  if (name === 'orderRate') {
    const [v, r] = [value as OrderRateLimit, reference as OrderRateLimit];
    return v.maxOrders <= r.maxOrders && v.windowMs >= r.windowMs;
  }
  if (name === 'priceBreaker') {
    const [v, r] = [value as PriceBreakerLimit, reference as PriceBreakerLimit];
    return v.maxMove <= r.maxMove && v.windowMs >= r.windowMs && v.cooldownMs >= r.cooldownMs;
  }
  return (value as number) <= (reference as number);
}

const merge = (limits: RiskLimits, changes: LimitChanges): RiskLimits => {
  const next = { ...limits };
  for (const name of Object.keys(changes) as LimitName[]) {
    Object.assign(next, { [name]: changes[name] ?? null });
  }
  return next;
};

// ---------------------------------------------------------------------------------------------
// The decider.

type ScopeRef = { scopeType: RiskScopeType; scopeId: string };

export type LimitsEvent =
  | DomainEvent<'LimitsSet', ScopeRef & { limits: RiskLimits; by: Party; time: number }>
  | DomainEvent<
      'LimitsChanged',
      ScopeRef & {
        requestId: string;
        approvers: Party[];
        /** The changed limits: new values, and what they were. */
        changes: LimitChanges;
        previous: LimitChanges;
        /** All limits after the change. */
        limits: RiskLimits;
        time: number;
      }
    >;

export type LimitsCommand =
  | {
      type: 'SetLimits';
      scope: RiskScope;
      /** Limits to set instead of the defaults: each at least as strict as its default. */
      limits?: LimitChanges;
      by: Party;
      time: number;
    }
  | {
      /** From an approved `risk_limit_change` request (payload `{ changes }`). */
      type: 'ApplyApprovedLimitChange';
      scope: RiskScope;
      requestId: string;
      approvers: Party[];
      changes: LimitChanges;
      time: number;
    };

export type LimitsState =
  | { status: 'none' }
  | {
      status: 'set';
      scopeType: RiskScopeType;
      scopeId: string;
      limits: RiskLimits;
      /** Requests already applied (the last 50), so a repeated command writes nothing. */
      appliedRequests: string[];
      updatedAt: number;
    };

/** The limits in force: the set ones, or the defaults of the scope type. */
export const limitsOf = (state: LimitsState, scopeType: RiskScopeType): RiskLimits =>
  state.status === 'set' ? state.limits : { ...DEFAULT_LIMITS[scopeType] };

const limitsData = limitsSchema;
const changesData = z.object(limitsShape).partial();
const scopeRef = { scopeType: scopeTypeSchema, scopeId: z.string() };

export const limitsEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('LimitsSet'),
    data: z.object({ ...scopeRef, limits: limitsData, by: partySchema, time: z.number() }),
  }),
  z.object({
    type: z.literal('LimitsChanged'),
    data: z.object({
      ...scopeRef,
      requestId: z.string(),
      approvers: z.array(partySchema),
      changes: changesData,
      previous: changesData,
      limits: limitsData,
      time: z.number(),
    }),
  }),
]);

function checkScope(scope: RiskScope): void {
  if (!RISK_SCOPE_TYPES.includes(scope.type) || scope.id === '')
    refuse('INVALID_SCOPE', `a risk scope is portfolio, strategy or symbol with an id`);
}

export const limits: Decider<LimitsState, LimitsCommand, LimitsEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    const { scopeType, scopeId, limits: next, time } = event.data;
    const applied = state.status === 'set' ? state.appliedRequests : [];
    return {
      status: 'set',
      scopeType,
      scopeId,
      limits: next,
      appliedRequests:
        event.type === 'LimitsChanged' ? remember(applied, event.data.requestId) : applied,
      updatedAt: time,
    };
  },

  decide: (command, state) => {
    const { scope, time } = command;
    checkScope(scope);
    const scopeRef = { scopeType: scope.type, scopeId: scope.id };
    switch (command.type) {
      case 'SetLimits': {
        requireRiskActor(command.by, 'set risk limits');
        const defaults = DEFAULT_LIMITS[scope.type];
        const given = command.limits ?? {};
        const chosen = Object.keys(given).length > 0 ? validateLimitChanges(scope.type, given) : {};
        for (const name of Object.keys(chosen) as LimitName[]) {
          if (!atLeastAsStrict(name, chosen[name], defaults[name]))
            refuse(
              'LIMIT_LOOSER_THAN_DEFAULT',
              `${name} would be looser than its default: loosen a limit through a risk_limit_change approval`,
              { limit: name },
            );
        }
        const next = merge({ ...defaults }, chosen);
        if (state.status === 'set') {
          if (JSON.stringify(state.limits) === JSON.stringify(next)) return [];
          refuse(
            'LIMITS_ALREADY_SET',
            `the limits of ${scope.type} ${scope.id} are set; change them through a risk_limit_change approval`,
          );
        }
        return [{ type: 'LimitsSet', data: { ...scopeRef, limits: next, by: command.by, time } }];
      }
      case 'ApplyApprovedLimitChange': {
        const { requestId, approvers } = command;
        if (state.status === 'set' && state.appliedRequests.includes(requestId)) return [];
        requireApproval('risk_limit_change', requestId, approvers);
        const changes = validateLimitChanges(scope.type, command.changes);
        const current = limitsOf(state, scope.type);
        const previous: LimitChanges = {};
        for (const name of Object.keys(changes) as LimitName[]) {
          Object.assign(previous, { [name]: current[name] });
        }
        return [
          {
            type: 'LimitsChanged',
            data: {
              ...scopeRef,
              requestId,
              approvers,
              changes,
              previous,
              limits: merge(current, changes),
              time,
            },
          },
        ];
      }
    }
  },

  parseEvent: (event) => limitsEventSchema.parse(event),
};
