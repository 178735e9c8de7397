import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  CAPABILITIES,
  CAPABILITY_NAMES,
  parseThresholds,
} from '../../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import type { ApiServices } from '../services.js';
import { latestDecisions } from '../../projections/automation.js';
import { commandOf, commandRoute } from '../command-route.js';
import { commandAnswer, commandResultSchema } from './conventions.js';

const thresholds = z.record(z.string(), z.union([z.number(), z.string()]));
const decision = z.object({
  position: z.string(),
  recordedAt: z.string(),
  outcome: z.enum(['acted', 'refused', 'held']),
  type: z.string().describe('the event the action wrote, or the command refused or held'),
  streamId: z.string(),
  reason: z.string().nullable(),
  cause: z.string().nullable().describe('the causing event id (see /audit/causation)'),
});
const capabilityOut = z.object({
  name: z.enum(CAPABILITY_NAMES),
  number: z.number().int(),
  title: z.string(),
  enabled: z.boolean(),
  thresholds,
  defaults: thresholds,
  requires: z.array(z.string()),
  changedBy: z.string().nullable(),
  processManagers: z.array(z.string()),
  lastDecisions: z.array(decision),
});

/** GET /automation's answer. */
const overviewOut = z.object({
  held: z.string().nullable(),
  clock: z
    .object({
      source: z.enum(['wall', 'market']),
      ticked: z.record(z.string(), z.string()),
    })
    .describe(
      'what now is for the schedules (AUTOMATION_CLOCK) and the instant each process manager this process leads last ticked at',
    ),
  capabilities: z.array(capabilityOut),
});

/** The ten automation capabilities: the policy's switches and thresholds, and what each did. */
export const automationRoutes: FastifyPluginAsyncZod<{
  runtime: Pick<ApiServices, 'automation' | 'commands' | 'config' | 'pool'>;
}> = async (fastify, { runtime }) => {
  fastify.get(
    '/automation',
    {
      config: { permission: 'automation:read' },
      schema: {
        tags: ['automation'],
        summary:
          'Each automation capability: on or off, thresholds, its process managers and their last decisions with reasons; `held` names what holds all of them (kill switch, HALTED)',
        querystring: z.strictObject({
          decisions: z.coerce.number().int().min(0).max(50).default(5),
        }),
        response: {
          200: overviewOut,
        },
      },
    },
    async (request) => {
      const { state: policy } = await runtime.commands.load(
        automationPolicy,
        AUTOMATION_POLICY_STREAM,
      );
      const managers = CAPABILITY_NAMES.map((name) => runtime.automation.managersOf(name));
      const decisions = await latestDecisions(
        runtime.pool,
        managers.flat(),
        request.query.decisions,
      );
      return {
        held: (await runtime.automation.held()) ?? null,
        clock: { source: runtime.config.AUTOMATION_CLOCK, ticked: runtime.automation.ticked() },
        capabilities: CAPABILITY_NAMES.map((name, index) => {
          const names = managers[index] ?? [];
          return {
            name,
            number: CAPABILITIES[name].number,
            title: CAPABILITIES[name].title,
            enabled: policy[name].enabled,
            thresholds: policy[name].thresholds,
            defaults: parseThresholds(name, {}),
            requires: [...CAPABILITIES[name].requires],
            changedBy: policy[name].changedBy,
            processManagers: names,
            lastDecisions: names
              .flatMap((manager) => decisions.get(manager) ?? [])
              .sort((a, b) => Number(BigInt(b.position) - BigInt(a.position)))
              .slice(0, request.query.decisions)
              .map((row) => ({ ...row, recordedAt: row.recordedAt.toISOString() })),
          };
        }),
      };
    },
  );

  fastify.put(
    '/automation/:capability',
    commandRoute('automation:configure', {
      tags: ['automation'],
      summary:
        'Switch a capability on or off and change its thresholds (merged over the current ones); prerequisites must be on first',
      params: z.object({ capability: z.string().max(100) }),
      body: z.strictObject({ enabled: z.boolean().optional(), thresholds: thresholds.optional() }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const command = commandOf(request, runtime.commands);
      const { enabled, thresholds: changed } = request.body;
      const result = await command.handle(automationPolicy, AUTOMATION_POLICY_STREAM, {
        type: 'ConfigureAutomationCapability',
        capability: request.params.capability,
        ...(enabled === undefined ? {} : { enabled }),
        ...(changed === undefined ? {} : { thresholds: changed }),
        by: command.party,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
};
