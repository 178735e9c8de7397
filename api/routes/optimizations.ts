import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { QcatError, ValidationError } from '../../core/errors.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import {
  OPTIMIZATION_STATUSES,
  optimizations,
  optimizationStream,
} from '../../core/optimization/optimization.js';
import { MAX_TRIALS } from '../../core/optimization/request.js';
import { TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import type { OptimizationServices } from '../services.js';
import {
  OptimizationQueries,
  type OptimizationRow,
} from '../../projections/optimization-queries.js';
import { commandOf, commandRoute } from '../command-route.js';
import {
  anyObject,
  idParams,
  optimizationRequestBody,
  summary,
  toSummary,
} from './optimization-schemas.js';
import { optimizationPolicyRoutes } from './optimization-policy.js';
import { HttpProblem } from '../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  newId,
  pageLimit,
  positionCursor,
  positionString,
  principalOf,
  type ZodFastify,
} from './conventions.js';

const invalid = (errors: { path: string; message: string }[]): never => {
  throw new ValidationError(
    'VALIDATION_FAILED',
    `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    { errors },
  );
};

/** What the optimization routes share: the services, the market data, the read model's queries. */
interface OptimizationContext {
  runtime: OptimizationServices;
  market: MarketDataStore;
  queries: OptimizationQueries;
}

/**
 * Optimizations (docs/optimization.md): request one (the optimizer runs it in the background),
 * list and read them, page through their trials by score, read the walk-forward folds and the
 * stitched out-of-sample equity, cancel one that has not finished. Routes are registered in this
 * order, which is openapi.json's; the policy's after them.
 */
export const optimizationRoutes: FastifyPluginAsyncZod<{ runtime: OptimizationServices }> = async (
  fastify,
  { runtime },
) => {
  const context: OptimizationContext = {
    runtime,
    market: new MarketDataStore(runtime.pool),
    queries: new OptimizationQueries(runtime.pool),
  };
  requestRoute(fastify, context);
  listRoute(fastify, context);
  detailRoute(fastify, context);
  trialsRoute(fastify, context);
  foldsRoute(fastify, context);
  cancelRoute(fastify, context);

  await fastify.register(optimizationPolicyRoutes, { runtime });
};

async function load(
  queries: OptimizationQueries,
  optimizationId: string,
): Promise<OptimizationRow> {
  const row = await queries.get(optimizationId);
  if (!row)
    throw new HttpProblem(
      404,
      'OPTIMIZATION_NOT_FOUND',
      `optimization ${optimizationId} does not exist`,
    );
  return row;
}

/**
 * What to optimize: the body's kind, timeframe and symbol, else the strategy's (a strategy of
 * one symbol); 404 for an unknown strategy, 400 for what is missing or contradicts it.
 */
async function targetOf(
  queries: OptimizationQueries,
  body: z.infer<typeof optimizationRequestBody>,
) {
  let strategy: Strategy | undefined;
  if (body.strategyId !== undefined) {
    strategy = await queries.strategy(body.strategyId);
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
  const symbol = body.symbol ?? (strategy?.symbols.length === 1 ? strategy.symbols[0] : undefined);
  const errors: { path: string; message: string }[] = [];
  if (kind === undefined) errors.push({ path: 'body.kind', message: 'is required' });
  if (timeframe === undefined) errors.push({ path: 'body.timeframe', message: 'is required' });
  if (symbol === undefined) errors.push({ path: 'body.symbol', message: 'is required' });
  if (kind === undefined || timeframe === undefined || symbol === undefined) return invalid(errors);
  return { strategy, kind, timeframe, symbol };
}

function requestRoute(
  fastify: ZodFastify,
  { runtime, market, queries }: OptimizationContext,
): void {
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
      const { strategy, kind, timeframe, symbol } = await targetOf(queries, body);
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
}

function listRoute(fastify: ZodFastify, { runtime, queries }: OptimizationContext): void {
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
}

function detailRoute(fastify: ZodFastify, { runtime, queries }: OptimizationContext): void {
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
      const row = await load(queries, request.params.optimizationId);
      void reply.header('etag', `"${row.revision}"`);
      const outcome = row.state.outcome;
      return {
        ...toSummary(row),
        outcome: outcome ? { ...outcome, folds: undefined, equity: undefined } : null,
      };
    },
  );
}

function trialsRoute(fastify: ZodFastify, { runtime, queries }: OptimizationContext): void {
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
      await load(queries, optimizationId);
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
}

function foldsRoute(fastify: ZodFastify, { runtime, queries }: OptimizationContext): void {
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
      const row = await load(queries, request.params.optimizationId);
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
}

function cancelRoute(fastify: ZodFastify, { runtime }: OptimizationContext): void {
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
}
