import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nodeSha256 } from '../../core/adapters/node-sha256.js';
import { aggregateOf, foldEvents } from '../../core/aggregates.js';
import { redactSecrets } from '../../core/audit/redact.js';
import { verifyLog, verifyOptionsFor } from '../../core/audit/verify.js';
import { assertValidStreamId } from '../../core/eventstore/append-validation.js';
import type { JsonValue, RecordedEvent } from '../../core/eventstore/event-store.js';
import type { Runtime } from '../../ops/runtime.js';
import { HttpProblem } from '../problem.js';
import {
  awaitPosition,
  cursorPage,
  instant,
  pageLimit,
  positionString,
  SqlFilter,
} from './conventions.js';

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
type AuditEvent = z.infer<typeof auditEvent>;

/** The audit trail's filters, shared by the list and the export. */
const filters = {
  actor: z.string().min(1).max(200).optional(),
  streamId: z.string().min(1).max(200).optional(),
  category: z.string().min(1).max(200).optional(),
  type: z.string().min(1).max(200).optional(),
  correlationId: z.string().min(1).max(200).optional(),
  from: instant.optional().describe('recorded at or after this instant'),
  to: instant.optional().describe('recorded at or before this instant'),
  minPosition: positionString.optional(),
};
type Filters = { [K in keyof typeof filters]?: string };

const listQuery = z
  .object({
    ...filters,
    after: positionString.optional().describe('cursor: the nextCursor of the previous page'),
    limit: pageLimit(1000, 100),
  })
  .strict();

const exportQuery = z
  .object({
    ...filters,
    format: z.enum(['ndjson', 'csv']).default('ndjson'),
  })
  .strict();

const revisionString = z
  .string()
  .regex(/^\d{1,19}$/, 'expected a revision: a whole number as a string');

const streamParams = z.object({ streamId: z.string().min(1).max(200) });

const historyQuery = z
  .object({
    after: revisionString.optional().describe('cursor: the nextCursor of the previous page'),
    limit: pageLimit(1000, 100),
  })
  .strict();

const stateQuery = z
  .object({
    asOf: instant
      .optional()
      .describe('the state as of this instant: every event recorded at or before it'),
    atPosition: positionString
      .optional()
      .describe('the state as of this global position: every event at or before it'),
  })
  .strict()
  .refine((q) => q.asOf === undefined || q.atPosition === undefined, {
    message: 'give asOf or atPosition, not both',
    path: ['atPosition'],
  });

const correlationParams = z.object({ correlationId: z.string().min(1).max(200) });
const correlationQuery = z
  .object({
    limit: pageLimit(10_000, 1000),
    minPosition: positionString.optional(),
  })
  .strict();

const verifyQuery = z
  .object({
    toPosition: positionString
      .optional()
      .describe('verify up to this position (default: the head); the digest covers exactly that'),
  })
  .strict();

const storedEvent = z.object({
  position: z.string(),
  revision: z.string(),
  eventId: z.string(),
  type: z.string(),
  recordedAt: z.string(),
  data: z.unknown().describe('as stored, with secret fields redacted'),
  metadata: z.unknown().describe('as stored, with secret fields redacted'),
  hash: z.string().describe("SHA-256 over the event and its predecessor's hash (ADR 005)"),
});

const brokenLink = z.object({
  reason: z.enum([
    'hash_mismatch',
    'revision_gap',
    'position_gap',
    'position_order',
    'time_order',
    'log_truncated',
    'checkpoint_changed',
  ]),
  position: z.string(),
  streamId: z.string().nullable(),
  revision: z.string().nullable(),
  eventId: z.string().nullable(),
  expected: z.string(),
  found: z.string(),
  detail: z.string(),
});

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

const COLUMNS =
  'position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id';

const toAuditEvent = (row: Row): AuditEvent => ({
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
});

/** The conditions of the trail's filters. */
function trailFilter(q: Filters): SqlFilter {
  const filter = new SqlFilter();
  if (q.actor) filter.add('actor = ?', q.actor);
  if (q.streamId) filter.add('stream_id = ?', q.streamId);
  if (q.category) filter.add('category = ?', q.category);
  if (q.type) filter.add('type = ?', q.type);
  if (q.correlationId) filter.add('correlation_id = ?', q.correlationId);
  if (q.from) filter.add('recorded_at >= ?', q.from);
  if (q.to) filter.add('recorded_at <= ?', q.to);
  return filter;
}

/** Rows per query of an export: what one export holds in memory at most. */
const EXPORT_BATCH = 1000;

const CSV_COLUMNS: readonly (keyof AuditEvent)[] = [
  'position',
  'recordedAt',
  'streamId',
  'category',
  'revision',
  'type',
  'eventId',
  'actor',
  'correlationId',
  'causationId',
];

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled.
 * A cell a spreadsheet would run as a formula (starting with = + - @ tab or CR) gets a leading `'`
 * (OWASP CSV injection); the NDJSON export carries every value verbatim.
 */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

const csvLine = (event: AuditEvent): string =>
  `${CSV_COLUMNS.map((column) => csvCell(event[column])).join(',')}\r\n`;

const redact = (value: unknown): JsonValue => redactSecrets(value as JsonValue);

const toStoredEvent = (event: RecordedEvent): z.infer<typeof storedEvent> => ({
  position: event.position.toString(),
  revision: event.revision.toString(),
  eventId: event.eventId,
  type: event.type,
  recordedAt: event.recordedAt.toISOString(),
  data: redact(event.data),
  metadata: redact(event.metadata),
  hash: event.hash,
});

const streamNotFound = (streamId: string): HttpProblem =>
  new HttpProblem(404, 'STREAM_NOT_FOUND', `stream '${streamId}' has no events`);

/**
 * The audit API: the trail (filter, page, export), one stream's history, any aggregate as of an
 * instant or position, a correlation's causation tree, and the verification of the hash chain.
 * Event data, metadata and state pass through redactSecrets: no secret leaves by these routes.
 */
export const auditRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
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
      const filter = trailFilter(q);
      if (q.after) filter.add('position > ?', q.after);
      const { rows } = await runtime.pool.query<Row>(
        `SELECT ${COLUMNS} FROM qcat_read.audit_trail ${filter.where}
          ORDER BY position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (row) => row.position);
      return { events: page.map(toAuditEvent), nextCursor };
    },
  );

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
      const { rows: bound } = await runtime.pool.query<{ position: string }>(
        'SELECT coalesce(max(position), 0)::text AS position FROM qcat_read.audit_trail',
      );
      const upTo = bound[0]?.position ?? '0';
      const filter = trailFilter(q).add('position <= ?', upTo).add('position > ?', '0');
      const afterIndex = filter.values.length - 1;
      const sql = `SELECT ${COLUMNS} FROM qcat_read.audit_trail ${filter.where}
                    ORDER BY position LIMIT ${filter.param(EXPORT_BATCH)}`;
      const { values } = filter;
      const batch = async (after: string): Promise<Row[]> => {
        values[afterIndex] = after;
        return (await runtime.pool.query<Row>(sql, values)).rows;
      };
      // The first batch before the answer starts: a failure here is still a proper 5xx.
      const first = await batch('0');
      const csv = q.format === 'csv';
      const render = (rows: Row[]): string => {
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
      const { rows } = await runtime.pool.query<Row>(
        `SELECT ${COLUMNS} FROM qcat_read.audit_trail WHERE correlation_id = $1
          ORDER BY position LIMIT $2`,
        [correlationId, q.limit + 1],
      );
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
};

/**
 * Events of one correlation (in position order) as a tree: an event whose causationId is another
 * event of the set is that event's child; the others hang under their cause at the roots.
 */
export function causationTree(events: readonly AuditEvent[]): {
  eventCount: number;
  roots: { causationId: string | null; eventIds: string[] }[];
  events: (AuditEvent & {
    parentEventId: string | null;
    children: string[];
    depth: number | null;
  })[];
} {
  const byId = new Map(events.map((event) => [event.eventId, event]));
  const children = new Map<string, string[]>();
  const roots = new Map<string | null, string[]>();
  const parentOf = (event: AuditEvent): string | null =>
    event.causationId !== null && event.causationId !== event.eventId && byId.has(event.causationId)
      ? event.causationId
      : null;
  const push = <K>(map: Map<K, string[]>, key: K, eventId: string): void => {
    const list = map.get(key);
    if (list) list.push(eventId);
    else map.set(key, [eventId]);
  };
  for (const event of events) {
    const parent = parentOf(event);
    if (parent === null) push(roots, event.causationId, event.eventId);
    else push(children, parent, event.eventId);
  }
  const depths = new Map<string, number | null>();
  const depthOf = (event: AuditEvent): number | null => {
    // Walk up to a root; a cycle (forged ids) has no depth.
    const seen = new Set<string>();
    let depth = 0;
    let current: AuditEvent | undefined = event;
    while (current) {
      const known = depths.get(current.eventId);
      if (known !== undefined) return known === null ? null : known + depth;
      if (seen.has(current.eventId)) return null;
      seen.add(current.eventId);
      const parent = parentOf(current);
      if (parent === null) return depth;
      depth++;
      current = byId.get(parent);
    }
    return depth;
  };
  return {
    eventCount: events.length,
    roots: [...roots].map(([causationId, eventIds]) => ({ causationId, eventIds })),
    events: events.map((event) => {
      const depth = depthOf(event);
      depths.set(event.eventId, depth);
      return {
        ...event,
        parentEventId: parentOf(event),
        children: children.get(event.eventId) ?? [],
        depth,
      };
    }),
  };
}
