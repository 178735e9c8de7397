import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { MAX_COST_BPS, MAX_INITIAL_CASH } from '../../core/backtests/backtest-run.js';
import { QcatError, ValidationError } from '../../core/errors.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import { OBJECTIVES } from '../../core/optimization/objectives.js';
import {
  OPTIMIZATION_STATUSES,
  optimizations,
  optimizationStream,
} from '../../core/optimization/optimization.js';
import {
  gateSchema,
  OPTIMIZATION_POLICY_STREAM,
  optimizationPolicy,
} from '../../core/optimization/policy.js';
import { MAX_BATCH_SIZE, MAX_TRIALS, MAX_WALL_SECONDS } from '../../core/optimization/request.js';
import { METHODS } from '../../core/optimization/samplers.js';
import { MAX_FOLDS, WALK_FORWARD_SCHEMES } from '../../core/optimization/walk-forward.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import type { Runtime } from '../../ops/runtime.js';
import {
  OptimizationQueries,
  type OptimizationRow,
} from '../../projections/optimization-queries.js';
import { commandOf, commandRoute } from '../command-route.js';
import { HttpProblem } from '../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  instant,
  newId,
  pageLimit,
  positionCursor,
  positionString,
  principalOf,
} from './conventions.js';

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

const idParams = z.object({ optimizationId: z.uuid() });
const anyObject = z.record(z.string(), z.unknown());
const summary = z.object({
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

const toSummary = (row: OptimizationRow): z.infer<typeof summary> => {
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

const invalid = (errors: { path: string; message: string }[]): never => {
  throw new ValidationError(
    'VALIDATION_FAILED',
    `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    { errors },
  );
};

/**
 * Optimizations (docs/optimization.md): request one (the optimizer runs it in the background),
 * list and read them, page through their trials by score, read the walk-forward folds and the
 * stitched out-of-sample equity, cancel one that has not finished.
 */
export const optimizationRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  const market = new MarketDataStore(runtime.pool);
  const queries = new OptimizationQueries(runtime.pool);

  const load = async (optimizationId: string): Promise<OptimizationRow> => {
    const row = await queries.get(optimizationId);
    if (!row)
      throw new HttpProblem(
        404,
        'OPTIMIZATION_NOT_FOUND',
        `optimization ${optimizationId} does not exist`,
      );
    return row;
  };

  fastify.post(
    '/optimizations',
    commandRoute('optimizations:run', {
      tags: ['optimizations'],
      summary:
        'Request a parameter optimization; 202: it runs in the background (GET /optimizations/{id})',
      body: optimizationRequestBody,
      response: { 202: commandResultSchema.extend({ optimizationId: z.string() }) },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const body = request.body;
      let strategy: Strategy | undefined;
      if (body.strategyId !== undefined) {
        const { rows } = await runtime.pool.query<{ state: Strategy }>(
          'SELECT state FROM qcat_read.strategies WHERE strategy_id = $1',
          [body.strategyId],
        );
        strategy = rows[0]?.state;
        if (!strategy)
          throw new HttpProblem(
            404,
            'STRATEGY_NOT_FOUND',
            `strategy ${body.strategyId} does not exist`,
          );
        if (body.kind !== undefined && body.kind !== strategy.kind)
          invalid([
            { path: 'body.kind', message: `is ${strategy.kind} for this strategy; leave it out` },
          ]);
      }
      const kind = body.kind ?? strategy?.kind;
      const timeframe = TIMEFRAMES.find((t) => t === (body.timeframe ?? strategy?.timeframe));
      const symbol =
        body.symbol ?? (strategy?.symbols.length === 1 ? strategy.symbols[0] : undefined);
      const errors: { path: string; message: string }[] = [];
      if (kind === undefined) errors.push({ path: 'body.kind', message: 'is required' });
      if (timeframe === undefined) errors.push({ path: 'body.timeframe', message: 'is required' });
      if (symbol === undefined) errors.push({ path: 'body.symbol', message: 'is required' });
      if (kind === undefined || timeframe === undefined || symbol === undefined)
        return invalid(errors);
      if (!(await market.getInstrument(symbol)))
        throw new QcatError('INSTRUMENT_NOT_FOUND', `no instrument ${symbol}`);
      const sample = await market.candlePage({
        symbol,
        timeframe,
        from: Date.parse(body.from),
        to: Date.parse(body.to),
        limit: 1,
      });
      const optimizationId = newId(party, request.headers, 'optimization');
      const result = await commandOf(request, runtime.commands).handle(
        optimizations,
        optimizationStream(optimizationId),
        {
          type: 'RequestOptimization',
          optimizationId,
          requestedBy: party,
          strategyId: strategy?.strategyId ?? null,
          strategyParameterVersion: strategy?.parameterVersion ?? null,
          kind,
          baseParameters: (body.baseParameters ?? strategy?.parameters ?? {}) as JsonObject,
          symbol,
          timeframe,
          from: body.from,
          to: body.to,
          ...(body.initialCash === undefined ? {} : { initialCash: body.initialCash }),
          ...(body.costs === undefined ? {} : { costs: body.costs }),
          space: body.space,
          method: body.method,
          objective: body.objective,
          ...(body.walkForward === undefined ? {} : { walkForward: body.walkForward }),
          budget: body.budget,
          ...(body.seed === undefined ? {} : { seed: body.seed }),
          ...(body.batchSize === undefined ? {} : { batchSize: body.batchSize }),
          trigger: { type: 'manual' },
          candlesInWindow: sample.length,
        },
      );
      void reply.header('location', `/api/v1/optimizations/${optimizationId}`);
      return reply.code(202).send({ ...commandAnswer(reply, result), optimizationId });
    },
  );

  fastify.get(
    '/optimizations',
    {
      config: { permission: 'optimizations:read', readModel: 'optimizations' },
      schema: {
        tags: ['optimizations'],
        summary: 'Optimizations, newest first, filtered; cursor-paginated',
        querystring: z
          .object({
            strategyId: z.string().min(1).max(100).optional(),
            status: z.enum(OPTIMIZATION_STATUSES).optional(),
            after: positionCursor,
            limit: pageLimit(200, 50),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: {
          200: z.object({ optimizations: z.array(summary), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'optimizations', q.minPosition, reply);
      const rows = await queries.list({
        strategyId: q.strategyId,
        status: q.status,
        before: q.after,
        limit: q.limit,
      });
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.requested_position);
      return { optimizations: page.map(toSummary), nextCursor };
    },
  );

  fastify.get(
    '/optimizations/:optimizationId',
    {
      config: { permission: 'optimizations:read', readModel: 'optimizations' },
      schema: {
        tags: ['optimizations'],
        summary:
          'One optimization: its request, progress and, once completed, the best parameters, in- and out-of-sample statistics, DSR, PBO and the verdict',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: { 200: summary.extend({ outcome: anyObject.nullable() }) },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'optimizations', request.query.minPosition, reply);
      const row = await load(request.params.optimizationId);
      void reply.header('etag', `"${row.revision}"`);
      const outcome = row.state.outcome;
      return {
        ...toSummary(row),
        outcome: outcome ? { ...outcome, folds: undefined, equity: undefined } : null,
      };
    },
  );

  fastify.get(
    '/optimizations/:optimizationId/trials',
    {
      config: { permission: 'optimizations:read', readModel: 'optimizations' },
      schema: {
        tags: ['optimizations'],
        summary: 'The trials recorded so far: best score first (or by trial number); paged',
        params: idParams,
        querystring: z
          .object({
            sort: z.enum(['score', 'trial']).default('score'),
            offset: z.coerce.number().int().min(0).max(MAX_TRIALS).default(0),
            limit: pageLimit(500, 100),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: {
          200: z.object({
            optimizationId: z.string(),
            trials: z.array(
              z.object({
                trial: z.number(),
                batch: z.number(),
                score: z.number().nullable(),
                parameters: anyObject,
                inSample: z.array(z.number().nullable()),
                outOfSample: z.array(z.number().nullable()),
                trades: z.number(),
                note: z.string().nullable(),
              }),
            ),
            nextOffset: z.number().nullable(),
          }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'optimizations', q.minPosition, reply);
      const { optimizationId } = request.params;
      await load(optimizationId);
      const rows = await queries.trials(optimizationId, q.sort, q.offset, q.limit);
      return {
        optimizationId,
        trials: rows.slice(0, q.limit).map((t) => ({
          trial: t.trial,
          batch: t.batch,
          score: t.score,
          parameters: t.parameters,
          inSample: t.in_sample,
          outOfSample: t.out_of_sample,
          trades: t.trades,
          note: t.note,
        })),
        nextOffset: rows.length > q.limit ? q.offset + q.limit : null,
      };
    },
  );

  fastify.get(
    '/optimizations/:optimizationId/folds',
    {
      config: { permission: 'optimizations:read', readModel: 'optimizations' },
      schema: {
        tags: ['optimizations'],
        summary:
          'The walk-forward folds of a completed optimization (choice in-sample, score out-of-sample) and the stitched out-of-sample equity',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: {
          200: z.object({
            optimizationId: z.string(),
            initialCash: z.number(),
            folds: z.array(anyObject),
            equity: z.array(z.object({ date: z.string(), equity: z.number() })),
          }),
        },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'optimizations', request.query.minPosition, reply);
      const row = await load(request.params.optimizationId);
      const outcome = row.state.outcome;
      if (!outcome)
        throw new HttpProblem(
          409,
          'OPTIMIZATION_NOT_COMPLETED',
          `optimization ${row.optimization_id} is ${row.state.status}; folds come with its completion`,
        );
      return {
        optimizationId: row.optimization_id,
        initialCash: row.state.initialCash,
        folds: outcome.folds,
        equity: outcome.equity,
      };
    },
  );

  fastify.post(
    '/optimizations/:optimizationId/cancel',
    commandRoute('optimizations:run', {
      tags: ['optimizations'],
      summary:
        'Cancel an optimization that has not finished; the optimizer stops at its next batch',
      params: idParams,
      body: z.strictObject({ reason: z.string().min(1).max(500) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { optimizationId } = request.params;
      const result = await commandOf(request, runtime.commands).handle(
        optimizations,
        optimizationStream(optimizationId),
        {
          type: 'CancelOptimization',
          optimizationId,
          cancelledBy: party,
          reason: request.body.reason,
        },
      );
      return commandAnswer(reply, result);
    },
  );

  const policyAnswer = z.object({
    gate: gateSchema,
    setBy: z.object({ id: z.string(), role: z.string() }).nullable(),
    revision: z.string(),
  });

  fastify.get(
    '/optimization-policy',
    {
      config: { permission: 'optimizations:read' },
      schema: {
        tags: ['optimizations'],
        summary: 'The adoption gate in force (the defaults until a risk officer sets it)',
        response: { 200: policyAnswer },
      },
    },
    async () => {
      const { state, revision } = await runtime.commands.load(
        optimizationPolicy,
        OPTIMIZATION_POLICY_STREAM,
      );
      return { gate: state.gate, setBy: state.setBy, revision: revision.toString() };
    },
  );

  fastify.put(
    '/optimization-policy/gate',
    commandRoute('optimizations:policy', {
      tags: ['optimizations'],
      summary:
        'Set the adoption gate: what an optimization result must show before its parameters are proposed',
      body: z.strictObject({ gate: gateSchema, reason: z.string().min(1).max(500) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const result = await commandOf(request, runtime.commands).handle(
        optimizationPolicy,
        OPTIMIZATION_POLICY_STREAM,
        {
          type: 'SetAdoptionGate',
          gate: request.body.gate,
          by: party,
          reason: request.body.reason,
        },
      );
      return commandAnswer(reply, result);
    },
  );
};
