/** The schemas and answers of the backtest routes. */
import { z } from 'zod';
import { ROLES } from '../../../core/access/roles.js';
import {
  BACKTEST_STATUSES,
  DEFAULT_INITIAL_CASH,
  MAX_COST_BPS,
  MAX_INITIAL_CASH,
} from '../../../core/backtests/backtest-run.js';
import { ValidationError } from '../../../core/errors.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../../../core/strategies/kinds.js';
import { type BacktestRow } from '../../../projections/backtest-queries.js';
import { amount, instant } from '../conventions.js';
export const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
export const bps = z.number().min(0).max(MAX_COST_BPS);

export const requestBody = z.strictObject({
  strategyId: z
    .uuid()
    .optional()
    .describe(
      "copy the strategy's kind, current parameters, timeframe and (only) symbol; the fields below override all but the kind",
    ),
  kind: z.enum(STRATEGY_KIND_NAMES).optional().describe('required without strategyId'),
  parameters: z
    .record(z.string().max(100), z.unknown())
    .optional()
    .describe("checked against the kind's parameter schema (GET /strategy-kinds); defaults filled"),
  symbol: symbol.optional().describe('required without strategyId'),
  timeframe: z.enum(TIMEFRAMES).optional().describe('required without strategyId'),
  from: instant.describe('candles opening at or after this instant'),
  to: instant.describe('candles opening before this instant; at most 731 days after from'),
  initialCash: amount
    .max(MAX_INITIAL_CASH)
    .optional()
    .describe(`starting cash in the quote currency; default ${DEFAULT_INITIAL_CASH.toString()}`),
  costs: z
    .strictObject({
      slippageBps: bps.optional(),
      makerFeeBps: bps.optional(),
      takerFeeBps: bps.optional(),
      maxVolumeShare: z.number().gt(0).max(1).nullable().optional(),
    })
    .optional()
    .describe("overrides of the paper venue's costs (docs/trading.md)"),
});

export const idParams = z.object({ backtestId: z.uuid() });
export const nullable = z.number().nullable();
export const statistics = z.object({
  days: z.number(),
  initialEquity: z.number(),
  finalEquity: z.number(),
  totalReturn: z.number(),
  cagr: nullable,
  sharpe: nullable,
  sortino: nullable,
  maxDrawdown: z.number(),
  calmar: nullable,
  trades: z.number(),
  winRate: nullable,
  profitFactor: nullable,
  expectancy: nullable,
  exposure: nullable,
});
export const run = z.object({
  backtestId: z.string(),
  status: z.enum(BACKTEST_STATUSES),
  strategyId: z.string().nullable(),
  strategyParameterVersion: z.number().nullable(),
  kind: z.string(),
  parameters: z.record(z.string(), z.unknown()),
  symbol: z.string(),
  timeframe: z.string(),
  from: z.string(),
  to: z.string(),
  initialCash: z.number(),
  costs: z.object({
    slippageBps: z.number(),
    makerFeeBps: z.number(),
    takerFeeBps: z.number(),
    maxVolumeShare: nullable,
  }),
  requester: z.object({ id: z.string(), role: z.enum(ROLES) }),
  requestedBy: z.string().describe('the actor, as the audit trail names it'),
  requestedAt: z.string(),
  finishedAt: z.string().nullable(),
  summary: z
    .object({
      statistics,
      trades: z.number(),
      finalEquity: z.number(),
      bars: z.number(),
      firstBar: z.string().nullable(),
      lastBar: z.string().nullable(),
      equityDays: z.number(),
      durationMs: z.number(),
    })
    .nullable(),
  failureReason: z.string().nullable().describe('CODE: key=value, … when the run failed'),
  revision: z.string(),
  position: z.string(),
});

export const toRun = (row: BacktestRow): z.infer<typeof run> => {
  const s = row.state;
  return {
    backtestId: row.backtest_id,
    status: s.status,
    strategyId: s.strategyId,
    strategyParameterVersion: s.strategyParameterVersion,
    kind: s.kind,
    parameters: s.parameters,
    symbol: s.symbol,
    timeframe: s.timeframe,
    from: s.from,
    to: s.to,
    initialCash: s.initialCash,
    costs: s.costs,
    requester: s.requestedBy,
    requestedBy: row.requested_by,
    requestedAt: row.requested_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    summary: s.summary,
    failureReason: s.failureReason,
    revision: row.revision,
    position: row.position,
  };
};

/** Fields a request lacks, as a validation problem naming each. */
export const missing = (errors: { path: string; message: string }[]): never => {
  throw new ValidationError(
    'VALIDATION_FAILED',
    `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    { errors },
  );
};
