import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../core/access/roles.js';
import {
  APPROVAL_KINDS,
  APPROVAL_STATUSES,
  approvalBlocker,
  approvalStream,
  approvals,
  missingRoles,
  type ApprovalCommand,
} from '../../core/approvals/approval.js';
import type { ApiServices } from '../services.js';
import { ApprovalQueries, type ApprovalRow } from '../../projections/approval-queries.js';
import { HttpProblem } from '../problem.js';
import {
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  pageLimit,
  positionCursor,
  positionString,
  principalOf,
  type ZodFastify,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const approval = z.object({
  requestId: z.string(),
  kind: z.enum(APPROVAL_KINDS),
  subject: z.object({ type: z.string(), id: z.string() }),
  status: z.enum(APPROVAL_STATUSES),
  requester: party,
  reason: z.string(),
  rule: z.object({
    approvals: z.number(),
    eligibleRoles: z.array(z.enum(ROLES)),
    mustInclude: z.array(z.enum(ROLES)),
  }),
  payload: z.record(z.string(), z.unknown()),
  approvers: z.array(party),
  stillNeeds: z.object({
    approvals: z.number().describe('approvals still missing'),
    roles: z.array(z.enum(ROLES)).describe('roles that must still be among them'),
  }),
  decidedBy: z.string().nullable(),
  decisionReason: z.string().nullable(),
  requestedAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  revision: z.string(),
});

const toApproval = (row: ApprovalRow): z.infer<typeof approval> => ({
  requestId: row.request_id,
  kind: row.state.kind,
  subject: row.state.subject,
  status: row.state.status,
  requester: row.state.requester,
  reason: row.reason,
  rule: row.state.rule,
  payload: row.state.payload,
  approvers: row.state.approvers,
  stillNeeds: {
    approvals:
      row.state.status === 'pending'
        ? Math.max(0, row.state.rule.approvals - row.state.approvers.length)
        : 0,
    roles: row.state.status === 'pending' ? missingRoles(row.state.rule, row.state.approvers) : [],
  },
  decidedBy: row.decided_by,
  decisionReason: row.decision_reason,
  requestedAt: row.requested_at.toISOString(),
  expiresAt: row.expires_at.toISOString(),
  decidedAt: row.decided_at?.toISOString() ?? null,
  revision: row.revision,
});

const pageSchema = z.object({ approvals: z.array(approval), nextCursor: z.string().nullable() });
const requestIdParams = z.object({ requestId: z.uuid() });
const listQuery = {
  after: positionCursor,
  limit: pageLimit(500, 50),
  minPosition: positionString.optional(),
};

const decisionAnswer = commandResultSchema.extend({
  status: z.enum(APPROVAL_STATUSES),
  effect: z
    .object({
      streamId: z.string(),
      command: z.string(),
      outcome: z.enum(['applied', 'unchanged', 'refused']),
      detail: z.string().nullable(),
      revision: z.string().nullable(),
      position: z
        .string()
        .nullable()
        .describe('pass as minPosition to read the subject after the effect'),
    })
    .nullable()
    .describe('what the approval flow did to the subject (null while it has not run yet)'),
});

type ApprovalServices = Pick<ApiServices, 'automation' | 'commands' | 'pool' | 'projections'>;

/** What the approval routes share: the read model's queries and the services. */
interface ApprovalContext {
  runtime: ApprovalServices;
  queries: ApprovalQueries;
}

/**
 * Approval requests (four eyes): list, the queue of what the caller may approve, decisions.
 * Routes are registered in this order, which is openapi.json's.
 */
export const approvalRoutes: FastifyPluginAsyncZod<{
  runtime: ApprovalServices;
}> = async (fastify, { runtime }) => {
  const context = { runtime, queries: new ApprovalQueries(runtime.pool) };
  listRoutes(fastify, context);
  detailRoute(fastify, context);
  decisionRoutes(fastify, context);
};

/** Runs one decision, then reports the flow's effect on the subject once it has run. */
async function decide(
  { runtime, queries }: ApprovalContext,
  request: FastifyRequest,
  reply: FastifyReply,
  command: ApprovalCommand,
): Promise<z.infer<typeof decisionAnswer>> {
  const result = await commandOf(request, runtime.commands).handle(
    approvals,
    approvalStream(command.requestId),
    command,
  );
  const { state } = await runtime.commands.load(approvals, approvalStream(command.requestId));
  const status = state.status === 'none' ? 'pending' : state.status;
  let effect: z.infer<typeof decisionAnswer>['effect'] = null;
  if (
    status !== 'pending' &&
    (await runtime.automation.waitFor('approval-flow', result.position, 2000))
  ) {
    const row = await queries.flowEffect(result.position);
    if (row)
      effect = {
        streamId: row.stream_id,
        command: row.command,
        outcome: row.outcome,
        detail: row.detail,
        revision: row.result_revision,
        position: row.result_position,
      };
  }
  return { ...commandAnswer(reply, result), status, effect };
}

/** The requests, filtered, and the queue of those the caller may approve now. */
function listRoutes(fastify: ZodFastify, { runtime, queries }: ApprovalContext): void {
  fastify.get(
    '/approvals',
    {
      config: { permission: 'approvals:read', readModel: 'approvals' },
      schema: {
        tags: ['approvals'],
        summary: 'Approval requests, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            status: z.enum(APPROVAL_STATUSES).optional(),
            kind: z.enum(APPROVAL_KINDS).optional(),
            subjectType: z.string().min(1).max(50).optional(),
            subjectId: z.string().min(1).max(200).optional(),
            role: z.enum(ROLES).optional().describe('only requests this role may approve'),
            ...listQuery,
          })
          .strict(),
        response: { 200: pageSchema },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'approvals', q.minPosition, reply);
      const rows = await queries.list(q);
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.requested_position);
      return { approvals: page.map(toApproval), nextCursor };
    },
  );

  fastify.get(
    '/approvals/queue',
    {
      // Not cached (readModel): depends on the caller and on the clock (expires_at > now()).
      config: { permission: 'approvals:read' },
      schema: {
        tags: ['approvals'],
        summary:
          'The pending requests the caller may approve now: their role is eligible, they did not make or already approve them, and the rule still needs them',
        querystring: z.object(listQuery).strict(),
        response: { 200: pageSchema },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'approvals', q.minPosition, reply);
      const { party } = principalOf(request);
      const rows = await queries.queue({
        role: party.role,
        partyId: party.id,
        after: q.after,
        limit: q.limit,
      });
      // A page holds what the caller can act on; the cursor still walks every pending request.
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.requested_position);
      return {
        approvals: page
          .filter((row) => approvalBlocker(row.state, party) === undefined)
          .map(toApproval),
        nextCursor,
      };
    },
  );
}

function detailRoute(fastify: ZodFastify, { runtime, queries }: ApprovalContext): void {
  fastify.get(
    '/approvals/:requestId',
    {
      config: { permission: 'approvals:read', readModel: 'approvals' },
      schema: {
        tags: ['approvals'],
        summary: 'One approval request; ETag is its revision',
        params: requestIdParams,
        querystring: z.object({ minPosition: positionString.optional() }).strict(),
        response: { 200: approval },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, 'approvals', request.query.minPosition, reply);
      const row = await queries.get(request.params.requestId);
      if (!row)
        throw new HttpProblem(
          404,
          'APPROVAL_NOT_FOUND',
          `approval ${request.params.requestId} does not exist`,
        );
      void reply.header('etag', `"${row.revision}"`);
      return toApproval(row);
    },
  );
}

/** Approve, reject, withdraw: each a command on the request's stream. */
function decisionRoutes(fastify: ZodFastify, context: ApprovalContext): void {
  fastify.post(
    '/approvals/:requestId/approve',
    commandRoute('approvals:decide', {
      tags: ['approvals'],
      summary:
        'Approve a request (never your own); the last approval the rule needs approves it and the flow applies it',
      params: requestIdParams,
      body: z
        .strictObject({ comment: z.string().max(1000).default('') })
        .nullish()
        .describe('optional'),
      response: { 200: decisionAnswer },
    }),
    async (request, reply) =>
      decide(context, request, reply, {
        type: 'GrantApproval',
        requestId: request.params.requestId,
        approver: principalOf(request).party,
        comment: request.body?.comment ?? '',
        now: new Date().toISOString(),
      }),
  );

  fastify.post(
    '/approvals/:requestId/reject',
    commandRoute('approvals:decide', {
      tags: ['approvals'],
      summary: 'Reject a request, with the reason',
      params: requestIdParams,
      body: z.strictObject({ reason: z.string().trim().min(1).max(1000) }),
      response: { 200: decisionAnswer },
    }),
    async (request, reply) =>
      decide(context, request, reply, {
        type: 'RejectApproval',
        requestId: request.params.requestId,
        by: principalOf(request).party,
        reason: request.body.reason,
        now: new Date().toISOString(),
      }),
  );

  fastify.post(
    '/approvals/:requestId/withdraw',
    commandRoute('approvals:withdraw', {
      tags: ['approvals'],
      summary: 'Withdraw a request you made',
      params: requestIdParams,
      body: z.strictObject({ reason: z.string().trim().min(1).max(1000) }),
      response: { 200: decisionAnswer },
    }),
    async (request, reply) =>
      decide(context, request, reply, {
        type: 'WithdrawApproval',
        requestId: request.params.requestId,
        by: principalOf(request).party,
        reason: request.body.reason,
      }),
  );
}
