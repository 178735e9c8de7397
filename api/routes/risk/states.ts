import { z } from 'zod';
import { tradingStateStream, tradingStateSubject } from '../../../core/risk/common.js';
import { effectiveState, tradingStates } from '../../../core/risk/trading-state.js';
import { HttpProblem } from '../../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  isoOrNull,
  principalOf,
} from '../conventions.js';
import { commandRoute } from '../../command-route.js';
import type { RiskContext, ZodFastify } from './context.js';
import {
  PROJECTION,
  scopeParams,
  reason,
  stateRow,
  requestAnswer,
  temporaryOf,
  scopeCursorOf,
  scopeListQuery,
} from './schemas.js';
/** Trading states: read, make stricter, reset requests. */
export function stateRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  listRoute(fastify, ctx);
  setRoute(fastify, ctx);
  resetRequestRoute(fastify, ctx);
}

function listRoute(fastify: ZodFastify, { runtime, queries }: RiskContext): void {
  fastify.get(
    '/risk/states',
    {
      // Not cached (readModel): the effective state depends on the clock (temporary states end).
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary:
          'Trading states of every scope whose state ever changed (others are ACTIVE), by scope',
        querystring: scopeListQuery,
        response: {
          200: z.object({ states: z.array(stateRow), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const rows = await queries.risk.states(q);
      const now = Date.now();
      const { page, nextCursor } = cursorPage(rows, q.limit, scopeCursorOf);
      return {
        states: page.map((r) => ({
          scopeType: r.scope_type,
          scopeId: r.scope_id,
          state: effectiveState({ base: r.state, temporary: r.temporary }, now),
          base: r.state,
          temporary: temporaryOf(r.temporary),
          reason: r.reason,
          changedBy: r.changed_by,
          changedAt: r.changed_at.toISOString(),
          resetAt: isoOrNull(r.reset_at),
          requestId: r.request_id,
          position: r.position,
        })),
        nextCursor,
      };
    },
  );
}

function setRoute(fastify: ZodFastify, { handle, as, checkScope }: RiskContext): void {
  fastify.post(
    '/risk/states/:scopeType/:scopeId',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Make a scope stricter at once (HALTED or REDUCING); loosening it is a reset request',
      params: scopeParams,
      body: z.strictObject({ state: z.enum(['HALTED', 'REDUCING']), reason }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const result = await handle(request, as(tradingStates), tradingStateStream(scope), {
        type: 'MoveTradingState',
        scope,
        to: request.body.state,
        by: principalOf(request).party,
        reason: request.body.reason,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}

function resetRequestRoute(
  fastify: ZodFastify,
  { runtime, checkScope, openRequest }: RiskContext,
): void {
  fastify.post(
    '/risk/states/:scopeType/:scopeId/reset-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to reset a scope to ACTIVE (or REDUCING): a risk_reset approval request; the reset also re-arms its breakers',
      params: scopeParams,
      body: z.strictObject({ to: z.enum(['ACTIVE', 'REDUCING']).default('ACTIVE'), reason }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const { to } = request.body;
      const { state } = await runtime.commands.load(tradingStates, tradingStateStream(scope));
      const now = Date.now();
      if (state.base === to && effectiveState(state, now) === to)
        throw new HttpProblem(
          409,
          'NOTHING_TO_RESET',
          `${scope.type} ${scope.id} is ${to} already`,
        );
      return openRequest(
        request,
        reply,
        'risk-reset',
        'risk_reset',
        tradingStateSubject(scope),
        { to },
        request.body.reason,
      );
    },
  );
}
