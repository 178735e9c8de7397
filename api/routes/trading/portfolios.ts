import { z } from 'zod';
import { TIMEFRAMES } from '../../../core/strategies/kinds.js';
import { HttpProblem } from '../../problem.js';
import {
  awaitPosition,
  cursorPage,
  instant,
  instantOf,
  pageLimit,
  timeRange,
} from '../conventions.js';
import type { PortfolioRow, TradingQueries } from '../../../projections/trading-queries.js';
import { timeRangeOf } from '../conventions.js';
import type { TradingContext, ZodFastify } from './context.js';
import {
  PROJECTION,
  id,
  minPosition,
  book,
  position,
  portfolio,
  strategyPnl,
  iso,
  toPortfolio,
  toStrategyPnl,
  INTERVALS,
} from './schemas.js';
/** Positions, portfolios, equity and PnL. */
export function portfolioReadRoutes(fastify: ZodFastify, ctx: TradingContext): void {
  positionsRoute(fastify, ctx);
  portfoliosRoutes(fastify, ctx);
  equityRoute(fastify, ctx);
  pnlRoute(fastify, ctx);
}

function positionsRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const rows = await queries.trading.positions(q);
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
}

/** The portfolios, and one. */
function portfoliosRoutes(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const rows = await queries.trading.portfolios();
      return { portfolios: rows.map(toPortfolio) };
    },
  );

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
      const row = await portfolioRow(queries.trading, request.params.portfolioId);
      const rows = await queries.trading.strategyPnl({ portfolioId: row.portfolio_id });
      return { ...toPortfolio(row), strategies: rows.map(toStrategyPnl) };
    },
  );
}

function equityRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const { portfolio_id: portfolioId } = await portfolioRow(
        queries.trading,
        request.params.portfolioId,
      );
      const range = timeRangeOf(q);
      const rows = await queries.trading.equity(portfolioId, {
        from: range.from,
        to: range.to,
        after: instantOf('after', q.after),
        interval: q.interval && INTERVALS[q.interval],
        limit: q.limit,
      });
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => iso(r.time));
      return {
        portfolioId,
        points: page.map((r) => ({ time: iso(r.time), equity: r.equity, cash: r.cash })),
        nextCursor,
      };
    },
  );
}

function pnlRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const [p, s] = await Promise.all([
        queries.trading.portfolios(q.portfolioId),
        queries.trading.strategyPnl(q),
      ]);
      return { portfolios: p.map(toPortfolio), strategies: s.map(toStrategyPnl) };
    },
  );
}

/** The portfolio from the read model, or 404. */
async function portfolioRow(trading: TradingQueries, portfolioId: string): Promise<PortfolioRow> {
  const row = await trading.portfolio(portfolioId);
  if (!row)
    throw new HttpProblem(404, 'PORTFOLIO_NOT_FOUND', `portfolio ${portfolioId} does not exist`);
  return row;
}
