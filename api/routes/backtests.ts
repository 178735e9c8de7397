import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { BACKTEST_STATUSES, backtestStream, backtests } from '../../core/backtests/backtest-run.js';
import { QcatError } from '../../core/errors.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import { STRATEGY_KIND_NAMES } from '../../core/strategies/kinds.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import type { ApiServices } from '../services.js';
import { HttpProblem } from '../problem.js';
import { BacktestQueries, type BacktestRow } from '../../projections/backtest-queries.js';
import { StrategyQueries } from '../../projections/strategy-queries.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  pageLimit,
  positionCursor,
  positionString,
  type ZodFastify,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';
import { idParams, missing, requestBody, run, symbol, toRun } from './backtests/schemas.js';

type BacktestServices = Pick<ApiServices, 'commands' | 'pool' | 'projections'>;

/** What the backtest routes share: the services, the market data and the read models' queries. */
interface BacktestContext {
  runtime: BacktestServices;
  market: MarketDataStore;
  queries: { backtests: BacktestQueries; strategies: StrategyQueries };
}

/**
 * Backtests: request a run (the runner in automation/backtests/ does it), list runs, read one
 * with its summary, its trades and its daily equity (docs/trading.md, "Backtests over the API").
 * Routes are registered in this order, which is openapi.json's.
 */
export const backtestRoutes: FastifyPluginAsyncZod<{
  runtime: BacktestServices;
}> = async (fastify, { runtime }) => {
  const context: BacktestContext = {
    runtime,
    market: new MarketDataStore(runtime.pool),
    queries: {
      backtests: new BacktestQueries(runtime.pool),
      strategies: new StrategyQueries(runtime.pool),
    },
  };
  requestRoute(fastify, context);
  listRoute(fastify, context);
  detailRoute(fastify, context);
  tradesRoute(fastify, context);
  equityRoute(fastify, context);
};

/** The run from the read model (after minPosition), or 404. */
async function load(backtests: BacktestQueries, backtestId: string): Promise<BacktestRow> {
  const row = await backtests.get(backtestId);
  if (!row)
    throw new HttpProblem(404, 'BACKTEST_NOT_FOUND', `backtest ${backtestId} does not exist`);
  return row;
}

/** A completed run whose result rows are stored; else why its results cannot be read. */
async function completed(backtests: BacktestQueries, backtestId: string): Promise<BacktestRow> {
  const row = await load(backtests, backtestId);
  if (row.state.status !== 'completed')
    throw new HttpProblem(
      409,
      'BACKTEST_NOT_COMPLETED',
      row.state.status === 'failed'
        ? `backtest ${backtestId} failed (${row.state.failureReason ?? ''}); it has no results`
        : `backtest ${backtestId} is still running; its results come when it completes`,
    );
  if (!(await backtests.resultsStored(backtestId)))
    throw new HttpProblem(
      503,
      'BACKTEST_RESULTS_NOT_STORED',
      `the results of backtest ${backtestId} are not stored yet; retry shortly`,
    );
  return row;
}

function requestRoute(fastify: ZodFastify, { runtime, market, queries }: BacktestContext): void {
  fastify.post(
    '/backtests',
    commandRoute('backtests:run', {
      tags: ['backtests'],
      summary:
        'Request a backtest over stored candles; 202: it runs in the background (poll GET /backtests/{id})',
      body: requestBody,
      response: { 202: commandResultSchema.extend({ backtestId: z.string() }) },
    }),
    async (request, reply) => {
      const command = commandOf(request, runtime.commands);
      const body = request.body;
      let strategy: Strategy | undefined;
      if (body.strategyId !== undefined) {
        strategy = await queries.strategies.state(body.strategyId);
        if (!strategy)
          throw new HttpProblem(
            404,
            'STRATEGY_NOT_FOUND',
            `strategy ${body.strategyId} does not exist`,
          );
        if (body.kind !== undefined && body.kind !== strategy.kind)
          missing([
            {
              path: 'body.kind',
              message: `is ${strategy.kind} for strategy ${body.strategyId}; leave it out`,
            },
          ]);
      }
      const kind = body.kind ?? strategy?.kind;
      const timeframe = body.timeframe ?? strategy?.timeframe;
      const symbol =
        body.symbol ?? (strategy?.symbols.length === 1 ? strategy.symbols[0] : undefined);
      const errors: { path: string; message: string }[] = [];
      if (kind === undefined) errors.push({ path: 'body.kind', message: 'is required' });
      if (timeframe === undefined) errors.push({ path: 'body.timeframe', message: 'is required' });
      if (symbol === undefined)
        errors.push({
          path: 'body.symbol',
          message: strategy
            ? `is required: the strategy trades ${strategy.symbols.join(', ')}`
            : 'is required',
        });
      if (kind === undefined || timeframe === undefined || symbol === undefined)
        return missing(errors);
      if (!(await market.getInstrument(symbol)))
        throw new QcatError('INSTRUMENT_NOT_FOUND', `no instrument ${symbol}`);

      const backtestId = command.newId('backtest');
      const result = await command.handle(backtests, backtestStream(backtestId), {
        type: 'RequestBacktest',
        backtestId,
        requestedBy: command.party,
        strategyId: strategy?.strategyId ?? null,
        strategyParameterVersion: strategy?.parameterVersion ?? null,
        kind,
        parameters: (body.parameters ?? strategy?.parameters ?? {}) as JsonObject,
        symbol,
        timeframe,
        from: body.from,
        to: body.to,
        ...(body.initialCash === undefined ? {} : { initialCash: body.initialCash }),
        ...(body.costs === undefined ? {} : { costs: body.costs }),
      });
      void reply.header('location', `/api/v1/backtests/${backtestId}`);
      return reply.code(202).send({ ...commandAnswer(reply, result), backtestId });
    },
  );
}

function listRoute(fastify: ZodFastify, { runtime, queries }: BacktestContext): void {
  fastify.get(
    '/backtests',
    {
      config: { permission: 'backtests:read', readModel: 'backtests' },
      schema: {
        tags: ['backtests'],
        summary: 'Backtest runs, newest first, filtered; cursor-paginated',
        querystring: z
          .object({
            strategyId: z.string().min(1).max(100).optional(),
            status: z.enum(BACKTEST_STATUSES).optional(),
            kind: z.enum(STRATEGY_KIND_NAMES).optional(),
            symbol: symbol.optional(),
            after: positionCursor,
            limit: pageLimit(500, 50),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: { 200: z.object({ backtests: z.array(run), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'backtests', q.minPosition, reply);
      const rows = await queries.backtests.list({ ...q, before: q.after });
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.requested_position);
      return { backtests: page.map(toRun), nextCursor };
    },
  );
}

function detailRoute(fastify: ZodFastify, { runtime, queries }: BacktestContext): void {
  fastify.get(
    '/backtests/:backtestId',
    {
      config: { permission: 'backtests:read', readModel: 'backtests' },
      schema: {
        tags: ['backtests'],
        summary: 'One backtest run: its request, status, and summary statistics once completed',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: { 200: run },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'backtests', request.query.minPosition, reply);
      const row = await load(queries.backtests, request.params.backtestId);
      void reply.header('etag', `"${row.revision}"`);
      return toRun(row);
    },
  );
}

function tradesRoute(fastify: ZodFastify, { runtime, queries }: BacktestContext): void {
  fastify.get(
    '/backtests/:backtestId/trades',
    {
      // Not cached (readModel), nor /equity: qcat_backtest is written by the runner, not by the
      // `backtests` projection whose read model says the run is completed.
      config: { permission: 'backtests:read' },
      schema: {
        tags: ['backtests'],
        summary: 'The round trips of a completed run, in the order they closed; cursor-paginated',
        params: idParams,
        querystring: z
          .object({
            after: z
              .string()
              .regex(/^\d{1,9}$/, 'expected the nextCursor of the previous page')
              .optional(),
            limit: pageLimit(1000, 200),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: {
          200: z.object({
            backtestId: z.string(),
            trades: z.array(
              z.object({
                seq: z.number().describe('1, 2, … in the order the trades closed'),
                side: z.enum(['long', 'short']),
                openedAt: z.string(),
                closedAt: z.string(),
                quantity: z.number(),
                entryPrice: z.number(),
                exitPrice: z.number(),
                realizedPnl: z.number(),
                fees: z.number(),
                netPnl: z.number(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'backtests', q.minPosition, reply);
      const { backtestId } = request.params;
      await completed(queries.backtests, backtestId);
      const rows = await queries.backtests.trades(backtestId, Number(q.after ?? '0'), q.limit);
      const { page, nextCursor } = cursorPage(rows, q.limit, (t) => String(t.seq));
      return {
        backtestId,
        trades: page.map((t) => ({
          seq: t.seq,
          side: t.side,
          openedAt: t.opened_at.toISOString(),
          closedAt: t.closed_at.toISOString(),
          quantity: t.quantity,
          entryPrice: t.entry_price,
          exitPrice: t.exit_price,
          realizedPnl: t.realized_pnl,
          fees: t.fees,
          netPnl: t.net_pnl,
        })),
        nextCursor,
      };
    },
  );
}

function equityRoute(fastify: ZodFastify, { runtime, queries }: BacktestContext): void {
  fastify.get(
    '/backtests/:backtestId/equity',
    {
      config: { permission: 'backtests:read' },
      schema: {
        tags: ['backtests'],
        summary:
          'The daily UTC mark-to-market equity of a completed run (one entry per day, at most 732)',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: {
          200: z.object({
            backtestId: z.string(),
            initialCash: z.number(),
            equity: z.array(z.object({ date: z.string(), equity: z.number() })),
          }),
        },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'backtests', request.query.minPosition, reply);
      const { backtestId } = request.params;
      const row = await completed(queries.backtests, backtestId);
      const rows = await queries.backtests.equity(backtestId);
      return { backtestId, initialCash: row.state.initialCash, equity: rows };
    },
  );
}
