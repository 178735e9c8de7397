import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { rankingCommand } from '../../automation/hot-symbols/ranking-command.js';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import {
  HOT_SYMBOLS_STREAM,
  hotSymbolsRanking,
  rankedData,
} from '../../core/hot-symbols/ranking.js';
import type { ApiServices } from '../services.js';
import { latestRanking } from '../../projections/hot-symbols.js';
import { hotSymbolListRoutes } from './hot-symbol-list.js';
import { HttpProblem } from '../problem.js';
import { commandOf, commandRoute } from '../command-route.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  positionString,
} from './conventions.js';

const PROJECTION = 'hot_symbols';
const dimension = z.object({
  z: z.number().nullable(),
  rank: z.number().nullable(),
  missing: z.string().optional(),
});
const rankingOut = z.object({
  position: z.string(),
  rankedBy: z.string(),
  at: z.string(),
  trigger: z.enum(['schedule', 'manual']),
  weights: z.record(z.string(), z.number()),
  topN: z.number().int(),
  minScore: z.number(),
  recommended: z.array(z.string()),
  scores: z.array(
    z.object({
      symbol: z.string(),
      score: z.number().nullable(),
      dimensions: z.record(z.string(), dimension),
    }),
  ),
});

/** Hot symbols (capability 10, docs/hot-symbols.md): the latest ranking, and one on demand. */
export const hotSymbolRoutes: FastifyPluginAsyncZod<{
  runtime: Pick<ApiServices, 'commands' | 'pool' | 'projections'>;
}> = async (fastify, { runtime }) => {
  await fastify.register(hotSymbolListRoutes, { runtime });

  fastify.get(
    '/hot-symbols',
    {
      config: { permission: 'market:read', readModel: PROJECTION },
      schema: {
        tags: ['hot-symbols'],
        summary:
          'The latest hot-symbol ranking: every symbol with its score and five dimensions (missing ones say why), and what was recommended',
        querystring: z.strictObject({ minPosition: positionString.optional() }),
        response: { 200: rankingOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const row = await latestRanking(runtime.pool);
      if (!row)
        throw new HttpProblem(404, 'NO_RANKING_YET', 'no hot-symbol ranking is recorded yet');
      const data = rankedData.parse(row.ranking);
      return {
        position: row.position,
        rankedBy: row.actor,
        ...data,
        at: new Date(data.at).toISOString(),
      };
    },
  );

  fastify.post(
    '/hot-symbols/rankings',
    commandRoute('hot_symbols:rank', {
      tags: ['hot-symbols'],
      summary:
        "Rank the symbols now on the stored hourly candles, with the policy's weights (also when the scheduled ranking is off)",
      response: { 201: commandResultSchema },
    }),
    async (request, reply) => {
      const { state } = await runtime.commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
      const at = Math.floor(Date.now() / 60_000) * 60_000;
      const command = await rankingCommand(
        new MarketDataStore(runtime.pool),
        at,
        state.hot_symbols.thresholds,
        'manual',
      );
      const result = await commandOf(request, runtime.commands).handle(
        hotSymbolsRanking,
        HOT_SYMBOLS_STREAM,
        command,
      );
      void reply.code(201);
      return commandAnswer(reply, result);
    },
  );
};
