import { z } from 'zod';
import { desk, deskStream, MANUAL_ORDER_PREFIX, portfolioOf } from '../../../core/engine/desk.js';
import type { CommandResult } from '../../../core/commands/idempotency.js';
import { isOpen, type OrderRequest } from '../../../core/trading/orders.js';
import { HttpProblem } from '../../problem.js';
import { amount, awaitPosition } from '../conventions.js';
import { commandOf, commandRoute } from '../../command-route.js';
import type { TradingContext, ZodFastify } from './context.js';
import { PROJECTION, symbol, id, minPosition, requestedAnswer, invalidOrder } from './schemas.js';
/** Manual orders and cancel requests (202: the engine takes them in at its next cycle). */
export function manualOrderRoutes(fastify: ZodFastify, ctx: TradingContext): void {
  placeRoute(fastify, ctx);
  cancelRoute(fastify, ctx);
}

/** The 202 answer: the order, its portfolio, and where the request was written. */
function requestAnswer(
  result: CommandResult,
  clientOrderId: string,
  portfolioId: string,
  status: 'requested' | 'cancel_requested',
): z.infer<typeof requestedAnswer> {
  return {
    clientOrderId,
    portfolioId,
    status,
    streamId: result.streamId,
    revision: result.nextExpectedRevision.toString(),
    position: result.position.toString(),
  };
}

/** The strategy of a manual order: one that trades (paper or live) symbol `name`; else 404 or 409. */
async function tradingStrategy(
  { runtime, queries }: TradingContext,
  strategyId: string,
  name: string,
) {
  let strategy = await queries.strategies.tradingOf(strategyId);
  // A refusal is checked against what is already written: right after `start-paper` the
  // strategies read model may not have caught up yet.
  if (strategy?.status !== 'paper' && strategy?.status !== 'live') {
    await runtime.projections.waitForHead('strategies');
    strategy = await queries.strategies.tradingOf(strategyId);
  }
  if (!strategy)
    throw new HttpProblem(404, 'STRATEGY_NOT_FOUND', `strategy ${strategyId} does not exist`);
  if (strategy.status !== 'paper' && strategy.status !== 'live')
    throw new HttpProblem(
      409,
      'STRATEGY_NOT_TRADING',
      `strategy ${strategyId} is ${strategy.status}: only paper and live strategies trade`,
    );
  if (!strategy.symbols.includes(name))
    throw new HttpProblem(
      409,
      'SYMBOL_NOT_TRADED',
      `strategy ${strategyId} does not trade ${name} (it trades ${strategy.symbols.join(', ')})`,
    );
  return strategy;
}

function placeRoute(fastify: ZodFastify, context: TradingContext): void {
  const { runtime } = context;
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
      const strategy = await tradingStrategy(context, body.strategyId, body.symbol);

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
}

function cancelRoute(fastify: ZodFastify, { runtime, queries }: TradingContext): void {
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
      const row = await queries.trading.order(clientOrderId);
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
}
