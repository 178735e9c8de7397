import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Party } from '../../core/approvals/approval.js';
import { derivedId, IDEMPOTENCY_KEY } from '../../core/commands/derived-id.js';
import type { CommandResult } from '../../core/commands/idempotency.js';
import type { ProjectionService } from '../../projections/projection-service.js';
import { amountSchema, instantSchema } from '../../core/domain-bounds.js';
import { ConcurrencyConflictError } from '../../core/errors.js';
import { HttpProblem } from '../problem.js';
import type { TimeRange } from '../../projections/sql-filter.js';

// strategies.ts still builds its list query here (owned by another branch at the time of ADR 025).
export { SqlFilter } from '../../projections/sql-filter.js';

/** The Fastify instance a route plugin gets, typed by zod: what a function of routes takes. */
export type ZodFastify = Parameters<FastifyPluginAsyncZod>[0];

/**
 * A strategy's id: a UUID (created through the API), or `auto-<kind>-<symbol>-<id>` (created by
 * automation capability 8, docs/automation.md), so people can pause, resume and retire those too.
 */
export const strategyIdSchema = z
  .string()
  .refine(
    (value) =>
      z.uuid().safeParse(value).success ||
      /^auto-[a-z0-9_]{1,40}-[a-z0-9]{2,20}-[a-z0-9-]{1,8}$/.test(value),
    'expected a strategy id: a UUID, or auto-<kind>-<symbol>-<id> (automation capability 8)',
  );

/** The largest position or revision: PostgreSQL's bigint. */
const MAX_POSITION = 9223372036854775807n;

/**
 * Positions and revisions travel as decimal strings: JSON numbers cannot hold every bigint. Beyond
 * PostgreSQL's bigint a position is the client's mistake (400), not an overflow in SQL (500).
 */
export const positionString = z
  .string()
  .regex(/^\d{1,19}$/, 'expected a position: a whole number as a string')
  .refine((value) => !/^\d+$/.test(value) || BigInt(value) <= MAX_POSITION, {
    message: `expected a position: a whole number up to ${MAX_POSITION.toString()}`,
  });

/** What every command answers: where it wrote, so the client can read its own write. */
export const commandResultSchema = z.object({
  streamId: z.string(),
  revision: z
    .string()
    .describe('revision of the stream after the command; send it back as If-Match'),
  position: z
    .string()
    .describe('global position written; pass it as minPosition to read your write'),
  eventCount: z.number().int(),
});

export function commandAnswer(
  reply: FastifyReply,
  result: CommandResult,
): z.infer<typeof commandResultSchema> {
  void reply.header('etag', `"${result.nextExpectedRevision.toString()}"`);
  return {
    streamId: result.streamId,
    revision: result.nextExpectedRevision.toString(),
    position: result.position.toString(),
    eventCount: result.eventCount,
  };
}

/** `minPosition`: wait briefly until the read model has applied it; else 202 with Retry-After. */
export async function awaitPosition(
  projections: ProjectionService,
  projection: string,
  minPosition: string | undefined,
  reply: FastifyReply,
): Promise<boolean> {
  if (minPosition === undefined) return true;
  if (await projections.waitFor(projection, BigInt(minPosition), 2000)) return true;
  void reply.header('retry-after', '1');
  throw new HttpProblem(
    202,
    'PROJECTION_BEHIND',
    `the ${projection} read model has not reached position ${minPosition} yet; retry shortly`,
  );
}

/** Headers every command route accepts. */
export const commandHeaders = z.object({
  'if-match': z
    .string()
    .regex(/^"\d{1,19}"$/, 'expected the ETag of the last read, e.g. "3"')
    .optional()
    .describe('the stream revision the client last saw; 412 when the stream has moved on'),
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY, 'expected 8 to 128 letters, digits or _.:-')
    .optional()
    .describe('retries with the same key and command return the first answer and write nothing'),
});

/** Command context fields from the headers: If-Match as the expected revision, Idempotency-Key. */
export function commandOptions(headers: z.infer<typeof commandHeaders>): {
  expectedRevision?: bigint;
  idempotencyKey?: string;
} {
  return {
    ...(headers['if-match'] ? { expectedRevision: BigInt(headers['if-match'].slice(1, -1)) } : {}),
    ...(headers['idempotency-key'] ? { idempotencyKey: headers['idempotency-key'] } : {}),
  };
}

/** With If-Match, a concurrency conflict is the client's stale read: 412, not 409. */
export async function withPrecondition<T>(hasIfMatch: boolean, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (hasIfMatch && error instanceof ConcurrencyConflictError) {
      throw new HttpProblem(
        412,
        'PRECONDITION_FAILED',
        `${error.message}; read it again and retry`,
      );
    }
    throw error;
  }
}

/**
 * Who is acting: `actor` goes into event metadata, `party` (the key's id and role) into commands
 * that check who may do what, such as four eyes.
 */
export function principalOf(request: FastifyRequest): { actor: string; party: Party } {
  const principal = request.principal;
  if (!principal) throw new Error(`authenticated route ${request.url} without a principal`);
  return {
    actor: `apikey:${principal.keyId}(${principal.name})`,
    party: { id: `apikey:${principal.keyId}`, role: principal.role },
  };
}

/**
 * A new id for what a command creates (a strategy, an approval request). With an
 * Idempotency-Key it is derived from the key, so a retry sends the very same command.
 */
export function newId(
  party: Party,
  headers: z.infer<typeof commandHeaders>,
  purpose: string,
): string {
  const key = headers['idempotency-key'];
  return key === undefined ? crypto.randomUUID() : derivedId(party.id, purpose, key);
}

/**
 * An ISO 8601 instant with an offset, in the domain's range (core/domain-bounds.ts, ADR 011): the
 * one schema of an instant in every query, path and body.
 */
export const instant = instantSchema;

/** A positive amount (quantity, price, cash) in the domain's sane range. */
export const amount = amountSchema;

/** `from` / `to` of the list routes: a half-open time range. */
export const timeRange = {
  from: instant.optional().describe('at or after this instant'),
  to: instant.optional().describe('before this instant (exclusive)'),
};

export const isoOrNull = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** The Date of an ISO instant the schema let through; the calendar may still refuse it (400). */
export function instantOf(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new HttpProblem(400, 'VALIDATION_FAILED', `${name}: '${value}' is not a real instant`);
  return new Date(ms);
}

/** `from` and `to` of a list query as Dates; 400 when from is not before to. */
export function timeRangeOf(q: { from?: string | undefined; to?: string | undefined }): TimeRange {
  const from = instantOf('from', q.from);
  const to = instantOf('to', q.to);
  if (from && to && from >= to)
    throw new HttpProblem(400, 'VALIDATION_FAILED', 'from must be before to');
  return { from, to };
}

/** `limit` of a cursor-paginated list: 1 to `max` items, `fallback` when not given. */
export const pageLimit = (max: number, fallback: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback);

/** `after` of a list paginated by a global position. */
export const positionCursor = positionString
  .optional()
  .describe('cursor: nextCursor of the previous page');

/**
 * One page of a keyset-paginated list, from a query that asked for `limit + 1` rows: the first
 * `limit` rows, and the cursor of the last of them when there were more (else null).
 */
export function cursorPage<Row>(
  rows: readonly Row[],
  limit: number,
  cursorOf: (row: Row) => string,
): { page: Row[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}
