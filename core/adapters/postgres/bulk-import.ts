// Under 400 lines without comments (what the max-lines rule counts): the bulk import
// into an empty log, one procedure read top to bottom: its checks, the encoder, the two COPYs.
/**
 * Bulk import of recorded events into an empty, migrated PostgreSQL event log: the restore path.
 * Events keep their event id, stream, revision, position, time, data, metadata and every further
 * field the log has a column for (`hash` → `hash`, `someField` → `some_field`), verbatim. One
 * transaction: COPY of the events, COPY of the streams' last revisions (and any further column
 * of qcat_streams, such as the cached last hash, from the stream's last event), the head row moved
 * to the last event; any failure rolls all of it back and the store stays empty.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Position, RecordedEvent } from '../../eventstore/event-store.js';

export interface BulkImportResult {
  events: number;
  streams: number;
  /** Position of the last event imported (0 when none was). */
  lastPosition: Position;
  lastRecordedAt: Date | null;
  /** Seconds spent streaming rows in, and building the indexes afterwards. */
  seconds: { copy: number; indexes: number };
}

/** Refused before anything was written. */
export class BulkImportError extends Error {}

/** Envelope fields and their columns; any other column maps to the camelCase field. */
/**
 * A field of an event by name: the envelope's, or one its store added (say `hash`), which a log
 * imported as it was carries into a column of the same name.
 */
const fieldOf = (event: object, name: string): unknown => Reflect.get(event, name);

const ENVELOPE: readonly [keyof RecordedEvent, string][] = [
  ['position', 'position'],
  ['streamId', 'stream_id'],
  ['revision', 'revision'],
  ['eventId', 'event_id'],
  ['type', 'type'],
  ['data', 'data'],
  ['metadata', 'metadata'],
  ['recordedAt', 'recorded_at'],
];

const camel = (column: string): string =>
  column.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

interface Column {
  name: string;
  required: boolean;
}

async function columnsOf(client: pg.ClientBase, table: string): Promise<Column[]> {
  const { rows } = await client.query<{ name: string; nullable: string; has_default: boolean }>(
    `SELECT column_name AS name, is_nullable AS nullable, column_default IS NOT NULL AS has_default
       FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1
      ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((row) => ({
    name: row.name,
    required: row.nullable === 'NO' && !row.has_default,
  }));
}

// COPY text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
const SPECIAL = /[\\\n\r\t]/;
const SPECIALS = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeText = (value: string): string =>
  SPECIAL.test(value) ? value.replace(SPECIALS, (c) => ESCAPES[c] ?? c) : value;

/** JSON from JSON.stringify has no raw control characters; only its backslashes need doubling. */
const escapeJson = (value: unknown): string => {
  const json = JSON.stringify(value);
  return json.includes('\\') ? json.replace(/\\/g, '\\\\') : json;
};

function field(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'string') return escapeText(value);
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  return escapeJson(value);
}

/**
 * The COPY text of one event field, chosen once per column rather than per value: the envelope's
 * fields have known types (a bigint, a string, a Date, JSON); anything else goes through `field`.
 * `data` and `metadata` are always JSON, so a JSON `null` stays the jsonb `null` it was.
 */
function encoderOf(name: string): (value: unknown) => string {
  switch (name) {
    case 'position':
    case 'revision':
      return (value) => (typeof value === 'bigint' ? value.toString() : field(value));
    case 'data':
    case 'metadata':
      return (value) => (value === undefined ? '\\N' : escapeJson(value));
    case 'recordedAt': {
      // Events appended together share their commit time: format each instant once.
      let ms = Number.NaN;
      let iso = '';
      return (value) => {
        if (!(value instanceof Date)) return field(value);
        const time = value.getTime();
        if (time !== ms) {
          ms = time;
          iso = value.toISOString();
        }
        return iso;
      };
    }
    default:
      return (value) => (typeof value === 'string' ? escapeText(value) : field(value));
  }
}

/**
 * Drops the indexes of qcat_events (unique and primary key constraints included) inside the
 * import's transaction, and answers the function that builds them again as the catalog defined
 * them: one sorted build per index after the COPY is several times cheaper than maintaining each
 * one row by row. Indexes a later migration adds are read from the catalog too. If anything
 * depends on them (a foreign key), they stay and the COPY maintains them.
 */
export async function dropEventIndexes(client: pg.ClientBase): Promise<() => Promise<void>> {
  const { rows: constraints } = await client.query<{ name: string; definition: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
      WHERE conrelid = 'qcat_events'::regclass AND contype IN ('p', 'u', 'x')`,
  );
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'qcat_events'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
  );
  await client.query('SAVEPOINT qcat_bulk_indexes');
  try {
    for (const constraint of constraints)
      await client.query(
        `ALTER TABLE qcat_events DROP CONSTRAINT ${client.escapeIdentifier(constraint.name)}`,
      );
    for (const index of indexes)
      await client.query(`DROP INDEX ${client.escapeIdentifier(index.name)}`);
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT qcat_bulk_indexes');
    return () => Promise.resolve();
  }
  return async () => {
    await client.query("SET LOCAL maintenance_work_mem = '256MB'");
    for (const constraint of constraints)
      await client.query(
        `ALTER TABLE qcat_events ADD CONSTRAINT ${client.escapeIdentifier(constraint.name)} ${constraint.definition}`,
      );
    for (const index of indexes) await client.query(index.definition);
  };
}

/**
 * Imports `batches` (in position order) into the empty log behind `pool`; refuses a log that has
 * any event. Positions must increase and each stream's revisions run 0, 1, 2, … (a log restored
 * from its start); both are checked on the way.
 */
export async function bulkImportIntoEmptyStore(
  pool: pg.Pool,
  batches: AsyncIterable<readonly RecordedEvent[]>,
): Promise<BulkImportResult> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await refuseUnlessEmpty(client);
    const rebuild = await dropEventIndexes(client);
    const started = performance.now();
    const eventExtras = await extraColumns(client, 'qcat_events', [
      ...ENVELOPE.map(([, column]) => column),
    ]);
    const headColumns = await extraColumns(client, 'qcat_log_head', [
      'singleton',
      'position',
      'recorded_at',
    ]);
    const streamExtras = await extraColumns(client, 'qcat_streams', ['stream_id', 'revision']);
    const encoder = new EventEncoder(eventExtras, streamExtras);
    await copyEvents(client, encoder, batches);
    const copied = performance.now();
    await rebuild();
    const indexed = performance.now();
    const { last } = encoder;
    if (last) await moveHead(client, last, headColumns);
    await client.query('COMMIT');
    return {
      events: encoder.events,
      streams: encoder.streams.size,
      lastPosition: last?.position ?? 0n,
      lastRecordedAt: last?.recordedAt ?? null,
      seconds: { copy: (copied - started) / 1000, indexes: (indexed - copied) / 1000 },
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Takes the head lock first, as every append does (nobody appends while the import runs). */
async function refuseUnlessEmpty(client: pg.ClientBase): Promise<void> {
  const head = await client.query<{ position: string }>(
    'SELECT position FROM qcat_log_head FOR UPDATE',
  );
  const { rows: any } = await client.query<{ found: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM qcat_events) AS found',
  );
  if (head.rows[0]?.position !== '0' || any[0]?.found)
    throw new BulkImportError(
      `the target event log is not empty (head at position ${head.rows[0]?.position ?? '?'})`,
    );
}

/** The columns of a table besides the ones the import fills itself. */
async function extraColumns(
  client: pg.ClientBase,
  table: string,
  own: readonly string[],
): Promise<Column[]> {
  return (await columnsOf(client, table)).filter((column) => !own.includes(column.name));
}

/** The envelope's fields and, of the further qcat_events columns, those the events carry. */
function decideFields(
  event: RecordedEvent,
  extras: readonly Column[],
): (readonly [string, string])[] {
  const chosen: (readonly [string, string])[] = ENVELOPE.map(
    ([name, column]) => [name, column] as const,
  );
  const known = new Set<string>(ENVELOPE.map(([name]) => name));
  for (const column of extras) {
    const name = camel(column.name);
    known.add(name);
    if (name in event) chosen.push([name, column.name]);
    else if (column.required)
      throw new BulkImportError(
        `the target's qcat_events.${column.name} is required but the events to import have no '${name}' (a backup older than the target's schema)`,
      );
  }
  const unknown = Object.keys(event).filter((key) => !known.has(key));
  if (unknown.length > 0)
    throw new BulkImportError(
      `the events carry ${unknown.map((key) => `'${key}'`).join(', ')} but the target's qcat_events has no column for it (the target's QCAT is older than the backup)`,
    );
  return chosen;
}

/**
 * The events as COPY text, checked on the way (positions increase, recordedAt never decreases,
 * each stream's revisions run 0, 1, 2, …), with what the streams' rows need: per stream its last
 * revision and, per further qcat_streams column, its last event's field.
 */
class EventEncoder {
  readonly streams = new Map<string, bigint>();
  carried: Map<string, unknown>[] = [];
  /** Decided on the first event: the qcat_streams columns its fields fill. */
  carriedColumns: string[] = [];
  events = 0;
  last: RecordedEvent | undefined;
  /** Decided on the first event: which extra columns its fields fill. */
  fields: (readonly [string, string])[] | undefined;
  private carriedNames: string[] = [];
  private names: string[] = [];
  private encoders: ((value: unknown) => string)[] = [];
  private lastField = 0;

  constructor(
    private readonly extras: readonly Column[],
    private readonly streamExtras: readonly Column[],
  ) {}

  /** The COPY rows of one batch. */
  batch(batch: readonly RecordedEvent[]): string {
    let text = '';
    for (const event of batch) {
      if (!this.fields) this.start(event);
      this.check(event);
      for (let index = 0; index < this.carried.length; index++)
        this.carried[index]?.set(event.streamId, fieldOf(event, this.carriedNames[index] ?? ''));
      for (let index = 0; index < this.names.length; index++) {
        const name = this.names[index] ?? '';
        const value = fieldOf(event, name);
        if (value === undefined && !(name in event))
          throw new BulkImportError(`the event at position ${event.position} has no '${name}'`);
        text += this.encoders[index]?.(value) ?? '';
        text += index === this.lastField ? '\n' : '\t';
      }
      this.last = event;
      this.events++;
    }
    return text;
  }

  private start(event: RecordedEvent): void {
    const fields = decideFields(event, this.extras);
    this.fields = fields;
    this.names = fields.map(([name]) => name);
    this.encoders = this.names.map(encoderOf);
    this.lastField = this.names.length - 1;
    this.carriedColumns = this.streamExtras
      .filter((column) => camel(column.name) in event)
      .map((column) => column.name);
    this.carriedNames = this.carriedColumns.map(camel);
    this.carried = this.carriedColumns.map(() => new Map<string, unknown>());
  }

  private check(event: RecordedEvent): void {
    const { last } = this;
    if (last && event.position <= last.position)
      throw new BulkImportError(
        `position ${event.position} comes after ${last.position}: events must be in position order`,
      );
    // recordedAt never decreases along the log (ADR 001); positionAt bisects on it.
    if (last && event.recordedAt.getTime() < last.recordedAt.getTime())
      throw new BulkImportError(
        `position ${event.position} was recorded at ${event.recordedAt.toISOString()}, before position ${last.position} (${last.recordedAt.toISOString()}): recordedAt must not decrease along the log`,
      );
    const expected = (this.streams.get(event.streamId) ?? -1n) + 1n;
    if (event.revision !== expected)
      throw new BulkImportError(
        `stream ${event.streamId}: revision ${event.revision} where ${expected} was expected`,
      );
    this.streams.set(event.streamId, event.revision);
  }
}

async function* encodeAll(
  encoder: EventEncoder,
  batches: AsyncIterable<readonly RecordedEvent[]>,
): AsyncGenerator<string> {
  for await (const batch of batches) {
    const text = encoder.batch(batch);
    if (text !== '') yield text;
  }
}

/** COPY of the events, then of the streams' rows. */
async function copyEvents(
  client: pg.ClientBase,
  encoder: EventEncoder,
  batches: AsyncIterable<readonly RecordedEvent[]>,
): Promise<void> {
  // The column list needs the first event; peek it, then stream the rest through COPY.
  const iterator = encodeAll(encoder, batches);
  const first = await iterator.next();
  if (first.done || !encoder.fields) return;
  const head = first.value;
  const columns = encoder.fields.map(([, column]) => client.escapeIdentifier(column)).join(', ');
  const copy = client.query(copyFrom(`COPY qcat_events (${columns}) FROM STDIN`));
  async function* rest(): AsyncGenerator<string> {
    yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  await pipeline(Readable.from(rest()), copy);
  await copyStreams(client, encoder);
}

async function copyStreams(client: pg.ClientBase, encoder: EventEncoder): Promise<void> {
  const { streams, carried, carriedColumns } = encoder;
  const streamCopy = client.query(
    copyFrom(
      `COPY qcat_streams (${['stream_id', 'revision', ...carriedColumns].map((column) => client.escapeIdentifier(column)).join(', ')}) FROM STDIN`,
    ),
  );
  async function* streamRows(): AsyncGenerator<string> {
    let text = '';
    for (const [stream, revision] of streams) {
      text += `${escapeText(stream)}\t${revision}${carried.map((values) => `\t${field(values.get(stream))}`).join('')}\n`;
      if (text.length > 1 << 20) {
        yield text;
        text = '';
      }
    }
    if (text !== '') yield text;
  }
  await pipeline(Readable.from(streamRows()), streamCopy);
}

/** The head row to the last event; further head columns (a hash chain's last hash) take its field. */
async function moveHead(
  client: pg.ClientBase,
  final: RecordedEvent,
  headColumns: readonly Column[],
): Promise<void> {
  const carried = headColumns.filter((column) => camel(column.name) in final);
  const sets = carried.map(
    (column, index) => `${client.escapeIdentifier(column.name)} = $${index + 3}`,
  );
  await client.query(
    `UPDATE qcat_log_head SET position = $1, recorded_at = $2${sets.map((set) => `, ${set}`).join('')}`,
    [
      final.position.toString(),
      final.recordedAt,
      ...carried.map((column) => fieldOf(final, camel(column.name))),
    ],
  );
  await client.query("SELECT pg_notify('qcat_log', $1)", [final.position.toString()]);
}
