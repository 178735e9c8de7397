import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Runtime } from '../../ops/runtime.js';
import { awaitPosition, positionString } from './conventions.js';

const auditEvent = z.object({
  position: z.string(),
  recordedAt: z.string(),
  streamId: z.string(),
  category: z.string(),
  revision: z.string(),
  type: z.string(),
  eventId: z.string(),
  actor: z.string(),
  correlationId: z.string().nullable(),
  causationId: z.string().nullable(),
});

const query = z
  .object({
    actor: z.string().min(1).max(200).optional(),
    streamId: z.string().min(1).max(200).optional(),
    category: z.string().min(1).max(200).optional(),
    type: z.string().min(1).max(200).optional(),
    correlationId: z.string().min(1).max(200).optional(),
    from: z.iso.datetime({ offset: true }).optional().describe('recorded at or after this instant'),
    to: z.iso.datetime({ offset: true }).optional().describe('recorded at or before this instant'),
    after: positionString.optional().describe('cursor: the nextCursor of the previous page'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    minPosition: positionString.optional(),
  })
  .strict();

interface Row {
  position: string;
  recorded_at: Date;
  stream_id: string;
  category: string;
  revision: string;
  type: string;
  event_id: string;
  actor: string;
  correlation_id: string | null;
  causation_id: string | null;
}

/** The audit trail read model: who did what, when, in which stream. */
export const auditRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  fastify.get(
    '/audit/events',
    {
      config: { permission: 'audit:read' },
      schema: {
        tags: ['audit'],
        summary: 'Events of the audit trail, oldest first, filtered; cursor-paginated by position',
        querystring: query,
        response: {
          200: z.object({ events: z.array(auditEvent), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'audit_trail', q.minPosition, reply);
      const where: string[] = [];
      const values: unknown[] = [];
      const add = (sql: string, value: unknown): void => {
        values.push(value);
        where.push(sql.replace('?', `$${values.length}`));
      };
      if (q.actor) add('actor = ?', q.actor);
      if (q.streamId) add('stream_id = ?', q.streamId);
      if (q.category) add('category = ?', q.category);
      if (q.type) add('type = ?', q.type);
      if (q.correlationId) add('correlation_id = ?', q.correlationId);
      if (q.from) add('recorded_at >= ?', q.from);
      if (q.to) add('recorded_at <= ?', q.to);
      if (q.after) add('position > ?', q.after);
      values.push(q.limit + 1);
      const { rows } = await runtime.pool.query<Row>(
        `SELECT position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id
           FROM qcat_read.audit_trail ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY position LIMIT $${values.length}`,
        values,
      );
      const page = rows.slice(0, q.limit);
      return {
        events: page.map((row) => ({
          position: row.position,
          recordedAt: row.recorded_at.toISOString(),
          streamId: row.stream_id,
          category: row.category,
          revision: row.revision,
          type: row.type,
          eventId: row.event_id,
          actor: row.actor,
          correlationId: row.correlation_id,
          causationId: row.causation_id,
        })),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.position ?? null) : null,
      };
    },
  );
};
