/** The schemas and answer shapes of the audit routes (docs/audit), and the CSV export's cells. */
import { z } from 'zod';
import { redactSecrets } from '../../../core/audit/redact.js';
import type { JsonValue, RecordedEvent } from '../../../core/eventstore/event-store.js';
import { HttpProblem } from '../../problem.js';
import { type AuditRow } from '../../../projections/audit-queries.js';
import { instant, pageLimit, positionString } from '../conventions.js';
export const auditEvent = z.object({
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
export type AuditEvent = z.infer<typeof auditEvent>;

/** The audit trail's filters, shared by the list and the export. */
export const filters = {
  actor: z.string().min(1).max(200).optional(),
  streamId: z.string().min(1).max(200).optional(),
  category: z.string().min(1).max(200).optional(),
  type: z.string().min(1).max(200).optional(),
  correlationId: z.string().min(1).max(200).optional(),
  from: instant.optional().describe('recorded at or after this instant'),
  to: instant.optional().describe('recorded at or before this instant'),
  minPosition: positionString.optional(),
};

export const listQuery = z
  .object({
    ...filters,
    after: positionString.optional().describe('cursor: the nextCursor of the previous page'),
    limit: pageLimit(1000, 100),
  })
  .strict();

export const exportQuery = z
  .object({
    ...filters,
    format: z.enum(['ndjson', 'csv']).default('ndjson'),
  })
  .strict();

export const revisionString = z
  .string()
  .regex(/^\d{1,19}$/, 'expected a revision: a whole number as a string');

export const streamParams = z.object({ streamId: z.string().min(1).max(200) });

export const historyQuery = z
  .object({
    after: revisionString.optional().describe('cursor: the nextCursor of the previous page'),
    limit: pageLimit(1000, 100),
  })
  .strict();

export const stateQuery = z
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

export const correlationParams = z.object({ correlationId: z.string().min(1).max(200) });
export const correlationQuery = z
  .object({
    limit: pageLimit(10_000, 1000),
    minPosition: positionString.optional(),
  })
  .strict();

export const verifyQuery = z
  .object({
    toPosition: positionString
      .optional()
      .describe('verify up to this position (default: the head); the digest covers exactly that'),
  })
  .strict();

export const storedEvent = z.object({
  position: z.string(),
  revision: z.string(),
  eventId: z.string(),
  type: z.string(),
  recordedAt: z.string(),
  data: z.unknown().describe('as stored, with secret fields redacted'),
  metadata: z.unknown().describe('as stored, with secret fields redacted'),
  hash: z.string().describe("SHA-256 over the event and its predecessor's hash (ADR 005)"),
});

export const brokenLink = z.object({
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

export const toAuditEvent = (row: AuditRow): AuditEvent => ({
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

/** Rows per query of an export: what one export holds in memory at most. */
export const EXPORT_BATCH = 1000;

export const CSV_COLUMNS: readonly (keyof AuditEvent)[] = [
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

export const csvLine = (event: AuditEvent): string =>
  `${CSV_COLUMNS.map((column) => csvCell(event[column])).join(',')}\r\n`;

export const redact = (value: unknown): JsonValue => redactSecrets(value as JsonValue);

export const toStoredEvent = (event: RecordedEvent): z.infer<typeof storedEvent> => ({
  position: event.position.toString(),
  revision: event.revision.toString(),
  eventId: event.eventId,
  type: event.type,
  recordedAt: event.recordedAt.toISOString(),
  data: redact(event.data),
  metadata: redact(event.metadata),
  hash: event.hash,
});

export const streamNotFound = (streamId: string): HttpProblem =>
  new HttpProblem(404, 'STREAM_NOT_FOUND', `stream '${streamId}' has no events`);
