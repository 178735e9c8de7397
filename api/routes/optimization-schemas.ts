import { z } from 'zod';
import { MAX_COST_BPS, MAX_INITIAL_CASH } from '../../core/backtests/backtest-run.js';
import { OBJECTIVES } from '../../core/optimization/objectives.js';
import { OPTIMIZATION_STATUSES } from '../../core/optimization/optimization.js';
import { MAX_BATCH_SIZE, MAX_TRIALS, MAX_WALL_SECONDS } from '../../core/optimization/request.js';
import { METHODS } from '../../core/optimization/samplers.js';
import { MAX_FOLDS, WALK_FORWARD_SCHEMES } from '../../core/optimization/walk-forward.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { OptimizationRow } from '../../projections/optimization-queries.js';
import { instant } from './conventions.js';

/** The request body and the answers of the optimization routes (optimizations.ts). */

const finite = z.number().min(-1e12).max(1e12);
const range = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('int'),
    low: z.number().int().min(-1e9).max(1e9),
    high: z.number().int().min(-1e9).max(1e9),
    step: z.number().int().positive().max(1e9).optional(),
    log: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('real'),
    low: finite,
    high: finite,
    step: z.number().positive().max(1e12).optional(),
    log: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('set'),
    values: z.array(z.union([finite, z.string().max(100), z.boolean()])).max(100),
  }),
]);

export const optimizationRequestBody = z.strictObject({
  strategyId: z
    .uuid()
    .optional()
    .describe("start from the strategy's kind, current parameters, timeframe and (only) symbol"),
  kind: z.enum(STRATEGY_KIND_NAMES).optional().describe('required without strategyId'),
  baseParameters: z
    .record(z.string().max(100), z.unknown())
    .optional()
    .describe("the parameters every trial starts from; default the strategy's or the kind's"),
  symbol: z
    .string()
    .regex(/^[A-Z0-9]{2,20}$/)
    .optional(),
  timeframe: z.enum(TIMEFRAMES).optional(),
  from: instant.describe('candles opening at or after this instant'),
  to: instant.describe('candles opening before this instant; at most 731 days after from'),
  initialCash: z.number().positive().max(MAX_INITIAL_CASH).optional(),
  costs: z
    .strictObject({
      slippageBps: z.number().min(0).max(MAX_COST_BPS).optional(),
      makerFeeBps: z.number().min(0).max(MAX_COST_BPS).optional(),
      takerFeeBps: z.number().min(0).max(MAX_COST_BPS).optional(),
      maxVolumeShare: z.number().gt(0).max(1).nullable().optional(),
    })
    .optional(),
  space: z
    .record(z.string().max(100), range)
    .describe('per parameter: an int or real range (step or log scale) or a set of values'),
  method: z.enum(METHODS),
  objective: z.strictObject({
    name: z.enum(OBJECTIVES),
    minTrades: z.number().int().min(0).max(100_000).optional(),
  }),
  walkForward: z
    .strictObject({
      scheme: z.enum(WALK_FORWARD_SCHEMES).optional(),
      folds: z.number().int().min(1).max(MAX_FOLDS).optional(),
      inSampleBlocks: z.number().int().min(1).max(MAX_FOLDS).optional(),
    })
    .optional(),
  budget: z.strictObject({
    trials: z.number().int().min(1).max(MAX_TRIALS),
    wallSeconds: z.number().int().min(1).max(MAX_WALL_SECONDS).optional(),
  }),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional(),
  batchSize: z.number().int().min(1).max(MAX_BATCH_SIZE).optional(),
});

export const idParams = z.object({ optimizationId: z.uuid() });
export const anyObject = z.record(z.string(), z.unknown());
export const summary = z.object({
  optimizationId: z.string(),
  status: z.enum(OPTIMIZATION_STATUSES),
  strategyId: z.string().nullable(),
  kind: z.string(),
  symbol: z.string(),
  timeframe: z.string(),
  from: z.string(),
  to: z.string(),
  method: z.string(),
  objective: anyObject,
  walkForward: anyObject,
  budget: anyObject,
  seed: z.number(),
  batchSize: z.number(),
  space: anyObject,
  baseParameters: anyObject,
  trigger: anyObject,
  trialsDone: z.number(),
  bestTrial: z.number().nullable(),
  bestScore: z.number().nullable(),
  verdict: anyObject.nullable(),
  failureReason: z.string().nullable(),
  requestedBy: z.string(),
  requestedAt: z.string(),
  progressedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  revision: z.string(),
  position: z.string(),
});

export const toSummary = (row: OptimizationRow): z.infer<typeof summary> => {
  const s = row.state;
  return {
    optimizationId: row.optimization_id,
    status: s.status,
    strategyId: s.strategyId,
    kind: s.kind,
    symbol: s.symbol,
    timeframe: s.timeframe,
    from: s.from,
    to: s.to,
    method: s.method,
    objective: s.objective,
    walkForward: s.walkForward,
    budget: s.budget,
    seed: s.seed,
    batchSize: s.batchSize,
    space: s.space,
    baseParameters: s.baseParameters,
    trigger: s.trigger,
    trialsDone: s.trialsDone,
    bestTrial: s.bestTrial,
    bestScore: s.bestScore,
    verdict: s.outcome?.verdict ?? null,
    failureReason: s.failureReason,
    requestedBy: row.requested_by,
    requestedAt: row.requested_at.toISOString(),
    progressedAt: row.progressed_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    revision: row.revision,
    position: row.position,
  };
};
