import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { desk, deskStream, MANUAL_ORDER_PREFIX, portfolioOf } from '../../core/engine/desk.js';
import { QcatError } from '../../core/errors.js';
import type { CommandResult } from '../../core/commands/idempotency.js';
import { TIMEFRAMES } from '../../core/strategies/kinds.js';
import { isOpen, ORDER_STATUSES, type OrderRequest } from '../../core/trading/orders.js';
import type { Runtime } from '../../ops/runtime.js';
import { HttpProblem } from '../problem.js';
import {
  addTimeRange,
  amount,
  awaitPosition,
  cursorPage,
  instant,
  instantOf,
  isoOrNull,
  pageLimit,
  positionCursor,
  positionString,
  SqlFilter,
  timeRange,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const PROJECTION = 'trading';
const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
const id = z.string().min(1).max(200);
const limit = pageLimit(1000, 100);
const after = positionCursor;
const minPosition = positionString.optional();
const book = {
  portfolioId: id.optional(),
  strategyId: id.optional(),
  symbol: symbol.optional(),
};

const order = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  type: z.enum(['market', 'limit', 'stop']),
  quantity: z.number(),
  limitPrice: z.number().nullable(),
  stopPrice: z.number().nullable(),
  reduceOnly: z.boolean(),
  status: z.enum(ORDER_STATUSES),
  filledQuantity: z.number(),
  averagePrice: z.number().nullable(),
  reason: z.string().nullable(),
  source: z.enum(['strategy', 'manual']),
  actor: z.string(),
  submittedAt: z.string(),
  updatedAt: z.string(),
  position: z.string(),
});
const fill = z.object({
  fillId: z.string(),
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  price: z.number(),
  quantity: z.number(),
  notional: z.number(),
  fee: z.number(),
  feeCurrency: z.string(),
  liquidity: z.enum(['maker', 'taker']),
  slippage: z.number(),
  time: z.string(),
  position: z.string(),
});
const trade = z.object({
  fillId: z.string().describe('the fill that ended the round trip'),
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['long', 'short']),
  openedAt: z.string(),
  closedAt: z.string(),
  quantity: z.number().describe('total quantity entered'),
  entryPrice: z.number(),
  exitPrice: z.number(),
  realizedPnl: z.number().describe('before fees'),
  fees: z.number(),
  netPnl: z.number(),
  position: z.string(),
});
const position = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  quantity: z.number(),
  averageEntryPrice: z.number(),
  markPrice: z.number().nullable(),
  unrealizedPnl: z.number(),
  realizedPnl: z.number(),
  feesPaid: z.number(),
  updatedAt: z.string(),
});
const pnl = {
  realizedPnl: z.number().describe('before fees'),
  unrealizedPnl: z.number(),
  feesPaid: z.number(),
  netPnl: z.number().describe('realized + unrealized − fees'),
};
const portfolio = z.object({
  portfolioId: z.string(),
  currency: z.string(),
  cash: z.number(),
  equity: z.number().nullable().describe('as of valuedAt; null before the first valuation'),
  highWaterMark: z.number().nullable(),
  drawdown: z.number().nullable().describe('(highWaterMark − equity) / highWaterMark'),
  valuedAt: z.string().nullable(),
  ...pnl,
});
const strategyPnl = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  ...pnl,
  openPositions: z.number().int(),
  trades: z.number().int(),
});
const requestedAnswer = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string(),
  status: z.enum(['requested', 'cancel_requested']),
  streamId: z.string(),
  revision: z.string(),
  position: z.string().describe('the desk event; the order events follow at the next engine cycle'),
});

const iso = (date: Date): string => date.toISOString();

interface OrderRow {
  client_order_id: string;
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  type: 'market' | 'limit' | 'stop';
  quantity: number;
  limit_price: number | null;
  stop_price: number | null;
  reduce_only: boolean;
  status: z.infer<typeof order>['status'];
  filled_quantity: number;
  average_price: number | null;
  reason: string | null;
  source: 'strategy' | 'manual';
  actor: string;
  submitted_at: Date;
  updated_at: Date;
  submitted_position: string;
  position: string;
}
const toOrder = (r: OrderRow): z.infer<typeof order> => ({
  clientOrderId: r.client_order_id,
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  symbol: r.symbol,
  side: r.side,
  type: r.type,
  quantity: r.quantity,
  limitPrice: r.limit_price,
  stopPrice: r.stop_price,
  reduceOnly: r.reduce_only,
  status: r.status,
  filledQuantity: r.filled_quantity,
  averagePrice: r.average_price,
  reason: r.reason,
  source: r.source,
  actor: r.actor,
  submittedAt: iso(r.submitted_at),
  updatedAt: iso(r.updated_at),
  position: r.position,
});

interface FillRow {
  fill_id: string;
  client_order_id: string;
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  notional: number;
  fee: number;
  fee_currency: string;
  liquidity: 'maker' | 'taker';
  slippage: number;
  time: Date;
  position: string;
}
const toFill = (r: FillRow): z.infer<typeof fill> => ({
  fillId: r.fill_id,
  clientOrderId: r.client_order_id,
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  symbol: r.symbol,
  side: r.side,
  price: r.price,
  quantity: r.quantity,
  notional: r.notional,
  fee: r.fee,
  feeCurrency: r.fee_currency,
  liquidity: r.liquidity,
  slippage: r.slippage,
  time: iso(r.time),
  position: r.position,
});

interface PortfolioRow {
  portfolio_id: string;
  currency: string;
  cash: number;
  equity: number | null;
  realized_pnl: number;
  unrealized_pnl: number;
  fees_paid: number;
  valued_at: Date | null;
  high_water_mark: number | null;
}
const toPortfolio = (r: PortfolioRow): z.infer<typeof portfolio> => ({
  portfolioId: r.portfolio_id,
  currency: r.currency,
  cash: r.cash,
  equity: r.equity,
  highWaterMark: r.high_water_mark,
  drawdown:
    r.equity !== null && r.high_water_mark !== null && r.high_water_mark > 0
      ? (r.high_water_mark - r.equity) / r.high_water_mark
      : null,
  valuedAt: isoOrNull(r.valued_at),
  realizedPnl: r.realized_pnl,
  unrealizedPnl: r.unrealized_pnl,
  feesPaid: r.fees_paid,
  netPnl: r.realized_pnl + r.unrealized_pnl - r.fees_paid,
});

interface StrategyPnlRow {
  portfolio_id: string;
  strategy_id: string;
  realized_pnl: number;
  unrealized_pnl: number;
  fees_paid: number;
  open_positions: number;
  trades: number;
}
const toStrategyPnl = (r: StrategyPnlRow): z.infer<typeof strategyPnl> => ({
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  realizedPnl: r.realized_pnl,
  unrealizedPnl: r.unrealized_pnl,
  feesPaid: r.fees_paid,
  netPnl: r.realized_pnl + r.unrealized_pnl - r.fees_paid,
  openPositions: r.open_positions,
  trades: r.trades,
});
/** PnL per (portfolio, strategy) over its positions, with its counts. */
const STRATEGY_PNL = `
  SELECT p.portfolio_id, p.strategy_id,
         sum(p.realized_pnl)::float8 AS realized_pnl, sum(p.unrealized_pnl)::float8 AS unrealized_pnl,
         sum(p.fees_paid)::float8 AS fees_paid, count(*) FILTER (WHERE p.quantity <> 0)::int AS open_positions,
         (SELECT count(*) FROM qcat_read.trades t
           WHERE t.portfolio_id = p.portfolio_id AND t.strategy_id = p.strategy_id)::int AS trades
    FROM qcat_read.positions p`;

/** PostgreSQL intervals of the downsampling choices. */
const INTERVALS: Readonly<Record<(typeof TIMEFRAMES)[number], string>> = {
  '1m': '1 minute',
  '5m': '5 minutes',
  '15m': '15 minutes',
  '1h': '1 hour',
  '4h': '4 hours',
  '1d': '1 day',
};

function addBook(
  filter: SqlFilter,
  q: { portfolioId?: string; strategyId?: string; symbol?: string },
) {
  if (q.portfolioId) filter.add('portfolio_id = ?', q.portfolioId);
  if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
  if (q.symbol) filter.add('symbol = ?', q.symbol);
}

/** A refused order field: 422 naming it. */
const invalidOrder = (path: string, message: string): QcatError =>
  new QcatError('INVALID_ORDER', `${path}: ${message}`, {
    errors: [{ path: `body.${path}`, message }],
  });

/** Trading: orders, fills, trades, positions, portfolios, PnL and manual orders (docs/trading.md). */
export const tradingRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  const { pool } = runtime;
  const requestAnswer = (
    result: CommandResult,
    clientOrderId: string,
    portfolioId: string,
    status: 'requested' | 'cancel_requested',
  ): z.infer<typeof requestedAnswer> => ({
    clientOrderId,
    portfolioId,
    status,
    streamId: result.streamId,
    revision: result.nextExpectedRevision.toString(),
    position: result.position.toString(),
  });

  fastify.get(
    '/orders',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'Orders, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            ...book,
            status: z.enum(ORDER_STATUSES).optional(),
            source: z.enum(['strategy', 'manual']).optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: { 200: z.object({ orders: z.array(order), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      addBook(filter, q);
      if (q.status) filter.add('status = ?', q.status);
      if (q.source) filter.add('source = ?', q.source);
      addTimeRange(filter, 'submitted_at', q);
      if (q.after) filter.add('submitted_position > ?', q.after);
      const { rows } = await pool.query<OrderRow>(
        `SELECT * FROM qcat_read.orders ${filter.where}
          ORDER BY submitted_position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.submitted_position);
      return { orders: page.map(toOrder), nextCursor };
    },
  );

  fastify.get(
    '/orders/:clientOrderId',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'One order with its fills',
        params: z.object({ clientOrderId: id }),
        querystring: z.object({ minPosition }).strict(),
        response: { 200: order.extend({ fills: z.array(fill) }) },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const { clientOrderId } = request.params;
      const { rows } = await pool.query<OrderRow>(
        'SELECT * FROM qcat_read.orders WHERE client_order_id = $1',
        [clientOrderId],
      );
      const row = rows[0];
      if (!row)
        throw new HttpProblem(404, 'ORDER_NOT_FOUND', `order ${clientOrderId} does not exist`);
      const fills = await pool.query<FillRow>(
        'SELECT * FROM qcat_read.fills WHERE client_order_id = $1 ORDER BY position',
        [clientOrderId],
      );
      return { ...toOrder(row), fills: fills.rows.map(toFill) };
    },
  );

  fastify.get(
    '/fills',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'Fills, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            ...book,
            clientOrderId: id.optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: { 200: z.object({ fills: z.array(fill), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      addBook(filter, q);
      if (q.clientOrderId) filter.add('client_order_id = ?', q.clientOrderId);
      addTimeRange(filter, 'time', q);
      if (q.after) filter.add('position > ?', q.after);
      const { rows } = await pool.query<FillRow>(
        `SELECT * FROM qcat_read.fills ${filter.where}
          ORDER BY position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.position);
      return { fills: page.map(toFill), nextCursor };
    },
  );

  fastify.get(
    '/trades',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary:
          'Round trips (closed trades), oldest first, filtered by close time; cursor-paginated',
        querystring: z.object({ ...book, ...timeRange, after, limit, minPosition }).strict(),
        response: { 200: z.object({ trades: z.array(trade), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      addBook(filter, q);
      addTimeRange(filter, 'closed_at', q);
      if (q.after) filter.add('position > ?', q.after);
      const { rows } = await pool.query<{
        fill_id: string;
        client_order_id: string;
        portfolio_id: string;
        strategy_id: string;
        symbol: string;
        side: 'long' | 'short';
        opened_at: Date;
        closed_at: Date;
        quantity: number;
        entry_price: number;
        exit_price: number;
        pnl: number;
        fees: number;
        net_pnl: number;
        position: string;
      }>(
        `SELECT * FROM qcat_read.trades ${filter.where}
          ORDER BY position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => r.position);
      return {
        trades: page.map((r) => ({
          fillId: r.fill_id,
          clientOrderId: r.client_order_id,
          portfolioId: r.portfolio_id,
          strategyId: r.strategy_id,
          symbol: r.symbol,
          side: r.side,
          openedAt: iso(r.opened_at),
          closedAt: iso(r.closed_at),
          quantity: r.quantity,
          entryPrice: r.entry_price,
          exitPrice: r.exit_price,
          realizedPnl: r.pnl,
          fees: r.fees,
          netPnl: r.net_pnl,
          position: r.position,
        })),
        nextCursor,
      };
    },
  );

  fastify.get(
    '/positions',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'Positions per book (strategy × symbol); flat ones only with includeFlat=true',
        querystring: z
          .object({
            ...book,
            includeFlat: z
              .enum(['true', 'false'])
              .default('false')
              .transform((value) => value === 'true'),
            minPosition,
          })
          .strict(),
        response: { 200: z.object({ positions: z.array(position) }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      addBook(filter, q);
      if (!q.includeFlat) filter.add('quantity <> ?', 0);
      const { rows } = await pool.query<{
        portfolio_id: string;
        strategy_id: string;
        symbol: string;
        quantity: number;
        average_entry_price: number;
        mark_price: number | null;
        unrealized_pnl: number;
        realized_pnl: number;
        fees_paid: number;
        updated_at: Date;
      }>(
        `SELECT * FROM qcat_read.positions ${filter.where}
          ORDER BY portfolio_id, strategy_id, symbol`,
        filter.values,
      );
      return {
        positions: rows.map((r) => ({
          portfolioId: r.portfolio_id,
          strategyId: r.strategy_id,
          symbol: r.symbol,
          quantity: r.quantity,
          averageEntryPrice: r.average_entry_price,
          markPrice: r.mark_price,
          unrealizedPnl: r.unrealized_pnl,
          realizedPnl: r.realized_pnl,
          feesPaid: r.fees_paid,
          updatedAt: iso(r.updated_at),
        })),
      };
    },
  );

  fastify.get(
    '/portfolios',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'Every portfolio: cash, equity, PnL, high-water mark',
        querystring: z.object({ minPosition }).strict(),
        response: { 200: z.object({ portfolios: z.array(portfolio) }) },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const { rows } = await pool.query<PortfolioRow>(
        'SELECT * FROM qcat_read.portfolios ORDER BY portfolio_id',
      );
      return { portfolios: rows.map(toPortfolio) };
    },
  );

  const portfolioRow = async (portfolioId: string): Promise<PortfolioRow> => {
    const { rows } = await pool.query<PortfolioRow>(
      'SELECT * FROM qcat_read.portfolios WHERE portfolio_id = $1',
      [portfolioId],
    );
    const row = rows[0];
    if (!row)
      throw new HttpProblem(404, 'PORTFOLIO_NOT_FOUND', `portfolio ${portfolioId} does not exist`);
    return row;
  };

  fastify.get(
    '/portfolios/:portfolioId',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'One portfolio with the PnL of each strategy in it',
        params: z.object({ portfolioId: id }),
        querystring: z.object({ minPosition }).strict(),
        response: { 200: portfolio.extend({ strategies: z.array(strategyPnl) }) },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const row = await portfolioRow(request.params.portfolioId);
      const { rows } = await pool.query<StrategyPnlRow>(
        `${STRATEGY_PNL} WHERE p.portfolio_id = $1 GROUP BY p.portfolio_id, p.strategy_id
          ORDER BY p.strategy_id`,
        [row.portfolio_id],
      );
      return { ...toPortfolio(row), strategies: rows.map(toStrategyPnl) };
    },
  );

  fastify.get(
    '/portfolios/:portfolioId/equity',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary:
          'Equity and cash over time, oldest first; with interval, the last point of each interval',
        params: z.object({ portfolioId: id }),
        querystring: z
          .object({
            ...timeRange,
            interval: z.enum(TIMEFRAMES).optional().describe('downsample: one point per interval'),
            after: instant.optional().describe('cursor: nextCursor of the previous page'),
            limit: pageLimit(10_000, 1000),
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({
            portfolioId: z.string(),
            points: z.array(z.object({ time: z.string(), equity: z.number(), cash: z.number() })),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const { portfolio_id: portfolioId } = await portfolioRow(request.params.portfolioId);
      const filter = new SqlFilter();
      filter.add('portfolio_id = ?', portfolioId);
      addTimeRange(filter, 'time', q);
      const cursor = instantOf('after', q.after);
      if (cursor) filter.add('time > ?', cursor);
      const bucket = q.interval
        ? `date_bin(${filter.param(INTERVALS[q.interval])}::interval, time, TIMESTAMPTZ '2000-01-01Z')`
        : 'time';
      const { rows } = await pool.query<{ time: Date; equity: number; cash: number }>(
        `SELECT time, equity, cash FROM (
           SELECT DISTINCT ON (${bucket}) time, equity, cash FROM qcat_read.portfolio_equity
             ${filter.where} ORDER BY ${bucket}, time DESC) AS points
          ORDER BY time LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => iso(r.time));
      return {
        portfolioId,
        points: page.map((r) => ({ time: iso(r.time), equity: r.equity, cash: r.cash })),
        nextCursor,
      };
    },
  );

  fastify.get(
    '/pnl',
    {
      config: { permission: 'trading:read', readModel: PROJECTION },
      schema: {
        tags: ['trading'],
        summary: 'PnL per portfolio and per strategy: realized, unrealized, fees, net',
        querystring: z
          .object({ portfolioId: id.optional(), strategyId: id.optional(), minPosition })
          .strict(),
        response: {
          200: z.object({ portfolios: z.array(portfolio), strategies: z.array(strategyPnl) }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const portfolios = new SqlFilter();
      if (q.portfolioId) portfolios.add('portfolio_id = ?', q.portfolioId);
      const strategies = new SqlFilter();
      if (q.portfolioId) strategies.add('p.portfolio_id = ?', q.portfolioId);
      if (q.strategyId) strategies.add('p.strategy_id = ?', q.strategyId);
      const [p, s] = await Promise.all([
        pool.query<PortfolioRow>(
          `SELECT * FROM qcat_read.portfolios ${portfolios.where} ORDER BY portfolio_id`,
          portfolios.values,
        ),
        pool.query<StrategyPnlRow>(
          `${STRATEGY_PNL} ${strategies.where} GROUP BY p.portfolio_id, p.strategy_id
            ORDER BY p.portfolio_id, p.strategy_id`,
          strategies.values,
        ),
      ]);
      return { portfolios: p.rows.map(toPortfolio), strategies: s.rows.map(toStrategyPnl) };
    },
  );

  fastify.post(
    '/orders',
    commandRoute('orders:write', {
      tags: ['trading'],
      summary:
        'Place a manual order for a paper or live strategy on one of its symbols; the engine takes it in at its next cycle (202)',
      body: z.strictObject({
        strategyId: id,
        symbol,
        side: z.enum(['buy', 'sell']),
        type: z.enum(['market', 'limit', 'stop']),
        quantity: amount.describe('base currency'),
        limitPrice: amount.optional().describe('limit orders only'),
        stopPrice: amount.optional().describe('stop orders only'),
        reduceOnly: z.boolean().default(false),
      }),
      response: { 202: requestedAnswer },
    }),
    async (request, reply) => {
      const body = request.body;
      if ((body.type === 'limit') !== (body.limitPrice !== undefined))
        throw invalidOrder(
          'limitPrice',
          body.type === 'limit' ? 'required for a limit order' : 'only limit orders have one',
        );
      if ((body.type === 'stop') !== (body.stopPrice !== undefined))
        throw invalidOrder(
          'stopPrice',
          body.type === 'stop' ? 'required for a stop order' : 'only stop orders have one',
        );
      const { rows } = await pool.query<{ status: string; symbols: string[]; timeframe: string }>(
        'SELECT status, symbols, timeframe FROM qcat_read.strategies WHERE strategy_id = $1',
        [body.strategyId],
      );
      const strategy = rows[0];
      if (!strategy)
        throw new HttpProblem(
          404,
          'STRATEGY_NOT_FOUND',
          `strategy ${body.strategyId} does not exist`,
        );
      if (strategy.status !== 'paper' && strategy.status !== 'live')
        throw new HttpProblem(
          409,
          'STRATEGY_NOT_TRADING',
          `strategy ${body.strategyId} is ${strategy.status}: only paper and live strategies trade`,
        );
      if (!strategy.symbols.includes(body.symbol))
        throw new HttpProblem(
          409,
          'SYMBOL_NOT_TRADED',
          `strategy ${body.strategyId} does not trade ${body.symbol} (it trades ${strategy.symbols.join(', ')})`,
        );

      const command = commandOf(request, runtime.commands);
      // With an Idempotency-Key the id is derived from it, and the desk writes an id only once.
      const clientOrderId = `${MANUAL_ORDER_PREFIX}${command.newId('order')}`;
      const portfolioId = portfolioOf(strategy.timeframe);
      const requested: OrderRequest = {
        clientOrderId,
        portfolioId,
        strategyId: body.strategyId,
        symbol: body.symbol,
        side: body.side,
        type: body.type,
        quantity: body.quantity,
        limitPrice: body.limitPrice ?? null,
        stopPrice: body.stopPrice ?? null,
        reduceOnly: body.reduceOnly,
      };
      const result = await command.handle(desk, deskStream(portfolioId), {
        type: 'RequestOrder',
        order: requested,
        requestedAt: Date.now(),
      });
      void reply.header('location', `/api/v1/orders/${clientOrderId}`);
      return reply.code(202).send(requestAnswer(result, clientOrderId, portfolioId, 'requested'));
    },
  );

  fastify.delete(
    '/orders/:clientOrderId',
    commandRoute('orders:cancel', {
      tags: ['trading'],
      summary:
        'Ask to cancel an open order (manual or placed by a strategy); the engine cancels it at its next cycle (202)',
      params: z.object({ clientOrderId: id }),
      querystring: z
        .object({ reason: z.string().trim().min(1).max(500).optional(), minPosition })
        .strict(),
      body: z
        .strictObject({ reason: z.string().trim().min(1).max(500).optional() })
        .nullish()
        .describe('optional'),
      response: { 202: requestedAnswer },
    }),
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const { clientOrderId } = request.params;
      const { rows } = await pool.query<{ status: OrderRow['status']; portfolio_id: string }>(
        'SELECT status, portfolio_id FROM qcat_read.orders WHERE client_order_id = $1',
        [clientOrderId],
      );
      const row = rows[0];
      if (!row)
        throw new HttpProblem(404, 'ORDER_NOT_FOUND', `order ${clientOrderId} does not exist`);
      if (!isOpen(row.status))
        throw new HttpProblem(
          409,
          'ORDER_NOT_OPEN',
          `order ${clientOrderId} is ${row.status}: only accepted or partially filled orders can be cancelled`,
        );
      const reason = request.body?.reason ?? request.query.reason ?? 'MANUAL_CANCEL';
      const result = await commandOf(request, runtime.commands).handle(
        desk,
        deskStream(row.portfolio_id),
        { type: 'RequestCancel', clientOrderId, reason, requestedAt: Date.now() },
      );
      return reply
        .code(202)
        .send(requestAnswer(result, clientOrderId, row.portfolio_id, 'cancel_requested'));
    },
  );
};
