import { z } from 'zod';
import { exitsStream } from '../../../core/risk/common.js';
import { exitRulesSchema, exits, exitsKey, type ExitRules } from '../../../core/risk/exits.js';
import { positionStream } from '../../../core/trading/accounting.js';
import { HttpProblem } from '../../problem.js';
import {
  amount,
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  instant,
  instantOf,
  principalOf,
} from '../conventions.js';
import { commandRoute } from '../../command-route.js';
import { openTripOf } from '../../../core/trading/open-trip.js';
import type { RiskContext, ZodFastify } from './context.js';
import { PROJECTION, bookParams, reason, minPosition, exitsOut, iso } from './schemas.js';
/** A book's take-profit / stop-loss rules and moved levels. */
export function exitRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  readRoute(fastify, ctx);
  rulesRoute(fastify, ctx);
  levelsRoute(fastify, ctx);
}

function readRoute(fastify: ZodFastify, { runtime, queries, checkBook }: RiskContext): void {
  fastify.get(
    '/risk/exits/:portfolioId/:strategyId/:symbol',
    {
      // Not cached (readModel): reads the event store and the strategies read model.
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary: "A book's take-profit / stop-loss rules, its moved levels and its open round trip",
        params: bookParams,
        querystring: z.object({ minPosition }).strict(),
        response: { 200: exitsOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const { portfolioId, strategyId, symbol: name } = request.params;
      await checkBook(portfolioId, strategyId, name);
      const { snapshot } = await queries.risk.snapshot();
      const settings = snapshot.exits[exitsKey(portfolioId, strategyId, name)];
      const trip = openTripOf(
        await runtime.eventStore.readStream(positionStream(portfolioId, strategyId, name)),
      );
      const levels = settings?.levels ?? null;
      return {
        portfolioId,
        strategyId,
        symbol: name,
        rules: settings?.rules ?? null,
        levels: levels && { ...levels, openedAt: iso(levels.openedAt) },
        openTrip: trip && { openedAt: iso(trip.openedAt), quantity: trip.quantity },
      };
    },
  );
}

function rulesRoute(fastify: ZodFastify, { handle, as, checkBook }: RiskContext): void {
  fastify.put(
    '/risk/exits/:portfolioId/:strategyId/:symbol',
    commandRoute('risk:exits', {
      tags: ['risk'],
      summary:
        "Set a book's take-profit / stop-loss rules (omitted or null: none); evaluated on each bar",
      params: bookParams,
      body: exitRulesSchema.partial(),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { portfolioId, strategyId, symbol: name } = request.params;
      await checkBook(portfolioId, strategyId, name);
      const b = request.body;
      const rules: ExitRules = {
        stopLoss: b.stopLoss ?? null,
        takeProfit: b.takeProfit ?? null,
        trailing: b.trailing ?? null,
        atrStop: b.atrStop ?? null,
      };
      const result = await handle(request, as(exits), exitsStream(portfolioId, strategyId, name), {
        type: 'SetExitRules',
        portfolioId,
        strategyId,
        symbol: name,
        rules,
        by: principalOf(request).party,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}

function levelsRoute(fastify: ZodFastify, { runtime, handle, as, checkBook }: RiskContext): void {
  fastify.post(
    '/risk/exits/:portfolioId/:strategyId/:symbol/levels',
    commandRoute('risk:exits', {
      tags: ['risk'],
      summary:
        'Move the stop and/or take-profit price of the open round trip (null: back to the rules)',
      params: bookParams,
      body: z.strictObject({
        openedAt: instant
          .optional()
          .describe('the round trip the levels are for; default the open one'),
        stopPrice: amount.nullable().optional(),
        takeProfitPrice: amount.nullable().optional(),
        reason,
      }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { portfolioId, strategyId, symbol: name } = request.params;
      const b = request.body;
      if (b.stopPrice === undefined && b.takeProfitPrice === undefined)
        throw new HttpProblem(
          400,
          'VALIDATION_FAILED',
          'body: move stopPrice, takeProfitPrice or both',
        );
      await checkBook(portfolioId, strategyId, name);
      let openedAt = instantOf('openedAt', b.openedAt)?.getTime();
      if (openedAt === undefined) {
        const trip = openTripOf(
          await runtime.eventStore.readStream(positionStream(portfolioId, strategyId, name)),
        );
        if (!trip)
          throw new HttpProblem(
            409,
            'NO_OPEN_POSITION',
            `${strategyId} has no open position in ${name}: give openedAt for another round trip`,
          );
        openedAt = trip.openedAt;
      }
      const result = await handle(request, as(exits), exitsStream(portfolioId, strategyId, name), {
        type: 'MoveExitLevels',
        portfolioId,
        strategyId,
        symbol: name,
        openedAt,
        ...(b.stopPrice === undefined ? {} : { stopPrice: b.stopPrice }),
        ...(b.takeProfitPrice === undefined ? {} : { takeProfitPrice: b.takeProfitPrice }),
        by: principalOf(request).party,
        reason: b.reason,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}
