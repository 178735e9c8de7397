import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nodeSha256 } from '../../core/adapters/node-sha256.js';
import { aggregateOf, foldEvents } from '../../core/aggregates.js';
import { verifyLog, verifyOptionsFor } from '../../core/audit/verify.js';
import { assertValidStreamId } from '../../core/eventstore/append-validation.js';
import type { ApiServices } from '../services.js';
import { HttpProblem } from '../problem.js';
import { AuditQueries, type AuditRow } from '../../projections/audit-queries.js';
import { causationTree } from '../../core/audit/causation-tree.js';
import { awaitPosition, cursorPage, type ZodFastify } from './conventions.js';
import {
  auditEvent,
  listQuery,
  exportQuery,
  streamParams,
  historyQuery,
  stateQuery,
  correlationParams,
  correlationQuery,
  verifyQuery,
  storedEvent,
  brokenLink,
  toAuditEvent,
  EXPORT_BATCH,
  CSV_COLUMNS,
  csvLine,
  redact,
  toStoredEvent,
  streamNotFound,
} from './audit/schemas.js';

type AuditServices = Pick<ApiServices, 'config' | 'eventStore' | 'pool' | 'projections'>;

/** What the audit routes share: the services and the audit trail's queries. */
interface AuditContext {
  runtime: AuditServices;
  queries: AuditQueries;
}

/**
 * The audit API: the trail (filter, page, export), one stream's history, any aggregate as of an
 * instant or position, a correlation's causation tree, and the verification of the hash chain.
 * Event data, metadata and state pass through redactSecrets: no secret leaves by these routes.
 * Routes are registered in this order, which is openapi.json's.
 */
export const auditRoutes: FastifyPluginAsyncZod<{
  runtime: AuditServices;
}> = async (fastify, { runtime }) => {
  const context = { runtime, queries: new AuditQueries(runtime.pool) };
  listRoute(fastify, context);
  exportRoute(fastify, context);
  historyRoute(fastify, context);
  stateRoute(fastify, context);
  correlationRoute(fastify, context);
  verifyRoute(fastify, context);
};

function listRoute(fastify: ZodFastify, { runtime, queries }: AuditContext): void {
  fastify.get(
    '/audit/events',
    {
      config: { permission: 'audit:read', readModel: 'audit_trail' },
      schema: {
        tags: ['audit'],
        summary: 'Events of the audit trail, oldest first, filtered; cursor-paginated by position',
        querystring: listQuery,
        response: {
          200: z.object({ events: z.array(auditEvent), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'audit_trail', q.minPosition, reply);
      const rows = await queries.list(q);
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.position);
      return { events: page.map(toAuditEvent), nextCursor };
    },
  );
}

function exportRoute(fastify: ZodFastify, { runtime, queries }: AuditContext): void {
  fastify.get(
    '/audit/events/export',
    {
      config: { permission: 'audit:export' },
      schema: {
        tags: ['audit'],
        summary:
          'The filtered audit trail as one streamed NDJSON or CSV download, oldest first, as of the position in X-QCAT-Position',
        querystring: exportQuery,
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, 'audit_trail', q.minPosition, reply);
      // A fixed upper bound: the export is the trail as it stood when the request came.
      const upTo = await queries.head();
      const batch = queries.exportBatches(q, upTo, EXPORT_BATCH);
      // The first batch before the answer starts: a failure here is still a proper 5xx.
      const first = await batch('0');
      const csv = q.format === 'csv';
      const render = (rows: AuditRow[]): string => {
        let text = '';
        for (const row of rows) {
          const event = toAuditEvent(row);
          text += csv ? csvLine(event) : `${JSON.stringify(event)}\n`;
        }
        return text;
      };
      // Keyset batches, pulled only as fast as the client reads (Readable.from asks the generator
      // for the next chunk when its buffer drains): one batch in memory, whatever the total.
      async function* chunks(): AsyncGenerator<string> {
        if (csv) yield `${CSV_COLUMNS.join(',')}\r\n`;
        let rows = first;
        for (;;) {
          if (rows.length > 0) yield render(rows);
          const last = rows.at(-1);
          if (rows.length < EXPORT_BATCH || !last) return;
          rows = await batch(last.position);
        }
      }
      const body = Readable.from(chunks(), { objectMode: false, highWaterMark: 64 * 1024 });
      body.on('error', (error) => {
        request.log.error({ err: error }, 'audit export failed part-way');
      });
      return reply
        .header('x-qcat-position', upTo)
        .header(
          'content-disposition',
          `attachment; filename="qcat-audit-${upTo}.${csv ? 'csv' : 'ndjson'}"`,
        )
        .type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .send(body);
    },
  );
}

function historyRoute(fastify: ZodFastify, { runtime }: AuditContext): void {
  fastify.get(
    '/audit/streams/:streamId/events',
    {
      config: { permission: 'audit:history' },
      schema: {
        tags: ['audit'],
        summary:
          "One stream's events from the log, oldest first, with data, metadata and hash; secrets redacted",
        params: streamParams,
        querystring: historyQuery,
        response: {
          200: z.object({
            streamId: z.string(),
            aggregate: z.string().nullable(),
            events: z.array(storedEvent),
            nextCursor: z
              .string()
              .nullable()
              .describe('pass as `after` for the next page; null on the last'),
          }),
        },
      },
    },
    async (request) => {
      const { streamId } = request.params;
      const q = request.query;
      assertValidStreamId(streamId);
      const events = await runtime.eventStore.readStream(streamId, {
        fromRevision: q.after === undefined ? 0n : BigInt(q.after) + 1n,
        maxCount: q.limit + 1,
      });
      if (events.length === 0 && q.after === undefined) throw streamNotFound(streamId);
      const { page, nextCursor } = cursorPage(events, q.limit, (e) => e.revision.toString());
      return {
        streamId,
        aggregate: aggregateOf(streamId)?.name ?? null,
        events: page.map(toStoredEvent),
        nextCursor,
      };
    },
  );
}

function stateRoute(fastify: ZodFastify, { runtime }: AuditContext): void {
  fastify.get(
    '/audit/streams/:streamId/state',
    {
      config: { permission: 'audit:history' },
      schema: {
        tags: ['audit'],
        summary:
          'The state of an aggregate as of an instant (asOf) or a global position (atPosition), folded from the log; the latest without either',
        params: streamParams,
        querystring: stateQuery,
        response: {
          200: z.object({
            streamId: z.string(),
            aggregate: z.string(),
            asOf: z.string().nullable(),
            atPosition: z.string().nullable(),
            position: z
              .string()
              .describe('the log position the state is taken at: asOf resolved, or atPosition'),
            revision: z
              .string()
              .nullable()
              .describe('revision of the last event folded; null if the stream had none yet'),
            eventPosition: z.string().nullable().describe('global position of that event'),
            recordedAt: z.string().nullable().describe('when that event was recorded'),
            eventCount: z.number().int(),
            state: z.unknown(),
          }),
        },
      },
    },
    async (request) => {
      const { streamId } = request.params;
      const q = request.query;
      assertValidStreamId(streamId);
      const aggregate = aggregateOf(streamId);
      if (!aggregate) {
        throw new HttpProblem(
          404,
          'UNKNOWN_AGGREGATE',
          `no aggregate is registered for the category of '${streamId}'`,
        );
      }
      const head = await runtime.eventStore.headPosition();
      let position = head;
      if (q.atPosition !== undefined && BigInt(q.atPosition) < head)
        position = BigInt(q.atPosition);
      if (q.asOf !== undefined) position = await runtime.eventStore.positionAt(new Date(q.asOf));
      const events = await runtime.eventStore.readStream(streamId, { toPosition: position });
      if (events.length === 0) {
        const [any] = await runtime.eventStore.readStream(streamId, { maxCount: 1 });
        if (!any) throw streamNotFound(streamId);
      }
      const last = events.at(-1);
      return {
        streamId,
        aggregate: aggregate.name,
        asOf: q.asOf ?? null,
        atPosition: q.atPosition ?? null,
        position: position.toString(),
        revision: last?.revision.toString() ?? null,
        eventPosition: last?.position.toString() ?? null,
        recordedAt: last?.recordedAt.toISOString() ?? null,
        eventCount: events.length,
        state: redact(foldEvents(aggregate, events)),
      };
    },
  );
}

function correlationRoute(fastify: ZodFastify, { runtime, queries }: AuditContext): void {
  fastify.get(
    '/audit/correlations/:correlationId',
    {
      config: { permission: 'audit:history', readModel: 'audit_trail' },
      schema: {
        tags: ['audit'],
        summary:
          'Every event of one correlation id as a causation tree: each event with its children, and the causes outside the log (commands) at the roots',
        params: correlationParams,
        querystring: correlationQuery,
        response: {
          200: z.object({
            correlationId: z.string(),
            eventCount: z.number().int(),
            truncated: z.boolean().describe('more events than `limit`: only the first are here'),
            roots: z.array(
              z.object({
                causationId: z
                  .string()
                  .nullable()
                  .describe('a cause that is not an event of this correlation (a command id)'),
                eventIds: z.array(z.string()),
              }),
            ),
            events: z.array(
              auditEvent.extend({
                parentEventId: z.string().nullable(),
                children: z.array(z.string()),
                depth: z.number().int().nullable(),
              }),
            ),
          }),
        },
      },
    },
    async (request, reply) => {
      const { correlationId } = request.params;
      const q = request.query;
      await awaitPosition(runtime.projections, 'audit_trail', q.minPosition, reply);
      const rows = await queries.correlation(correlationId, q.limit);
      if (rows.length === 0) {
        throw new HttpProblem(
          404,
          'CORRELATION_NOT_FOUND',
          `no event carries correlation id '${correlationId}'`,
        );
      }
      return {
        correlationId,
        ...causationTree(rows.slice(0, q.limit).map(toAuditEvent)),
        truncated: rows.length > q.limit,
      };
    },
  );
}

function verifyRoute(fastify: ZodFastify, { runtime }: AuditContext): void {
  fastify.get(
    '/audit/verify',
    {
      config: { permission: 'audit:verify' },
      schema: {
        tags: ['audit'],
        summary:
          'Walk the whole log and check every link of its hash chain; name the first broken one',
        querystring: verifyQuery,
        response: {
          200: z.object({
            ok: z.boolean(),
            eventsChecked: z.number().int(),
            streams: z.number().int(),
            headPosition: z.string(),
            verifiedTo: z.string(),
            digest: z
              .string()
              .nullable()
              .describe('running SHA-256 of positions and hashes up to verifiedTo (ADR 005)'),
            firstBroken: brokenLink.nullable(),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const report = await verifyLog(runtime.eventStore, {
        ...verifyOptionsFor(runtime.config.EVENT_STORE),
        sha256: nodeSha256,
        ...(q.toPosition === undefined ? {} : { toPosition: BigInt(q.toPosition) }),
      });
      const broken = report.firstBroken;
      return {
        ok: report.ok,
        eventsChecked: report.eventsChecked,
        streams: report.streams,
        headPosition: report.headPosition.toString(),
        verifiedTo: report.verifiedTo.toString(),
        digest: report.digest,
        firstBroken: broken && {
          ...broken,
          position: broken.position.toString(),
          revision: broken.revision?.toString() ?? null,
        },
      };
    },
  );
}
