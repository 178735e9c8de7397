import { z } from 'zod';
import type { JsonObject } from '../../../core/eventstore/event-store.js';
import { limitsStream, limitsSubject } from '../../../core/risk/common.js';
import {
  DEFAULT_LIMITS,
  limits as limitsDecider,
  validateLimitChanges,
} from '../../../core/risk/limits.js';
import { HttpProblem } from '../../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  principalOf,
} from '../conventions.js';
import { commandRoute } from '../../command-route.js';
import type { RiskContext, ZodFastify } from './context.js';
import {
  PROJECTION,
  scopeParams,
  reason,
  limitsRow,
  requestAnswer,
  scopeCursorOf,
  scopeListQuery,
  toLimits,
} from './schemas.js';
/** Limits per scope: read, set the first time, change requests. */
export function limitsRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  listRoute(fastify, ctx);
  setRoute(fastify, ctx);
  changeRequestRoute(fastify, ctx);
}

function listRoute(fastify: ZodFastify, { runtime, queries, checkScope }: RiskContext): void {
  fastify.get(
    '/risk/limits',
    {
      // Not cached (readModel): with a scope, checkScope reads the strategies or trading read model.
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary:
          'Limits of every scope that has some, by scope; with scopeType and scopeId, that scope (its defaults when never set)',
        querystring: scopeListQuery,
        response: {
          200: z.object({ limits: z.array(limitsRow), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      if (q.scopeId !== undefined && q.scopeType === undefined)
        throw new HttpProblem(400, 'VALIDATION_FAILED', 'querystring.scopeId needs scopeType');
      const rows = await queries.risk.limits(q);
      if (q.scopeType && q.scopeId) {
        const scope = { type: q.scopeType, id: q.scopeId };
        await checkScope(scope);
        const row = rows[0];
        return {
          limits: [
            row
              ? toLimits(row)
              : {
                  scopeType: scope.type,
                  scopeId: scope.id,
                  limits: { ...DEFAULT_LIMITS[scope.type] },
                  isDefault: true,
                  version: 0,
                  requestId: null,
                  changedBy: null,
                  changedAt: null,
                  position: null,
                },
          ],
          nextCursor: null,
        };
      }
      const { page, nextCursor } = cursorPage(rows, q.limit, scopeCursorOf);
      return { limits: page.map(toLimits), nextCursor };
    },
  );
}

function setRoute(fastify: ZodFastify, { handle, as, checkScope }: RiskContext): void {
  fastify.put(
    '/risk/limits/:scopeType/:scopeId',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        "Set a scope's limits the first time, each at least as strict as its default (omitted: the defaults); later changes are change requests",
      params: scopeParams,
      body: z
        .strictObject({
          limits: z
            .record(z.string(), z.unknown())
            .optional()
            .describe('limits to set instead of the defaults (docs/risk.md); null: no limit'),
        })
        .nullish()
        .describe('optional'),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const given = request.body?.limits;
      const result = await handle(request, as(limitsDecider), limitsStream(scope), {
        type: 'SetLimits',
        scope,
        ...(given === undefined ? {} : { limits: given as JsonObject }),
        by: principalOf(request).party,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
}

function changeRequestRoute(fastify: ZodFastify, { checkScope, openRequest }: RiskContext): void {
  fastify.post(
    '/risk/limits/:scopeType/:scopeId/change-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to change limits: a risk_limit_change approval request (a risk officer other than you approves; then the limits change)',
      params: scopeParams,
      body: z.strictObject({
        changes: z
          .record(z.string(), z.unknown())
          .describe('limit → new value (null: no limit), checked as docs/risk.md says'),
        reason,
      }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      const changes = validateLimitChanges(scope.type, request.body.changes);
      await checkScope(scope);
      return openRequest(
        request,
        reply,
        'risk-limit-change',
        'risk_limit_change',
        limitsSubject(scope),
        { changes },
        request.body.reason,
      );
    },
  );
}
