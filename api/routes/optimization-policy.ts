import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { gateOf } from '../../core/optimization/gate.js';
import {
  MAX_RELATIVE_CHANGE,
  OPTIMIZATION_POLICY_STREAM,
  optimizationPolicy,
} from '../../core/optimization/policy.js';
import type { ApiServices } from '../services.js';
import { commandOf, commandRoute } from '../command-route.js';
import {
  commandAnswer,
  commandResultSchema,
  instant,
  newId,
  principalOf,
  strategyIdSchema,
  type ZodFastify,
} from './conventions.js';

const party = z.object({ id: z.string(), role: z.string() });
const standing = z.object({
  standingApprovalId: z.string(),
  requestId: z.string(),
  strategyId: z.string().nullable(),
  maxRelativeChange: z.number(),
  expiresAt: z.string(),
  requestedBy: party,
  reason: z.string(),
  status: z.enum(['pending', 'active', 'declined', 'revoked']),
  approvers: z.array(party),
  endedBecause: z.string().nullable(),
});

type PolicyServices = Pick<ApiServices, 'commands'>;

/**
 * The optimization policy (docs/optimization.md): the adoption gate in force — capability 2's
 * thresholds in the automation policy, its one source — and the standing approvals that let
 * automation adopt parameters within bounds without a second person. Routes are registered in
 * this order, which is openapi.json's.
 */
export const optimizationPolicyRoutes: FastifyPluginAsyncZod<{
  runtime: PolicyServices;
}> = async (fastify, { runtime }) => {
  policyRoute(fastify, runtime);
  standingApprovalRoutes(fastify, runtime);
};

function policyRoute(fastify: ZodFastify, runtime: PolicyServices): void {
  fastify.get(
    '/optimization-policy',
    {
      config: { permission: 'optimizations:read' },
      schema: {
        tags: ['optimizations'],
        summary:
          'The adoption gate in force (set with PUT /automation/adopt_parameters) and the standing approvals',
        response: {
          200: z.object({
            gate: z.object({
              minOutOfSampleSharpe: z.number(),
              minDeflatedSharpe: z.number(),
              maxPbo: z.number(),
              minTrades: z.number(),
            }),
            gateChangedBy: z.string().nullable(),
            standingApprovals: z.array(standing),
            revision: z.string(),
          }),
        },
      },
    },
    async () => {
      const [automation, policy] = await Promise.all([
        runtime.commands.load(automationPolicy, AUTOMATION_POLICY_STREAM),
        runtime.commands.load(optimizationPolicy, OPTIMIZATION_POLICY_STREAM),
      ]);
      const adopt = automation.state.adopt_parameters;
      return {
        gate: gateOf(adopt.thresholds),
        gateChangedBy: adopt.changedBy,
        standingApprovals: Object.values(policy.state.standing),
        revision: policy.revision.toString(),
      };
    },
  );
}

/** Request a standing approval, revoke one. */
function standingApprovalRoutes(fastify: ZodFastify, runtime: PolicyServices): void {
  fastify.post(
    '/optimization-policy/standing-approvals',
    commandRoute('optimizations:policy', {
      tags: ['optimizations'],
      summary:
        'Request a standing approval: passing optimizations of a strategy (or of all) apply without a second person when every parameter stays within ± maxRelativeChange of its live value. Another risk officer approves it (GET /approvals)',
      body: z.strictObject({
        strategyId: strategyIdSchema.nullable().describe('null: every strategy'),
        maxRelativeChange: z.number().gt(0).max(MAX_RELATIVE_CHANGE).describe('0.25 = ±25 %'),
        expiresAt: instant.describe('at most 90 days ahead'),
        reason: z.string().min(1).max(500),
      }),
      response: {
        202: commandResultSchema.extend({ standingApprovalId: z.string(), requestId: z.string() }),
      },
    }),
    async (request, reply) => {
      const { party: by } = principalOf(request);
      const standingApprovalId = newId(by, request.headers, 'standing-approval');
      const requestId = newId(by, request.headers, 'standing-approval-request');
      const result = await commandOf(request, runtime.commands).handle(
        optimizationPolicy,
        OPTIMIZATION_POLICY_STREAM,
        {
          type: 'RequestStandingApproval',
          standingApprovalId,
          requestId,
          strategyId: request.body.strategyId,
          maxRelativeChange: request.body.maxRelativeChange,
          expiresAt: request.body.expiresAt,
          by,
          reason: request.body.reason,
          now: new Date().toISOString(),
        },
      );
      return reply
        .code(202)
        .send({ ...commandAnswer(reply, result), standingApprovalId, requestId });
    },
  );

  fastify.post(
    '/optimization-policy/standing-approvals/:standingApprovalId/revoke',
    commandRoute('optimizations:policy', {
      tags: ['optimizations'],
      summary: 'Revoke a standing approval (pending or active): it allows nothing from now on',
      params: z.object({ standingApprovalId: z.uuid() }),
      body: z.strictObject({ reason: z.string().min(1).max(500) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { party: by } = principalOf(request);
      const result = await commandOf(request, runtime.commands).handle(
        optimizationPolicy,
        OPTIMIZATION_POLICY_STREAM,
        {
          type: 'RevokeStandingApproval',
          standingApprovalId: request.params.standingApprovalId,
          by,
          reason: request.body.reason,
        },
      );
      return commandAnswer(reply, result);
    },
  );
}
