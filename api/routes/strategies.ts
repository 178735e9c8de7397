// Over 400 lines: the strategy routes still hold their SQL; moving it to a query module and
// splitting them like risk/ and trading/ is issue #16's next step (ADR 025's exception list).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../core/access/roles.js';
import type { CommandResult } from '../../core/commands/idempotency.js';
import { STRATEGY_KIND_NAMES, STRATEGY_KINDS, TIMEFRAMES } from '../../core/strategies/kinds.js';
import {
  ALLOWED_COMMANDS,
  STRATEGY_STATES,
  strategies,
  strategyStream,
  type Strategy,
  type StrategyCommand,
} from '../../core/strategies/strategy.js';
import type { Redis } from 'ioredis';
import { isUnavailable } from '../../core/adapters/unavailable.js';
import type { Runtime } from '../../ops/runtime.js';
import { activeGenerationKey, redisViewKeys } from '../../projections/redis-target.js';
import type { LiveStrategyStatus } from '../../projections/strategies.js';
import { StrategyQueries, type StrategyRow } from '../../projections/strategy-queries.js';
import { HttpProblem } from '../problem.js';
import {
  amount,
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  pageLimit,
  positionCursor,
  positionString,
  principalOf,
  strategyIdSchema,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
const definitionBody = {
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000),
  kind: z.enum(STRATEGY_KIND_NAMES),
  symbols: z
    .array(symbol)
    .min(1)
    .max(50)
    .refine((list) => new Set(list).size === list.length, 'symbols must not repeat'),
  timeframe: z.enum(TIMEFRAMES),
  parameters: z
    .record(z.string().max(100), z.unknown())
    .describe("checked against the kind's parameter schema (GET /strategy-kinds)"),
  capitalRequest: amount.describe('capital asked for, in the quote currency'),
};
const createBody = z.strictObject({
  ...definitionBody,
  description: definitionBody.description.default(''),
  parameters: definitionBody.parameters.default({}),
});
const editBody = z
  .strictObject(definitionBody)
  .partial()
  .refine((body) => Object.keys(body).length > 0, 'send at least one field to change');
const reasonBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const idParams = z.object({ strategyId: strategyIdSchema });

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const json = z.record(z.string(), z.unknown());
const summary = z.object({
  strategyId: z.string(),
  name: z.string(),
  kind: z.string(),
  symbols: z.array(z.string()),
  timeframe: z.string(),
  status: z.enum(STRATEGY_STATES),
  owner: z.string(),
  parameterVersion: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  revision: z.string(),
});
const detail = summary.extend({
  description: z.string(),
  owner: party,
  parameters: json,
  capitalRequest: z.number(),
  pausedFrom: z.enum(['paper', 'live']).nullable(),
  pending: z.object({
    activation: z.string().nullable(),
    promotion: z.string().nullable(),
    parameterChange: z.object({ requestId: z.string(), parameters: json }).nullable(),
  }),
  allowedCommands: z.array(z.string()),
  position: z.string(),
});
const requestAnswer = commandResultSchema.extend({
  approvalRequestId: z.string().describe('the approval request opened; see /approvals/{id}'),
});

const toSummary = (row: StrategyRow): z.infer<typeof summary> => ({
  strategyId: row.strategy_id,
  name: row.state.name,
  kind: row.state.kind,
  symbols: row.state.symbols,
  timeframe: row.state.timeframe,
  status: row.state.status,
  owner: row.state.owner.id,
  parameterVersion: row.state.parameterVersion,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  revision: row.revision,
});

/** Strategies: the lifecycle's commands and the read models' queries (docs/user-guide.md). */
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

export const strategyRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  const queries = new StrategyQueries(runtime.pool);
  const handle = (request: FastifyRequest, command: StrategyCommand): Promise<CommandResult> =>
    commandOf(request, runtime.commands).handle(
      strategies,
      strategyStream(command.strategyId),
      command,
    );

  /** A command that opens an approval request: wait (briefly) until the flow has opened it. */
  const opening = async (
    reply: FastifyReply,
    result: CommandResult,
    approvalRequestId: string,
  ): Promise<z.infer<typeof requestAnswer>> => {
    await runtime.projections.waitFor('approval_flow', result.position, 2000);
    return { ...commandAnswer(reply, result), approvalRequestId };
  };

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
      const rows = await queries.list({ ...q, limit: q.limit + 1 });
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

  fastify.post(
    '/strategies',
    commandRoute('strategies:create', {
      tags: ['strategies'],
      summary: 'Create a strategy (a draft); parameters are checked against its kind',
      body: createBody,
      response: { 201: commandResultSchema.extend({ strategyId: z.string() }) },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const strategyId = commandOf(request, runtime.commands).newId('strategy');
      const result = await handle(request, {
        type: 'CreateStrategy',
        strategyId,
        owner: party,
        ...request.body,
        parameters: request.body.parameters as Strategy['parameters'],
      });
      void reply.header('location', `/api/v1/strategies/${strategyId}`);
      return reply.code(201).send({ ...commandAnswer(reply, result), strategyId });
    },
  );

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

  fastify.patch(
    '/strategies/:strategyId',
    commandRoute('strategies:edit', {
      tags: ['strategies'],
      summary: 'Edit a draft (If-Match guards against overwriting a concurrent edit)',
      params: idParams,
      body: editBody,
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { parameters, ...rest } = request.body;
      const result = await handle(request, {
        type: 'EditStrategy',
        strategyId: request.params.strategyId,
        changes: {
          ...rest,
          ...(parameters === undefined ? {} : { parameters: parameters as Strategy['parameters'] }),
        },
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/strategies/:strategyId/submit',
    commandRoute('strategies:operate', {
      tags: ['strategies'],
      summary: 'Submit a draft for review: opens a strategy-activation approval request',
      params: idParams,
      response: { 200: requestAnswer },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const requestId = commandOf(request, runtime.commands).newId('submit');
      const result = await handle(request, {
        type: 'SubmitForReview',
        strategyId: request.params.strategyId,
        requestId,
        by: party,
      });
      return opening(reply, result, requestId);
    },
  );

  fastify.post(
    '/strategies/:strategyId/start-paper',
    commandRoute('strategies:operate', {
      tags: ['strategies'],
      summary: 'Start paper trading an approved strategy',
      params: idParams,
      response: { 200: commandResultSchema },
    }),
    async (request, reply) =>
      commandAnswer(
        reply,
        await handle(request, {
          type: 'StartPaperTrading',
          strategyId: request.params.strategyId,
        }),
      ),
  );

  fastify.post(
    '/strategies/:strategyId/request-live',
    commandRoute('strategies:operate', {
      tags: ['strategies'],
      summary:
        'Ask to promote a paper strategy to live: a mode-change request (two approvers, one a risk officer)',
      params: idParams,
      response: { 200: requestAnswer },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const requestId = commandOf(request, runtime.commands).newId('request-live');
      const result = await handle(request, {
        type: 'RequestPromotion',
        strategyId: request.params.strategyId,
        requestId,
        by: party,
      });
      return opening(reply, result, requestId);
    },
  );

  fastify.post(
    '/strategies/:strategyId/parameters',
    commandRoute('strategies:edit', {
      tags: ['strategies'],
      summary:
        'Ask to change the parameters of an approved, paper, live or paused strategy; once approved they become the next version',
      params: idParams,
      body: z.strictObject({ parameters: definitionBody.parameters }),
      response: { 200: requestAnswer },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const requestId = commandOf(request, runtime.commands).newId('parameters');
      const result = await handle(request, {
        type: 'RequestParameterChange',
        strategyId: request.params.strategyId,
        requestId,
        by: party,
        parameters: request.body.parameters as Strategy['parameters'],
      });
      return opening(reply, result, requestId);
    },
  );

  fastify.post(
    '/strategies/:strategyId/pause',
    commandRoute('strategies:pause', {
      tags: ['strategies'],
      summary: 'Pause a paper or live strategy',
      params: idParams,
      body: reasonBody,
      response: { 200: commandResultSchema },
    }),
    async (request, reply) =>
      commandAnswer(
        reply,
        await handle(request, {
          type: 'PauseStrategy',
          strategyId: request.params.strategyId,
          reason: request.body.reason,
        }),
      ),
  );

  fastify.post(
    '/strategies/:strategyId/resume',
    commandRoute('strategies:operate', {
      tags: ['strategies'],
      summary: 'Resume a paused strategy in the mode it was paused from',
      params: idParams,
      response: { 200: commandResultSchema },
    }),
    async (request, reply) =>
      commandAnswer(
        reply,
        await handle(request, {
          type: 'ResumeStrategy',
          strategyId: request.params.strategyId,
        }),
      ),
  );

  fastify.post(
    '/strategies/:strategyId/retire',
    commandRoute('strategies:operate', {
      tags: ['strategies'],
      summary: 'Retire a strategy for good; its open approval requests are withdrawn',
      params: idParams,
      body: reasonBody,
      response: { 200: commandResultSchema },
    }),
    async (request, reply) =>
      commandAnswer(
        reply,
        await handle(request, {
          type: 'RetireStrategy',
          strategyId: request.params.strategyId,
          reason: request.body.reason,
        }),
      ),
  );

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
};
