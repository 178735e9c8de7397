import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  manualProposal,
  PortfolioNotFound,
  PortfolioNotValued,
} from '../../automation/allocation/propose.js';
import { portfolioStream } from '../../core/portfolio/events.js';
import { portfolios, type PortfolioCommand } from '../../core/portfolio/portfolio.js';
import type { ApiServices } from '../services.js';
import { AllocationQueries } from '../../projections/allocation-queries.js';
import { HttpProblem } from '../problem.js';
import { commandOf, commandRoute } from '../command-route.js';
import {
  commandAnswer,
  commandResultSchema,
  newId,
  pageLimit,
  positionString,
  principalOf,
  type ZodFastify,
} from './conventions.js';

/**
 * Portfolio allocations (docs/portfolio.md): read the allocation in force, target against actual
 * and the proposals with their figures; set the policy and the members; propose. Approving a
 * proposal that needs four eyes goes through the approvals API (kind `allocation_change`).
 */

const id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected letters, digits, ., _ or -');
const params = z.object({ portfolioId: id });
const json = z.record(z.string(), z.unknown());
const weight = z.number().min(0, 'must be ≥ 0').max(1, 'must be ≤ 1');

type PortfolioServices = Pick<ApiServices, 'commands' | 'pool'>;

/** What the portfolio routes share: the services and the allocations' queries. */
interface PortfolioContext {
  runtime: PortfolioServices;
  queries: AllocationQueries;
}

/** Routes are registered in this order, which is openapi.json's. */
export const portfolioRoutes: FastifyPluginAsyncZod<{
  runtime: PortfolioServices;
}> = async (fastify, { runtime }) => {
  const context = { runtime, queries: new AllocationQueries(runtime.pool) };
  readRoutes(fastify, context);
  policyRoute(fastify, context);
  memberRoutes(fastify, context);
  proposeRoute(fastify, context);
};

/** A command on the portfolio's stream. */
function handle(
  runtime: PortfolioServices,
  request: FastifyRequest,
  portfolioId: string,
  command: PortfolioCommand,
) {
  return commandOf(request, runtime.commands).handle(
    portfolios,
    portfolioStream(portfolioId),
    command,
  );
}

/** The allocation in force, and the proposals. */
function readRoutes(fastify: ZodFastify, { queries }: PortfolioContext): void {
  fastify.get(
    '/portfolios/:portfolioId/allocation',
    {
      config: { permission: 'portfolios:read' },
      schema: {
        tags: ['portfolios'],
        summary:
          'The policy, members and allocation in force: target against actual per strategy, with the figures of the proposal applied',
        params,
        response: { 200: json },
      },
    },
    async (request) => {
      const { portfolioId } = request.params;
      const portfolio = await queries.portfolio(portfolioId);
      if (!portfolio)
        throw new HttpProblem(
          404,
          'PORTFOLIO_NOT_FOUND',
          `portfolio ${portfolioId} has no allocation policy`,
        );
      const applied = await queries.applied(portfolioId);
      const proposal = applied
        ? await queries.proposal(portfolioId, applied.proposalId)
        : undefined;
      return {
        portfolioId,
        policy: portfolio.policy,
        policyVersion: portfolio.policyVersion,
        members: portfolio.members,
        allocation: applied ?? null,
        strategies: await queries.drift(portfolioId),
        riskContributions: proposal?.inputs['riskContributions'] ?? null,
        expectedVolatility: proposal?.inputs['expectedVolatility'] ?? null,
      };
    },
  );

  fastify.get(
    '/portfolios/:portfolioId/allocation/proposals',
    {
      config: { permission: 'portfolios:read' },
      schema: {
        tags: ['portfolios'],
        summary:
          'Past and pending proposals, newest first: trigger and figures, method, inputs, outcome',
        params,
        querystring: z.object({
          limit: pageLimit(200, 20),
          before: positionString.optional().describe('position cursor'),
        }),
        response: { 200: z.object({ items: z.array(json) }) },
      },
    },
    async (request) => {
      const { limit, before } = request.query;
      const items = await queries.proposals(
        request.params.portfolioId,
        limit,
        before === undefined ? undefined : BigInt(before),
      );
      return { items };
    },
  );
}

function policyRoute(fastify: ZodFastify, { runtime }: PortfolioContext): void {
  fastify.put(
    '/portfolios/:portfolioId/allocation/policy',
    commandRoute('portfolios:manage', {
      tags: ['portfolios'],
      summary:
        'Set the allocation policy (method, constraints, rebalance rules, sizing); defaults fill the rest',
      params,
      body: z.record(z.string(), z.json()),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { portfolioId } = request.params;
      const result = await handle(runtime, request, portfolioId, {
        type: 'SetPolicy',
        portfolioId,
        policy: request.body,
        by: party,
        at: new Date().toISOString(),
      });
      return commandAnswer(reply, result);
    },
  );
}

/** Add and remove a member strategy. */
function memberRoutes(fastify: ZodFastify, { runtime }: PortfolioContext): void {
  fastify.post(
    '/portfolios/:portfolioId/members',
    commandRoute('portfolios:manage', {
      tags: ['portfolios'],
      summary: 'Add a member strategy (a rebalance follows when the policy says so)',
      params,
      body: z.object({ strategyId: id }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { portfolioId } = request.params;
      const { strategyId } = request.body;
      const at = new Date().toISOString();
      return commandAnswer(
        reply,
        await handle(runtime, request, portfolioId, {
          type: 'AddMember',
          portfolioId,
          strategyId,
          by: party,
          at,
        }),
      );
    },
  );

  fastify.delete(
    '/portfolios/:portfolioId/members/:strategyId',
    commandRoute('portfolios:manage', {
      tags: ['portfolios'],
      summary: 'Remove a member strategy: it gets no capital and its positions are closed',
      params: params.extend({ strategyId: id }),
      querystring: z.object({ reason: z.string().trim().min(1).max(500).default('removed') }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { portfolioId, strategyId } = request.params;
      const at = new Date().toISOString();
      const command: PortfolioCommand = {
        type: 'RemoveMember',
        portfolioId,
        strategyId,
        reason: request.query.reason,
        by: party,
        at,
      };
      return commandAnswer(reply, await handle(runtime, request, portfolioId, command));
    },
  );
}

function proposeRoute(fastify: ZodFastify, { runtime, queries }: PortfolioContext): void {
  fastify.post(
    '/portfolios/:portfolioId/allocation/proposals',
    commandRoute('portfolios:propose', {
      tags: ['portfolios'],
      summary:
        "Propose an allocation: computed with the policy's method, or the weights given (method manual). Above the policy's threshold it waits for an approver (GET /approvals)",
      params,
      body: z
        .object({
          weights: z
            .record(id, weight)
            .optional()
            .describe('by strategy; every member, nothing else'),
          reason: z.string().trim().min(1).max(500).default('asked by a person'),
        })
        .strict(),
      response: { 200: commandResultSchema.extend({ proposalId: z.string() }) },
    }),
    async (request, reply) => {
      const { party } = principalOf(request);
      const { portfolioId } = request.params;
      const state = (await runtime.commands.load(portfolios, portfolioStream(portfolioId))).state;
      const proposalId = `manual-${newId(party, request.headers, 'allocation')}`;
      let proposal;
      try {
        proposal = await manualProposal(queries, state, {
          portfolioId,
          proposalId,
          weights: request.body.weights,
          reason: request.body.reason,
          by: party,
          now: new Date(),
        });
      } catch (error) {
        if (error instanceof PortfolioNotFound)
          throw new HttpProblem(404, 'PORTFOLIO_NOT_FOUND', error.message);
        if (error instanceof PortfolioNotValued)
          throw new HttpProblem(409, 'NO_VALUATION', error.message);
        throw error;
      }
      const result = await commandOf(request, runtime.commands).run((context) =>
        proposal.issue(runtime.commands, context),
      );
      return { ...commandAnswer(reply, result), proposalId };
    },
  );
}
