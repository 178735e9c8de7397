import { z } from 'zod';
import {
  RISK_SCOPE_TYPES,
  scopeKey,
  TRADING_STATES,
  type RiskScope,
} from '../../../core/risk/common.js';
import { RISK_RULES, TRIGGER_ACTIONS, type Temporary } from '../../../core/risk/trading-state.js';
import { commandResultSchema, pageLimit, positionCursor, positionString } from '../conventions.js';
import { UTILISED } from '../../../core/risk/exposure.js';
import type { LimitsRow } from '../../../projections/risk-queries.js';
export const PROJECTION = 'risk';
export const SYMBOL = /^[A-Z0-9]{2,20}$/;
export const symbol = z.string().regex(SYMBOL, 'expected a symbol such as BTCUSDT');
export const id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected letters, digits, ., _ or -');
export const scopeType = z.enum(RISK_SCOPE_TYPES);
export const scopeParams = z.object({ scopeType, scopeId: id });
export const bookParams = z.object({ portfolioId: id, strategyId: id, symbol });
export const reason = z.string().trim().min(1).max(500);
export const limit = pageLimit(1000, 100);
export const after = positionCursor;
export const minPosition = positionString.optional();

export const limitsOut = z.object({
  maxOrderNotional: z.number().nullable(),
  maxPositionNotional: z.number().nullable(),
  maxPositionShareOfEquity: z.number().nullable(),
  maxGrossExposure: z.number().nullable(),
  maxLeverage: z.number().nullable(),
  orderRate: z.object({ maxOrders: z.number(), windowMs: z.number() }).nullable(),
  dailyLossLimit: z.number().nullable(),
  maxDrawdown: z.number().nullable(),
  priceBreaker: z
    .object({ maxMove: z.number(), windowMs: z.number(), cooldownMs: z.number() })
    .nullable(),
});
export const temporaryOut = z
  .object({ state: z.enum(TRADING_STATES), until: z.string(), triggerId: z.string() })
  .nullable();
export const scopeState = z.object({
  scopeType,
  scopeId: z.string(),
  state: z.enum(TRADING_STATES).describe('in force now'),
  base: z.enum(TRADING_STATES),
  temporary: temporaryOut,
});
export const stateRow = scopeState.extend({
  reason: z.string(),
  changedBy: z.string(),
  changedAt: z.string(),
  resetAt: z.string().nullable(),
  requestId: z.string().nullable(),
  position: z.string(),
});
export const limitsRow = z.object({
  scopeType,
  scopeId: z.string(),
  limits: limitsOut,
  isDefault: z.boolean().describe('never set: the defaults of the scope type'),
  version: z.number().int().describe('0 for defaults; 1 once set, +1 per approved change'),
  requestId: z.string().nullable().describe('the approval request of the last change'),
  changedBy: z.string().nullable(),
  changedAt: z.string().nullable(),
  position: z.string().nullable(),
});
export const killSwitchOut = z.object({
  engaged: z.boolean(),
  flatten: z.boolean(),
  since: z.string().nullable(),
  engagedBy: z.string().nullable(),
  reason: z.string(),
  releasedBy: z.string().nullable().describe('the approvers of the release'),
  releasedAt: z.string().nullable(),
  releaseRequestId: z.string().nullable(),
  position: z.string().nullable(),
});
export const trigger = z.object({
  triggerId: z.string(),
  rule: z.enum(RISK_RULES),
  scopeType,
  scopeId: z.string(),
  threshold: z.number(),
  observed: z.number(),
  reference: z.number(),
  value: z.number(),
  window: z.object({ from: z.string(), to: z.string() }),
  action: z.enum(TRIGGER_ACTIONS),
  until: z.string().nullable(),
  actor: z.string(),
  firedAt: z.string(),
  position: z.string(),
});
export const deniedOrder = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string().nullable(),
  strategyId: z.string().nullable(),
  symbol: z.string().nullable(),
  side: z.enum(['buy', 'sell']).nullable(),
  quantity: z.number().nullable(),
  code: z.string(),
  reason: z.string(),
  deniedAt: z.string(),
  actor: z.string(),
  position: z.string(),
});
export const portfolioRisk = z.object({
  portfolioId: z.string(),
  currency: z.string(),
  equity: z.number().nullable(),
  cash: z.number(),
  valuedAt: z.string().nullable(),
  state: z.enum(TRADING_STATES).describe('of the portfolio scope, in force now'),
  exposure: z.object({
    grossExposure: z.number().describe('Σ |quantity| × mark over the books'),
    netExposure: z.number().describe('Σ quantity × mark'),
    leverage: z.number().nullable().describe('gross exposure / equity'),
    largestPosition: z
      .object({ symbol: z.string(), notional: z.number(), shareOfEquity: z.number().nullable() })
      .nullable()
      .describe('the largest net position per symbol'),
    openingEquity: z.number().nullable().describe("the UTC day's opening equity"),
    dailyLoss: z.number().nullable().describe('(opening − equity) / opening; 0 on a gain'),
    highWaterMark: z.number().nullable().describe('since the last approved reset'),
    drawdown: z.number().nullable().describe('(high-water mark − equity) / high-water mark'),
  }),
  limits: limitsOut,
  utilisation: z.array(
    z.object({
      limit: z.enum(UTILISED),
      value: z.number().nullable(),
      max: z.number().nullable(),
      utilisation: z.number().nullable().describe('value / max; null without a limit'),
    }),
  ),
});
export const exitsOut = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  rules: z
    .object({
      stopLoss: z.number().nullable(),
      takeProfit: z.number().nullable(),
      trailing: z.object({ activation: z.number(), distance: z.number() }).nullable(),
      atrStop: z.object({ period: z.number(), multiple: z.number() }).nullable(),
    })
    .nullable(),
  levels: z
    .object({
      openedAt: z.string(),
      stopPrice: z.number().nullable(),
      takeProfitPrice: z.number().nullable(),
    })
    .nullable()
    .describe('moved levels; they hold for the round trip that opened at openedAt only'),
  openTrip: z
    .object({ openedAt: z.string(), quantity: z.number() })
    .nullable()
    .describe("the book's open round trip"),
});
export const requestAnswer = commandResultSchema.extend({
  approvalRequestId: z.string().describe('the approval request opened; see /approvals/{id}'),
});

export const iso = (ms: number): string => new Date(ms).toISOString();
export const temporaryOf = (t: Temporary | null): z.infer<typeof temporaryOut> =>
  t ? { state: t.state, until: iso(t.until), triggerId: t.triggerId } : null;

/** `<scopeType>:<id>` cursors of the lists ordered by scope. */
export const scopeCursor = z
  .string()
  .regex(
    /^(portfolio|strategy|symbol):[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
    'expected <scopeType>:<id>',
  )
  .optional()
  .describe('cursor: nextCursor of the previous page');
/** The query of the lists by scope (limits, states): one scope or a page of them. */
export const scopeListQuery = z
  .object({
    scopeType: scopeType.optional(),
    scopeId: id.optional(),
    after: scopeCursor,
    limit,
    minPosition,
  })
  .strict();
/** The cursor after a row of a by-scope list: `<scopeType>:<id>`, as addScopeCursor reads it. */
export const scopeCursorOf = (row: { scope_type: RiskScope['type']; scope_id: string }): string =>
  scopeKey({ type: row.scope_type, id: row.scope_id });
export const toLimits = (r: LimitsRow): z.infer<typeof limitsRow> => ({
  scopeType: r.scope_type,
  scopeId: r.scope_id,
  limits: r.limits,
  isDefault: false,
  version: r.version,
  requestId: r.request_id,
  changedBy: r.changed_by,
  changedAt: r.changed_at.toISOString(),
  position: r.position,
});
