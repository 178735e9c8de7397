import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../core/access/roles.js';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import {
  BACKTEST_STATUSES,
  backtestStream,
  backtests,
  DEFAULT_INITIAL_CASH,
  MAX_COST_BPS,
  MAX_INITIAL_CASH,
  type BacktestRun,
} from '../../core/backtests/backtest-run.js';
import { QcatError, ValidationError } from '../../core/errors.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import type { Runtime } from '../../ops/runtime.js';
import { ensureBacktestResultsSchema } from '../../projections/backtests.js';
import { HttpProblem } from '../problem.js';
import {
  amount,
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  instant,
  pageLimit,
  positionCursor,
  positionString,
  SqlFilter,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
const bps = z.number().min(0).max(MAX_COST_BPS);

const requestBody = z.strictObject({
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

const idParams = z.object({ backtestId: z.uuid() });
const nullable = z.number().nullable();
const statistics = z.object({
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
const run = z.object({
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

interface Row {
  backtest_id: string;
  state: BacktestRun;
  requested_by: string;
  requested_at: Date;
  finished_at: Date | null;
  requested_position: string;
  revision: string;
  position: string;
}
const COLUMNS = `backtest_id, state, requested_by, requested_at, finished_at, requested_position,
                 revision, position`;

const toRun = (row: Row): z.infer<typeof run> => {
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
const missing = (errors: { path: string; message: string }[]): never => {
  throw new ValidationError(
    'VALIDATION_FAILED',
    `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    { errors },
  );
};

/**
 * Backtests: request a run (the runner in projections/backtests.ts does it), list runs, read one
 * with its summary, its trades and its daily equity (docs/trading.md, "Backtests over the API").
 */
export const backtestRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  await ensureBacktestResultsSchema(runtime.pool);
  const market = new MarketDataStore(runtime.pool);

  /** The run from the read model (after minPosition), or 404. */
  const load = async (backtestId: string): Promise<Row> => {
    const { rows } = await runtime.pool.query<Row>(
      `SELECT ${COLUMNS} FROM qcat_read.backtests WHERE backtest_id = $1`,
      [backtestId],
    );
    const row = rows[0];
    if (!row)
      throw new HttpProblem(404, 'BACKTEST_NOT_FOUND', `backtest ${backtestId} does not exist`);
    return row;
  };

  /** A completed run whose result rows are stored; else why its results cannot be read. */
  const completed = async (backtestId: string): Promise<Row> => {
    const row = await load(backtestId);
    if (row.state.status !== 'completed')
      throw new HttpProblem(
        409,
        'BACKTEST_NOT_COMPLETED',
        row.state.status === 'failed'
          ? `backtest ${backtestId} failed (${row.state.failureReason ?? ''}); it has no results`
          : `backtest ${backtestId} is still running; its results come when it completes`,
      );
    const { rowCount } = await runtime.pool.query(
      'SELECT 1 FROM qcat_backtest.runs WHERE backtest_id = $1',
      [backtestId],
    );
    if (rowCount === 0)
      throw new HttpProblem(
        503,
        'BACKTEST_RESULTS_NOT_STORED',
        `the results of backtest ${backtestId} are not stored yet; retry shortly`,
      );
    return row;
  };

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
      const filter = new SqlFilter();
      if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
      if (q.status) filter.add('status = ?', q.status);
      if (q.kind) filter.add('kind = ?', q.kind);
      if (q.symbol) filter.add('symbol = ?', q.symbol);
      if (q.after) filter.add('requested_position < ?', q.after);
      const { rows } = await runtime.pool.query<Row>(
        `SELECT ${COLUMNS} FROM qcat_read.backtests ${filter.where}
          ORDER BY requested_position DESC LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.requested_position);
      return { backtests: page.map(toRun), nextCursor };
    },
  );

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
      const row = await load(request.params.backtestId);
      void reply.header('etag', `"${row.revision}"`);
      return toRun(row);
    },
  );

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
      await completed(backtestId);
      const { rows } = await runtime.pool.query<{
        seq: number;
        side: 'long' | 'short';
        opened_at: Date;
        closed_at: Date;
        quantity: number;
        entry_price: number;
        exit_price: number;
        realized_pnl: number;
        fees: number;
        net_pnl: number;
      }>(
        `SELECT seq, side, opened_at, closed_at, quantity, entry_price, exit_price, realized_pnl,
                fees, net_pnl
           FROM qcat_backtest.trades WHERE backtest_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [backtestId, Number(q.after ?? '0'), q.limit + 1],
      );
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
      const row = await completed(backtestId);
      const { rows } = await runtime.pool.query<{ date: string; equity: number }>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS date, equity FROM qcat_backtest.equity
          WHERE backtest_id = $1 ORDER BY day`,
        [backtestId],
      );
      return { backtestId, initialCash: row.state.initialCash, equity: rows };
    },
  );
};
