import { z } from 'zod';
import { KILL_SWITCH_STREAM, KILL_SWITCH_SUBJECT } from '../../../core/risk/common.js';
import { killSwitch } from '../../../core/risk/kill-switch.js';
import { HttpProblem } from '../../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  isoOrNull,
  principalOf,
} from '../conventions.js';
import { commandRoute } from '../../command-route.js';
import type { RiskQueries } from '../../../projections/risk-queries.js';
import type { RiskContext, ZodFastify } from './context.js';
import { PROJECTION, reason, minPosition, killSwitchOut, requestAnswer } from './schemas.js';
/** The kill switch: read, engage, release requests. */
export function killSwitchRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  readRoute(fastify, ctx);
  engageRoute(fastify, ctx);
  releaseRequestRoute(fastify, ctx);
}

function readRoute(fastify: ZodFastify, { runtime, queries }: RiskContext): void {
  fastify.get(
    '/risk/kill-switch',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary: 'The kill switch: engaged since when, by whom, why; the last release',
        querystring: z.object({ minPosition }).strict(),
        response: { 200: killSwitchOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      return killSwitchAnswer(queries.risk);
    },
  );
}

function engageRoute(fastify: ZodFastify, { handle, as }: RiskContext): void {
  fastify.post(
    '/risk/kill-switch',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Engage the kill switch: every order but reduce-only exits is denied; with flatten, the engine closes every position. Released only by an approved reset',
      body: z.strictObject({ reason, flatten: z.boolean().default(false) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const result = await handle(request, as(killSwitch), KILL_SWITCH_STREAM, {
        type: 'EngageKillSwitch',
        by: principalOf(request).party,
        reason: request.body.reason,
        flatten: request.body.flatten,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}

function releaseRequestRoute(fastify: ZodFastify, { runtime, openRequest }: RiskContext): void {
  fastify.post(
    '/risk/kill-switch/release-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to release the kill switch: a risk_reset approval request (a risk officer other than you approves)',
      body: z.strictObject({ reason }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const { state } = await runtime.commands.load(killSwitch, KILL_SWITCH_STREAM);
      if (!state.engaged)
        throw new HttpProblem(409, 'KILL_SWITCH_NOT_ENGAGED', 'the kill switch is not engaged');
      return openRequest(
        request,
        reply,
        'risk-kill-switch-release',
        'risk_reset',
        { ...KILL_SWITCH_SUBJECT },
        {},
        request.body.reason,
      );
    },
  );
}

/** The kill switch as the read model holds it; released (never engaged) while it has no row. */
async function killSwitchAnswer(risk: RiskQueries): Promise<z.infer<typeof killSwitchOut>> {
  const r = await risk.killSwitch();
  if (!r)
    return {
      engaged: false,
      flatten: false,
      since: null,
      engagedBy: null,
      reason: '',
      releasedBy: null,
      releasedAt: null,
      releaseRequestId: null,
      position: null,
    };
  return {
    engaged: r.engaged,
    flatten: r.flatten,
    since: isoOrNull(r.since),
    engagedBy: r.engaged_by,
    reason: r.reason,
    releasedBy: r.released_by,
    releasedAt: isoOrNull(r.released_at),
    releaseRequestId: r.release_request_id,
    position: r.position,
  };
}
