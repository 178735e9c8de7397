import { z } from 'zod';
import { RISK_RULES } from '../../../core/risk/trading-state.js';
import { awaitPosition, cursorPage, isoOrNull, timeRange } from '../conventions.js';
import { timeRangeOf } from '../conventions.js';
import type { RiskContext, ZodFastify } from './context.js';
import {
  PROJECTION,
  symbol,
  id,
  scopeType,
  limit,
  after,
  minPosition,
  trigger,
  deniedOrder,
} from './schemas.js';
/** What the risk control did: breaker triggers and denied orders. */
export function historyRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  triggersRoute(fastify, ctx);
  deniedOrdersRoute(fastify, ctx);
}

function triggersRoute(fastify: ZodFastify, { runtime, queries }: RiskContext): void {
  fastify.get(
    '/risk/triggers',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary: 'Circuit breaker triggers, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            rule: z.enum(RISK_RULES).optional(),
            scopeType: scopeType.optional(),
            scopeId: id.optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ triggers: z.array(trigger), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const range = timeRangeOf(q);
      const rows = await queries.risk.triggers({ ...q, from: range.from, to: range.to });
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => r.position);
      return {
        triggers: page.map((r) => ({
          triggerId: r.trigger_id,
          rule: r.rule,
          scopeType: r.scope_type,
          scopeId: r.scope_id,
          threshold: r.threshold,
          observed: r.observed,
          reference: r.reference,
          value: r.value,
          window: { from: r.window_from.toISOString(), to: r.window_to.toISOString() },
          action: r.action,
          until: isoOrNull(r.until),
          actor: r.actor,
          firedAt: r.fired_at.toISOString(),
          position: r.position,
        })),
        nextCursor,
      };
    },
  );
}

function deniedOrdersRoute(fastify: ZodFastify, { runtime, queries }: RiskContext): void {
  fastify.get(
    '/risk/denied-orders',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary:
          'Orders the pre-trade check denied, oldest first, with their code; cursor-paginated',
        querystring: z
          .object({
            code: z
              .string()
              .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'expected a code such as TRADING_HALTED')
              .optional(),
            portfolioId: id.optional(),
            strategyId: id.optional(),
            symbol: symbol.optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ deniedOrders: z.array(deniedOrder), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const range = timeRangeOf(q);
      const rows = await queries.risk.deniedOrders({ ...q, from: range.from, to: range.to });
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => r.position);
      return {
        deniedOrders: page.map((r) => ({
          clientOrderId: r.client_order_id,
          portfolioId: r.portfolio_id,
          strategyId: r.strategy_id,
          symbol: r.symbol,
          side: r.side,
          quantity: r.quantity,
          code: r.code,
          reason: r.reason,
          deniedAt: r.denied_at.toISOString(),
          actor: r.actor,
          position: r.position,
        })),
        nextCursor,
      };
    },
  );
}
