import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { CAPABILITIES } from '../../core/capabilities/capabilities.js';
import { rankedData } from '../../core/hot-symbols/ranking.js';
import {
  hotSymbols,
  hotSymbolStream,
  recommendationExpiry,
  type HotSymbolCommand,
} from '../../core/hot-symbols/tradable.js';
import type { ApiServices } from '../services.js';
import { hotSymbolList } from '../../projections/hot-symbol-list.js';
import { latestRanking } from '../../projections/hot-symbols.js';
import { HttpProblem } from '../problem.js';
import { commandOf, commandRoute } from '../command-route.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  newId,
  positionString,
  principalOf,
  type ZodFastify,
} from './conventions.js';

/**
 * The tradable list of hot symbols (docs/hot-symbols.md): an analyst proposes a symbol the
 * latest ranking recommended, a risk officer other than the proposer approves or rejects it, and
 * an approved symbol stays tradable for the policy's `expiryDays`.
 */

const PROJECTION = 'hot_symbols';
const symbol = z
  .string()
  .regex(/^[A-Z0-9]{2,20}$/, 'expected 2 to 20 capital letters and digits, e.g. BTCUSDT');
const proposalId = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected a proposal id');
const params = z.object({ symbol });
const listRow = z.object({
  symbol: z.string(),
  status: z.enum(['tradable', 'expired', 'pending', 'proposal_expired', 'rejected']),
  proposalId: z.string(),
  reason: z.string(),
  proposedBy: z.string(),
  proposedAt: z.string(),
  rankingPosition: z.string(),
  rankedAt: z.string(),
  score: z.number().nullable(),
  recommendationExpiresAt: z.string(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  decisionNote: z.string().nullable(),
  tradableUntil: z.string().nullable(),
});

type HotSymbolServices = Pick<ApiServices, 'commands' | 'pool' | 'projections'>;

/** Routes are registered in this order, which is openapi.json's. */
export const hotSymbolListRoutes: FastifyPluginAsyncZod<{
  runtime: HotSymbolServices;
}> = async (fastify, { runtime }) => {
  listRoute(fastify, runtime);
  proposeRoute(fastify, runtime);
  decisionRoutes(fastify, runtime);
};

/** A command on the symbol's stream. */
function handle(
  runtime: HotSymbolServices,
  request: Parameters<typeof commandOf>[0],
  command: HotSymbolCommand,
) {
  return commandOf(request, runtime.commands).handle(
    hotSymbols,
    hotSymbolStream(command.symbol),
    command,
  );
}

function listRoute(fastify: ZodFastify, runtime: HotSymbolServices): void {
  fastify.get(
    '/hot-symbols/list',
    {
      // Not cached (no readModel): "tradable now" depends on the clock, and a symbol's expiry
      // writes no event that would empty the cache (ADR 009).
      config: { permission: 'market:read' },
      schema: {
        tags: ['hot-symbols'],
        summary:
          'Every symbol ever proposed: its latest proposal and decision, and whether it is tradable now (tradable ones first)',
        querystring: z.strictObject({ minPosition: positionString.optional() }),
        response: { 200: z.object({ items: z.array(listRow) }) },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      return { items: await hotSymbolList(runtime.pool, new Date()) };
    },
  );
}

function proposeRoute(fastify: ZodFastify, runtime: HotSymbolServices): void {
  fastify.post(
    '/hot-symbols/proposals',
    commandRoute('hot_symbols:propose', {
      tags: ['hot-symbols'],
      summary: `Propose a symbol the latest ranking recommended onto the tradable list (within 24 hours of that ranking); a risk officer approves it`,
      body: z.strictObject({ symbol, reason: z.string().trim().min(1).max(500) }),
      response: { 201: commandResultSchema.extend({ proposalId: z.string() }) },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const ranking = await latestRanking(runtime.pool);
      if (!ranking)
        throw new HttpProblem(409, 'NO_RANKING_YET', 'no hot-symbol ranking is recorded yet');
      const data = rankedData.parse(ranking.ranking);
      const { symbol: wanted, reason } = request.body;
      if (!data.recommended.includes(wanted))
        throw new HttpProblem(
          409,
          'NOT_RECOMMENDED',
          `body.symbol: ${wanted} is not recommended by the latest ranking (${new Date(data.at).toISOString()}: ${data.recommended.join(', ') || 'none'})`,
        );
      const id = `hs-${newId(party, request.headers, 'hot-symbol')}`;
      const result = await handle(runtime, request, {
        type: 'ProposeHotSymbol',
        symbol: wanted,
        proposalId: id,
        rankingPosition: ranking.position,
        rankedAt: data.at,
        score: data.scores.find((s) => s.symbol === wanted)?.score ?? null,
        recommendationExpiresAt: recommendationExpiry(data.at),
        reason,
        proposedBy: party,
        at: Date.now(),
      });
      void reply.code(201);
      return { ...commandAnswer(reply, result), proposalId: id };
    },
  );
}

/** A risk officer other than the proposer approves or rejects a proposal. */
function decisionRoutes(fastify: ZodFastify, runtime: HotSymbolServices): void {
  fastify.post(
    '/hot-symbols/:symbol/approve',
    commandRoute('hot_symbols:approve', {
      tags: ['hot-symbols'],
      summary:
        "Approve a proposed symbol onto the tradable list for the policy's expiryDays (four eyes: not the proposer; not after its recommendation expired)",
      params,
      body: z.strictObject({ proposalId, comment: z.string().trim().max(500).default('') }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { state } = await runtime.commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
      const { expiryDays } = CAPABILITIES.hot_symbols.thresholds.parse(
        state.hot_symbols.thresholds,
      );
      const result = await handle(runtime, request, {
        type: 'ApproveHotSymbol',
        symbol: request.params.symbol,
        proposalId: request.body.proposalId,
        comment: request.body.comment,
        expiryDays,
        by: party,
        at: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/hot-symbols/:symbol/reject',
    commandRoute('hot_symbols:approve', {
      tags: ['hot-symbols'],
      summary: 'Reject a proposed symbol, with the reason',
      params,
      body: z.strictObject({ proposalId, reason: z.string().trim().min(1).max(500) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const result = await handle(runtime, request, {
        type: 'RejectHotSymbol',
        symbol: request.params.symbol,
        proposalId: request.body.proposalId,
        reason: request.body.reason,
        by: party,
        at: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}
