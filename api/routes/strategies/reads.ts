import { z } from 'zod';
import { STRATEGY_KIND_NAMES, STRATEGY_KINDS } from '../../../core/strategies/kinds.js';
import { ALLOWED_COMMANDS, STRATEGY_STATES } from '../../../core/strategies/strategy.js';
import type { Redis } from 'ioredis';
import { isUnavailable } from '../../../core/adapters/unavailable.js';
import { activeGenerationKey, redisViewKeys } from '../../../projections/redis-target.js';
import type { LiveStrategyStatus } from '../../../projections/strategies.js';
import { HttpProblem } from '../../problem.js';
import {
  awaitPosition,
  cursorPage,
  pageLimit,
  positionCursor,
  positionString,
} from '../conventions.js';
import type { StrategyContext, ZodFastify } from './context.js';
import { detail, idParams, json, party, summary, symbol, toSummary } from './schemas.js';

/** The strategy_status Redis view: every strategy's status, from its active generation. */
async function liveStatusFromRedis(
  redis: Redis,
  prefix: string,
): Promise<Record<string, LiveStrategyStatus>> {
  const generation = Number(
    (await redis.get(activeGenerationKey(prefix, 'strategy_status'))) ?? '1',
  );
  const key = `${redisViewKeys(prefix, 'strategy_status', generation).data}status`;
  const all = await redis.hgetall(key);
  return Object.fromEntries(
    Object.entries(all).map(([id, value]) => [id, JSON.parse(value) as LiveStrategyStatus]),
  );
}

/** The strategy kinds and their parameters' schemas. */
export function kindsRoute(fastify: ZodFastify, _context: StrategyContext): void {
  fastify.get(
    '/strategy-kinds',
    {
      config: { permission: 'strategies:read' },
      schema: {
        tags: ['strategies'],
        summary: 'The strategy kinds and the JSON Schema of their parameters',
        response: {
          200: z.array(
            z.object({
              name: z.string(),
              title: z.string(),
              description: z.string(),
              parameters: json,
            }),
          ),
        },
      },
    },
    () =>
      STRATEGY_KINDS.map((kind) => ({
        name: kind.name,
        title: kind.title,
        description: kind.description,
        parameters: z.toJSONSchema(kind.parameters, { io: 'input' }),
      })),
  );
}

/** The list and the live status of strategies. */
export function listRoutes(fastify: ZodFastify, { runtime, queries }: StrategyContext): void {
  fastify.get(
    '/strategies',
    {
      config: { permission: 'strategies:read', readModel: 'strategies' },
      schema: {
        tags: ['strategies'],
        summary: 'Strategies, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            state: z.enum(STRATEGY_STATES).optional(),
            kind: z.enum(STRATEGY_KIND_NAMES).optional(),
            symbol: symbol.optional(),
            owner: z.string().min(1).max(200).optional().describe('the owner id, apikey:<keyId>'),
            after: positionCursor,
            limit: pageLimit(500, 50),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: {
          200: z.object({ strategies: z.array(summary), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'strategies', q.minPosition, reply);
      const rows = await queries.list(q);
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.created_position);
      return { strategies: page.map(toSummary), nextCursor };
    },
  );

  fastify.get(
    '/strategies/live-status',
    {
      // Not cached (readModel): answers from Redis when there is one.
      config: { permission: 'strategies:read' },
      schema: {
        tags: ['strategies'],
        summary:
          'Live status of every strategy: the Redis view, or the PostgreSQL read model without Redis',
        response: {
          200: z.record(
            z.string(),
            z.object({ status: z.string(), position: z.string(), since: z.string() }),
          ),
        },
      },
    },
    async (request) => {
      const redis = runtime.redis;
      if (redis) {
        try {
          return await liveStatusFromRedis(redis, runtime.config.QCAT_REDIS_PREFIX);
        } catch (error) {
          if (!isUnavailable(error)) throw error;
          // Redis is optional: while it is away the read model answers (maybe a moment behind).
          request.log.warn({ err: error }, 'live status: Redis does not answer; read model used');
        }
      }
      return Object.fromEntries(
        (await queries.statuses()).map((row) => [
          row.strategy_id,
          { status: row.status, position: row.position, since: row.updated_at.toISOString() },
        ]),
      );
    },
  );
}

/** One strategy. */
export function detailRoute(fastify: ZodFastify, { runtime, queries }: StrategyContext): void {
  fastify.get(
    '/strategies/:strategyId',
    {
      config: { permission: 'strategies:read', readModel: 'strategies' },
      schema: {
        tags: ['strategies'],
        summary: 'One strategy with its current parameter version; ETag is its revision',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: { 200: detail },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'strategies', request.query.minPosition, reply);
      const row = await queries.row(request.params.strategyId);
      if (!row)
        throw new HttpProblem(
          404,
          'STRATEGY_NOT_FOUND',
          `strategy ${request.params.strategyId} does not exist`,
        );
      void reply.header('etag', `"${row.revision}"`);
      const s = row.state;
      return {
        ...toSummary(row),
        description: s.description,
        owner: s.owner,
        parameters: s.parameters,
        capitalRequest: s.capitalRequest,
        pausedFrom: s.pausedFrom,
        pending: s.pending,
        allowedCommands: [...ALLOWED_COMMANDS[s.status]],
        position: row.position,
      };
    },
  );
}

/** A strategy's history. */
export function historyRoute(fastify: ZodFastify, { runtime, queries }: StrategyContext): void {
  fastify.get(
    '/strategies/:strategyId/history',
    {
      config: { permission: 'strategies:read', readModel: 'strategies' },
      schema: {
        tags: ['strategies'],
        summary: 'Every event of one strategy and of its approval requests, with actor and time',
        params: idParams,
        querystring: z
          .object({
            after: positionString.optional(),
            limit: pageLimit(1000, 200),
            minPosition: positionString.optional(),
          })
          .strict(),
        response: {
          200: z.object({
            events: z.array(
              z.object({
                position: z.string(),
                recordedAt: z.string(),
                streamId: z.string(),
                type: z.string(),
                actor: z.string(),
                data: json,
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'strategies', q.minPosition, reply);
      const rows = await queries.history(request.params.strategyId, q.after ?? '0', q.limit + 1);
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.position);
      return {
        events: page.map((row) => ({
          position: row.position,
          recordedAt: row.recorded_at.toISOString(),
          streamId: row.stream_id,
          type: row.type,
          actor: row.actor,
          data: row.data,
        })),
        nextCursor,
      };
    },
  );
}

/** A strategy's parameter versions. */
export function parameterVersionsRoute(
  fastify: ZodFastify,
  { runtime, queries }: StrategyContext,
): void {
  fastify.get(
    '/strategies/:strategyId/parameter-versions',
    {
      config: { permission: 'strategies:read', readModel: 'strategies' },
      schema: {
        tags: ['strategies'],
        summary: 'Every parameter version of one strategy, with who approved it',
        params: idParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: {
          200: z.array(
            z.object({
              version: z.number(),
              parameters: json,
              requestId: z.string().nullable(),
              approvers: z.array(party),
              recordedAt: z.string(),
            }),
          ),
        },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'strategies', request.query.minPosition, reply);
      const rows = await queries.parameterVersions(request.params.strategyId);
      return rows.map((row) => ({
        version: row.version,
        parameters: row.parameters,
        requestId: row.request_id,
        approvers: row.approvers,
        recordedAt: row.recorded_at.toISOString(),
      }));
    },
  );
}
