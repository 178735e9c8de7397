/** The strategy routes' request and answer schemas (openapi.json names them as they are). */
import { z } from 'zod';
import { ROLES } from '../../../core/access/roles.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../../../core/strategies/kinds.js';
import { STRATEGY_STATES } from '../../../core/strategies/strategy.js';
import { type StrategyRow } from '../../../projections/strategy-queries.js';
import { amount, commandResultSchema, strategyIdSchema } from '../conventions.js';

export const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
export const definitionBody = {
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000),
  kind: z.enum(STRATEGY_KIND_NAMES),
  symbols: z
    .array(symbol)
    .min(1)
    .max(50)
    .refine((list) => new Set(list).size === list.length, 'symbols must not repeat'),
  timeframe: z.enum(TIMEFRAMES),
  parameters: z
    .record(z.string().max(100), z.unknown())
    .describe("checked against the kind's parameter schema (GET /strategy-kinds)"),
  capitalRequest: amount.describe('capital asked for, in the quote currency'),
};
export const createBody = z.strictObject({
  ...definitionBody,
  description: definitionBody.description.default(''),
  parameters: definitionBody.parameters.default({}),
});
export const editBody = z
  .strictObject(definitionBody)
  .partial()
  .refine((body) => Object.keys(body).length > 0, 'send at least one field to change');
export const reasonBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });
export const idParams = z.object({ strategyId: strategyIdSchema });

export const party = z.object({ id: z.string(), role: z.enum(ROLES) });
export const json = z.record(z.string(), z.unknown());
export const summary = z.object({
  strategyId: z.string(),
  name: z.string(),
  kind: z.string(),
  symbols: z.array(z.string()),
  timeframe: z.string(),
  status: z.enum(STRATEGY_STATES),
  owner: z.string(),
  parameterVersion: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  revision: z.string(),
});
export const detail = summary.extend({
  description: z.string(),
  owner: party,
  parameters: json,
  capitalRequest: z.number(),
  pausedFrom: z.enum(['paper', 'live']).nullable(),
  pending: z.object({
    activation: z.string().nullable(),
    promotion: z.string().nullable(),
    parameterChange: z.object({ requestId: z.string(), parameters: json }).nullable(),
  }),
  allowedCommands: z.array(z.string()),
  position: z.string(),
});
export const requestAnswer = commandResultSchema.extend({
  approvalRequestId: z.string().describe('the approval request opened; see /approvals/{id}'),
});

export const toSummary = (row: StrategyRow): z.infer<typeof summary> => ({
  strategyId: row.strategy_id,
  name: row.state.name,
  kind: row.state.kind,
  symbols: row.state.symbols,
  timeframe: row.state.timeframe,
  status: row.state.status,
  owner: row.state.owner.id,
  parameterVersion: row.state.parameterVersion,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  revision: row.revision,
});
