/**
 * The on-disk format of a backup (ADR 006): one folder per backup, named by its id, holding gzip'd
 * NDJSON segments (one recorded event per line, in position order) and `manifest.json`, written
 * last. Events are serialised generically: every field of the recorded event is kept, bigints as
 * decimal strings and dates as ISO strings, so fields added to RecordedEvent later are carried too.
 */
import { inInstantRange, RANGE_TEXT } from '../core/domain-bounds.js';
import { z } from 'zod';
import type { RecordedEvent } from '../core/eventstore/event-store.js';

export const FORMAT = 'qcat-backup';
export const FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
/** Events per segment file, at most. */
export const DEFAULT_SEGMENT_EVENTS = 100_000;

export type BackupKind = 'full' | 'incremental';

const BACKUP_ID = /^(\d{8}T\d{9}Z)-(full|incremental)-([0-9a-f]{4})$/;

/** `20261126T020000123Z-full-3fa2`: sorts by time, says its kind, and two runs never collide. */
export function newBackupId(kind: BackupKind, at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${stamp}-${kind}-${random}`;
}

export const isBackupId = (name: string): boolean => BACKUP_ID.test(name);

export const segmentFileName = (index: number): string =>
  `segment-${String(index).padStart(6, '0')}.ndjson.gz`;

const decimal = z.string().regex(/^(0|[1-9]\d*)$/, 'expected a non-negative integer as a string');
const instant = z
  .string()
  .refine(
    (value) => !Number.isNaN(Date.parse(value)) && new Date(value).toISOString() === value,
    'expected an ISO instant such as 2026-11-26T02:00:00.000Z',
  );
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits');
const count = z.number().int().min(0);

const segmentSchema = z.object({
  file: z.string().regex(/^segment-\d{6}\.ndjson\.gz$/, 'expected segment-NNNNNN.ndjson.gz'),
  sha256,
  bytes: count,
  count: count.min(1),
  firstPosition: decimal,
  lastPosition: decimal,
  firstRecordedAt: instant,
  lastRecordedAt: instant,
});

const chainEndSchema = z.object({
  position: decimal,
  eventId: z.string(),
  streamId: z.string(),
  revision: decimal,
  recordedAt: instant,
});

export const manifestSchema = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.literal(FORMAT_VERSION),
  backupId: z.string().regex(BACKUP_ID, 'expected an id like 20261126T020000123Z-full-3fa2'),
  kind: z.enum(['full', 'incremental']),
  previousBackupId: z.string().nullable(),
  startedAt: instant,
  completedAt: instant,
  durationSeconds: z.number().min(0),
  store: z.object({ adapter: z.string(), location: z.string() }),
  /** `after` is exclusive (the previous backup's last position; 0 for a full backup). */
  positions: z.object({ after: decimal, first: decimal.nullable(), last: decimal }),
  time: z.object({ first: instant.nullable(), last: instant.nullable() }),
  eventCount: count,
  /** Bytes of all segment files. */
  bytes: count,
  /** The top-level fields the events carry (e.g. `hash` once the log has a hash chain). */
  eventFields: z.array(z.string()),
  /** The last event of the log this backup brings the chain up to (null: the log was empty). */
  lastEvent: chainEndSchema.nullable(),
  segmentEvents: count.min(1),
  /**
   * The hash-chain check of the log a full backup copied (`qcat audit verify`'s walk up to the
   * backup's head): `problem` names the first broken link, null when intact. Absent in older
   * manifests and in incrementals.
   */
  logCheck: z.object({ toPosition: decimal, problem: z.string().nullable() }).optional(),
  createdBy: z.string(),
  segments: z.array(segmentSchema),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type SegmentEntry = z.infer<typeof segmentSchema>;
export type ChainEnd = z.infer<typeof chainEndSchema>;

/**
 * Why a manifest is refused: schema problems (each with its path), then the rules between fields.
 * Empty when it is sound.
 */
export function manifestProblems(value: unknown, folder: string): string[] {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    return parsed.error.issues.map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(top)'}: ${issue.message}`,
    );
  }
  const manifest = parsed.data;
  const problems: string[] = [];
  if (manifest.backupId !== folder)
    problems.push(`backupId '${manifest.backupId}' is not the name of its folder '${folder}'`);
  if (!manifest.backupId.includes(`-${manifest.kind}-`))
    problems.push(`kind '${manifest.kind}' does not match the backup id`);
  if (manifest.kind === 'full' && manifest.previousBackupId !== null)
    problems.push('a full backup has no previous backup');
  if (manifest.kind === 'full' && manifest.positions.after !== '0')
    problems.push(`a full backup starts after position 0, not ${manifest.positions.after}`);
  if (manifest.kind === 'incremental' && manifest.previousBackupId === null)
    problems.push('an incremental backup names its previous backup');
  const segmentTotal = manifest.segments.reduce((sum, segment) => sum + segment.count, 0);
  if (segmentTotal !== manifest.eventCount)
    problems.push(
      `eventCount is ${manifest.eventCount} but the segments hold ${segmentTotal} events`,
    );
  const bytes = manifest.segments.reduce((sum, segment) => sum + segment.bytes, 0);
  if (bytes !== manifest.bytes)
    problems.push(`bytes is ${manifest.bytes} but the segments add up to ${bytes}`);
  let previous = BigInt(manifest.positions.after);
  const files = new Set<string>();
  manifest.segments.forEach((segment, index) => {
    if (files.has(segment.file)) problems.push(`segments[${index}]: ${segment.file} listed twice`);
    files.add(segment.file);
    const first = BigInt(segment.firstPosition);
    const last = BigInt(segment.lastPosition);
    if (first <= previous)
      problems.push(
        `segments[${index}] (${segment.file}): first position ${first} is not after ${previous}`,
      );
    if (last < first)
      problems.push(
        `segments[${index}] (${segment.file}): last position ${last} is before its first ${first}`,
      );
    if (BigInt(segment.count) > last - first + 1n)
      problems.push(
        `segments[${index}] (${segment.file}): ${segment.count} events cannot fit in positions ${first}..${last}`,
      );
    previous = last;
  });
  const first = manifest.segments[0];
  const last = manifest.segments.at(-1);
  if ((first?.firstPosition ?? null) !== manifest.positions.first)
    problems.push(
      `positions.first is ${manifest.positions.first} but the first segment starts at ${first?.firstPosition ?? 'none'}`,
    );
  const expectedLast = last?.lastPosition ?? manifest.positions.after;
  if (manifest.positions.last !== expectedLast)
    problems.push(`positions.last is ${manifest.positions.last}, expected ${expectedLast}`);
  if ((first?.firstRecordedAt ?? null) !== manifest.time.first)
    problems.push(`time.first does not match the first segment`);
  if ((last?.lastRecordedAt ?? null) !== manifest.time.last)
    problems.push(`time.last does not match the last segment`);
  if (last && manifest.lastEvent?.position !== last.lastPosition)
    problems.push(`lastEvent is not the last event of the last segment`);
  if (!last && manifest.lastEvent && manifest.lastEvent.position !== manifest.positions.after)
    problems.push(`lastEvent of an empty backup must be the previous backup's last event`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Events as lines.

const BIGINT_FIELDS = ['position', 'revision'] as const;
const DATE_FIELDS = ['recordedAt'] as const;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL = /^(0|[1-9]\d*)$/;

/** One line of a segment (without the newline): every own field of the event. */
export function eventToLine(event: RecordedEvent): string {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    out[key] =
      typeof value === 'bigint'
        ? value.toString()
        : value instanceof Date
          ? value.toISOString()
          : value;
  }
  return JSON.stringify(out);
}

/** Thrown by `lineToEvent`; the reader adds the file and line number. */
export class MalformedLine extends Error {}

/**
 * Parses and checks one line: the envelope's fields with their types; any further field (such as
 * `hash`) is kept as it was written.
 */
export function lineToEvent(line: string): RecordedEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new MalformedLine(`not JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new MalformedLine('not a JSON object');
  // Converted in place (the hot path of verify and restore): same keys, same order.
  const raw = parsed as Record<string, unknown>;
  checkEnvelope(raw);
  return raw;
}

/** The envelope's fields, converted in place (bigints, dates); throws MalformedLine. */
function checkEnvelope(
  raw: Record<string, unknown>,
): asserts raw is Record<string, unknown> & RecordedEvent {
  for (const key of BIGINT_FIELDS) {
    const value = raw[key];
    if (typeof value !== 'string' || !DECIMAL.test(value))
      throw new MalformedLine(
        `${key} is ${value === undefined ? 'missing' : 'not a non-negative integer string'}`,
      );
    raw[key] = BigInt(value);
  }
  for (const key of DATE_FIELDS) {
    const value = raw[key];
    if (typeof value !== 'string' || !ISO_MS.test(value))
      throw new MalformedLine(
        `${key} is ${value === undefined ? 'missing' : 'not an ISO instant like 2026-11-26T02:00:00.000Z'}`,
      );
    const date = new Date(value);
    if (Number.isNaN(date.getTime()))
      throw new MalformedLine(`${key} '${value}' is not a valid instant`);
    raw[key] = date;
  }
  if (!('data' in raw)) throw new MalformedLine('data is missing');
  if (typeof raw['eventId'] !== 'string' || !UUID.test(raw['eventId']))
    throw new MalformedLine('eventId is not a uuid');
  if (typeof raw['type'] !== 'string' || raw['type'] === '')
    throw new MalformedLine('type is missing');
  if (typeof raw['streamId'] !== 'string' || raw['streamId'] === '')
    throw new MalformedLine('streamId is missing');
  const metadata = raw['metadata'];
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
    throw new MalformedLine('metadata is not an object');
  if (typeof (metadata as Record<string, unknown>)['actor'] !== 'string')
    throw new MalformedLine('metadata.actor is missing');
  if (raw['position'] === 0n) throw new MalformedLine('position 0 is not an event position');
}

/** Where a restore stops: the last position to include, or the last instant. */
export type RestorePoint = { position: bigint } | { instant: Date };

/** `--to`: a position (digits) or an ISO instant with a time zone (`Z` or an offset). */
export function parseRestorePoint(value: string): RestorePoint {
  const text = value.trim();
  if (DECIMAL.test(text)) return { position: BigInt(text) };
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
  const at = Date.parse(text);
  if (!iso.test(text) || Number.isNaN(at))
    throw new Error(
      `--to '${value}' is neither a position (digits) nor an ISO instant with a time zone such as 2026-11-26T10:00:00Z`,
    );
  if (!inInstantRange(at))
    throw new Error(`--to '${value}' is outside the accepted range, ${RANGE_TEXT}`);
  return { instant: new Date(at) };
}

export const describePoint = (point: RestorePoint): string =>
  'position' in point ? `position ${point.position}` : point.instant.toISOString();
