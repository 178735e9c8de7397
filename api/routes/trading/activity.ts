import { z } from 'zod';
import { ORDER_STATUSES } from '../../../core/trading/orders.js';
import { HttpProblem } from '../../problem.js';
import { awaitPosition, cursorPage, timeRange } from '../conventions.js';
import { timeRangeOf } from '../conventions.js';
import type { TradingContext, ZodFastify } from './context.js';
import {
  PROJECTION,
  id,
  limit,
  after,
  minPosition,
  book,
  order,
  fill,
  trade,
  iso,
  toOrder,
  toFill,
} from './schemas.js';
/** `history=true`: archived rows too (the retention job's, ADR 032); default the hot ones. */
const history = z.enum(['true', 'false']).default('false');

/** Orders, fills and round trips. */
export function activityRoutes(fastify: ZodFastify, ctx: TradingContext): void {
  ordersRoutes(fastify, ctx);
  fillsRoute(fastify, ctx);
  tradesRoute(fastify, ctx);
}

/** The orders, and one with its fills. */
function ordersRoutes(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
            history,
          })
          .strict(),
        response: { 200: z.object({ orders: z.array(order), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const range = timeRangeOf(q);
      const rows = await queries.trading.orders({
        ...q,
        from: range.from,
        to: range.to,
        history: q.history === 'true',
      });
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
      const row = await queries.trading.order(clientOrderId);
      if (!row)
        throw new HttpProblem(404, 'ORDER_NOT_FOUND', `order ${clientOrderId} does not exist`);
      const fills = await queries.trading.fillsOf(clientOrderId);
      return { ...toOrder(row), fills: fills.map(toFill) };
    },
  );
}

function fillsRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
            history,
          })
          .strict(),
        response: { 200: z.object({ fills: z.array(fill), nextCursor: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const range = timeRangeOf(q);
      const rows = await queries.trading.fills({
        ...q,
        from: range.from,
        to: range.to,
        history: q.history === 'true',
      });
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.position);
      return { fills: page.map(toFill), nextCursor };
    },
  );
}

function tradesRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const range = timeRangeOf(q);
      const rows = await queries.trading.trades({ ...q, from: range.from, to: range.to });
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
}
