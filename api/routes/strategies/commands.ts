import { z } from 'zod';
import { type Strategy } from '../../../core/strategies/strategy.js';
import { commandAnswer, commandResultSchema, principalOf } from '../conventions.js';
import { commandOf, commandRoute } from '../../command-route.js';
import type { StrategyContext, ZodFastify } from './context.js';
import {
  createBody,
  definitionBody,
  editBody,
  idParams,
  reasonBody,
  requestAnswer,
} from './schemas.js';

/** Create a strategy. */
export function createRoute(fastify: ZodFastify, { runtime, handle }: StrategyContext): void {
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
}

/** Edit and submit. */
export function editRoutes(
  fastify: ZodFastify,
  { runtime, handle, opening }: StrategyContext,
): void {
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
}

/** Start in paper, request live, change parameters: each opens an approval request. */
export function approvalRoutes(
  fastify: ZodFastify,
  { runtime, handle, opening }: StrategyContext,
): void {
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
}

/** Pause, resume, retire. */
export function pauseResumeRetireRoutes(fastify: ZodFastify, { handle }: StrategyContext): void {
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
}
