// Under 400 lines without comments (what the max-lines rule counts): the group commit and its
// append path read best in one file (ADR 001).
import type pg from 'pg';
import { Observable } from 'rxjs';
import { ConcurrencyConflictError, toError } from '../../errors.js';
import {
  assertValidStreamId,
  prepareAppend,
  type PreparedEvent,
} from '../../eventstore/append-validation.js';
import {
  START,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type JsonValue,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
} from '../../eventstore/event-store.js';
import { eventIdReused } from '../../eventstore/expected-revision.js';
import { migrate } from './migrations.js';
import { PgNotifications } from './pg-notifications.js';
import { createPool } from './pool.js';
import { SharedReads } from './shared-reads.js';
import { nodeSha256 as sha256 } from '../node-sha256.js';

export interface PostgresEventStoreOptions {
  connectionString: string;
  /** Connections for reads and the writer; default 10. */
  poolSize?: number;
  /** Apply pending migrations on connect; default true. */
  migrate?: boolean;
  /**
   * How long a live subscriber waits for a notification before it polls anyway while the LISTEN
   * connection is down; default 1 s. While it listens, a commit's notification wakes it and the
   * poll is only a safety net (`LISTENING_POLL_MS`).
   */
  pollIntervalMs?: number;
}

/**
 * The safety-net poll of a caught-up subscriber while notifications arrive: every append notifies
 * (qcat_append, bulk import) and a lost LISTEN connection wakes every subscriber when it returns,
 * so a poll finds nothing new unless something wrote to the log behind QCAT's back. ~25
 * subscribers of an idle `qcat serve` polling each second were most of its idle CPU (ADR 020).
 */
const LISTENING_POLL_MS = 15_000;

interface PendingAppend {
  streamId: string;
  expected: ExpectedRevision;
  events: PreparedEvent[];
  /** Each event's content digest: SHA-256 of its canonical content (ADR 005). */
  digests: string[];
  bytes: number;
  /** The caller chose event ids: they may repeat recorded ones (an idempotent retry). */
  idsSupplied: boolean;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

interface AppendRow {
  status: 'ok' | 'repeat' | 'conflict' | 'reused';
  last_revision: string | null;
  last_position: string | null;
  detail: string | null;
}

interface EventRow {
  position: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: JsonValue;
  metadata: EventMetadata;
  recorded_ms: number;
  hash: string;
}

/** Group commit limits: one transaction carries at most this much. */
const MAX_BATCH_EVENTS = 5000;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

// bigint and uuid columns arrive as strings from pg. Never alias a cast to a column's own name:
// ORDER BY would then sort by the text.
// date_part (float8), not extract (numeric since PostgreSQL 14): a third cheaper per row.
const EVENT_COLUMNS = `position, stream_id, revision, event_id, type, data, metadata,
  round(date_part('epoch', recorded_at) * 1000) AS recorded_ms, hash`;

const toEvent = (row: EventRow): RecordedEvent => ({
  eventId: row.event_id,
  type: row.type,
  data: row.data,
  metadata: row.metadata,
  streamId: row.stream_id,
  revision: BigInt(row.revision),
  position: BigInt(row.position),
  recordedAt: new Date(row.recorded_ms),
  hash: row.hash,
});

/** The columns of EVENT_COLUMNS, in order. */
type EventTuple = [
  string,
  string,
  string,
  string,
  string,
  JsonValue,
  EventMetadata,
  number,
  string,
];

const tupleToEvent = ([
  position,
  streamId,
  revision,
  eventId,
  type,
  data,
  metadata,
  recordedMs,
  hash,
]: EventTuple): RecordedEvent => ({
  eventId,
  type,
  data,
  metadata,
  streamId,
  revision: BigInt(revision),
  position: BigInt(position),
  recordedAt: new Date(recordedMs),
  hash,
});

/**
 * The event log in PostgreSQL. Appends from this process are gathered into one transaction at a
 * time (group commit) and every transaction locks the log's head row, so transactions commit in
 * position order and readers never see a later position before an earlier one (ADR 001).
 */
export class PostgresEventStore implements EventStore {
  private readonly pending: PendingAppend[] = [];
  private flushing = false;
  /** Commits announce the new head on `qcat_log`: wakes live subscribers (they also poll). */
  private readonly notifier: PgNotifications;
  /** Live subscribers' reads: one query for all that ask for the same events at once. */
  private readonly tail = new SharedReads((after, maxCount) => this.readAll({ after, maxCount }));
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    private readonly options: PostgresEventStoreOptions,
  ) {
    this.notifier = new PgNotifications(options.connectionString, 'qcat_log');
    this.notifier.messages.subscribe(() => {
      this.tail.noticed();
    });
    this.notifier.listening.subscribe(() => {
      this.tail.noticed();
    });
  }

  static async connect(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    // Its clients, idle or checked out, may lose their server without crashing the process.
    const pool = createPool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
    });
    try {
      if (options.migrate ?? true) await migrate(pool);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresEventStore(pool, options);
  }

  appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    const expected = options.expectedRevision ?? 'any';
    let prepared: PreparedEvent[];
    try {
      prepared = prepareAppend(streamId, events, expected);
    } catch (error) {
      return Promise.reject(toError(error));
    }
    const bytes = prepared.reduce(
      (sum, event) => sum + event.dataJson.length + event.metadataJson.length,
      0,
    );
    return new Promise<AppendResult>((resolve, reject) => {
      const idsSupplied = events.some((event) => event.eventId !== undefined);
      this.pending.push({
        streamId,
        expected,
        events: prepared,
        // Here, on the caller's turn, not in the flush that every appender waits for.
        digests: prepared.map((event) => sha256(event.content)),
        bytes,
        idsSupplied,
        resolve,
        reject,
      });
      void this.flush();
    });
  }

  /** Writes queued appends, one transaction at a time, until the queue is empty. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // One turn of the event loop lets callers whose appends just settled queue their next
        // ones, so they share the coming commit instead of alternating between small batches.
        await new Promise((resolve) => setImmediate(resolve));
        await this.writeIsolated(this.takeBatch(), false);
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Writes a group and settles its appends. One append the database refuses (whatever the cause)
   * must not fail the others it shares a commit with: a failed group is split in halves and each
   * half written again, down to the single append that fails, which alone is rejected. A failed
   * statement rolled its whole transaction back, so nothing of the group was written; should the
   * failure have hidden a commit (a connection lost while committing), the retries look their
   * event ids up and answer that commit as an idempotent repeat instead of writing it twice.
   */
  private async writeIsolated(batch: PendingAppend[], retry: boolean): Promise<void> {
    try {
      const rows = await this.writeBatch(batch, retry);
      batch.forEach((append, index) => {
        settle(append, rows[index]);
      });
    } catch (error) {
      const [only] = batch;
      if (batch.length === 1 && only) {
        only.reject(toError(error));
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await this.writeIsolated(batch.slice(0, half), true);
      await this.writeIsolated(batch.slice(half), true);
    }
  }

  private takeBatch(): PendingAppend[] {
    let events = 0;
    let bytes = 0;
    let count = 0;
    for (const append of this.pending) {
      if (
        count > 0 &&
        (events + append.events.length > MAX_BATCH_EVENTS || bytes + append.bytes > MAX_BATCH_BYTES)
      ) {
        break;
      }
      events += append.events.length;
      bytes += append.bytes;
      count++;
    }
    return this.pending.splice(0, count);
  }

  private async writeBatch(batch: PendingAppend[], checkAllIds: boolean): Promise<AppendRow[]> {
    const streams: string[] = [];
    const expected: string[] = [];
    const counts: number[] = [];
    const previous: number[] = [];
    const ids: string[] = [];
    const types: string[] = [];
    const data: string[] = [];
    const metadata: string[] = [];
    const digests: string[] = [];
    const lastOfStream = new Map<string, number>();
    let checkIds = checkAllIds;
    batch.forEach((append, index) => {
      streams.push(append.streamId);
      expected.push(String(append.expected));
      counts.push(append.events.length);
      previous.push(lastOfStream.get(append.streamId) ?? 0);
      lastOfStream.set(append.streamId, index + 1);
      checkIds ||= append.idsSupplied;
      for (const event of append.events) {
        ids.push(event.eventId);
        types.push(event.type);
        data.push(event.dataJson);
        metadata.push(event.metadataJson);
      }
      digests.push(...append.digests);
    });
    const result = await this.pool.query<AppendRow>({
      name: 'qcat_append_batch',
      text: `SELECT status, last_revision, last_position, detail
               FROM qcat_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      values: [
        streams,
        expected,
        counts,
        previous,
        ids,
        types,
        `[${data.join(',')}]`,
        `[${metadata.join(',')}]`,
        digests,
        checkIds,
      ],
    });
    return result.rows;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    assertValidStreamId(streamId);
    const backwards = options.direction === 'backwards';
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM qcat_events
        WHERE stream_id = $1 AND revision >= $2 AND ($3::bigint IS NULL OR revision <= $3)
          AND ($4::bigint IS NULL OR position <= $4) AND ($5::timestamptz IS NULL OR recorded_at <= $5)
        ORDER BY revision ${backwards ? 'DESC' : 'ASC'}
        LIMIT $6`,
      [
        streamId,
        String(options.fromRevision ?? 0n),
        options.toRevision === undefined ? null : String(options.toRevision),
        options.toPosition === undefined ? null : String(options.toPosition),
        options.toInstant ?? null,
        options.maxCount ?? null,
      ],
    );
    return rows.map(toEvent);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    // Rows as arrays: the hot path of catch-up and rebuilds, and measurably cheaper to build.
    const { rows } = await this.pool.query<EventTuple>({
      name: 'qcat_read_all',
      text: `SELECT ${EVENT_COLUMNS} FROM qcat_events
              WHERE position > $1 AND ($2::bigint IS NULL OR position <= $2)
              ORDER BY position LIMIT $3`,
      values: [
        String(options.after ?? START),
        options.toPosition === undefined ? null : String(options.toPosition),
        options.maxCount ?? 1000,
      ],
      rowMode: 'array',
    });
    return rows.map(tupleToEvent);
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    const batchSize = options.batchSize ?? 1000;
    const pollMs = this.options.pollIntervalMs ?? 1000;
    return new Observable<RecordedEvent>((subscriber) => {
      let checkpoint: Position = options.after ?? START;
      let wake: (() => void) | undefined;
      // A notification that came while a read was under way: read again before waiting.
      let pending = false;
      const nudge = (): void => {
        pending = true;
        wake?.();
      };
      // A function, not the variable: the callbacks above set it while a read is awaited.
      const notified = (): boolean => pending;
      const notification = this.notifier.messages.subscribe((head) => {
        if (!/^\d+$/.test(head) || BigInt(head) > checkpoint) nudge();
      });
      // Notifications sent while the connection was down are lost: re-read when it is back.
      const reconnected = this.notifier.listening.subscribe((listening) => {
        if (listening) nudge();
      });
      // A function, not the property: the subscriber may close while a read is awaited.
      const closed = (): boolean => subscriber.closed;
      const run = async (): Promise<void> => {
        while (!closed()) {
          pending = false;
          const events = await this.tail.after(checkpoint, batchSize);
          for (const event of events) {
            if (closed()) return;
            checkpoint = event.position;
            subscriber.next(event);
          }
          if (events.length === batchSize || notified() || closed()) continue;
          // Caught up: wait for a commit notification, or poll in case one was missed.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(
              resolve,
              this.notifier.listening.value ? LISTENING_POLL_MS : pollMs,
            );
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      };
      this.notifier.start();
      run().catch((error: unknown) => {
        if (!closed()) subscriber.error(error);
      });
      return () => {
        notification.unsubscribe();
        reconnected.unsubscribe();
        wake?.();
      };
    });
  }

  async headPosition(): Promise<Position> {
    const { rows } = await this.pool.query<{ position: string }>(
      'SELECT position FROM qcat_log_head',
    );
    return BigInt(rows[0]?.position ?? '0');
  }

  async positionAt(instant: Date): Promise<Position> {
    // Bisection on the primary key: recorded_at never decreases along the log (migration 7).
    const { rows } = await this.pool.query<{ position: string }>(
      'SELECT qcat_position_at($1) AS position',
      [instant],
    );
    return BigInt(rows[0]?.position ?? '0');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing || this.pending.length > 0)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await this.notifier.stop();
    await this.pool.end();
  }
}

function settle(append: PendingAppend, row: AppendRow | undefined): void {
  if (!row) {
    append.reject(new Error('qcat_append returned no row for an append'));
    return;
  }
  switch (row.status) {
    case 'ok':
    case 'repeat':
      append.resolve({
        nextExpectedRevision: BigInt(row.last_revision ?? '-1'),
        position: BigInt(row.last_position ?? '0'),
      });
      return;
    case 'conflict': {
      const actual = row.last_revision === '-1' ? 'no_stream' : (row.last_revision ?? 'unknown');
      append.reject(new ConcurrencyConflictError(append.streamId, String(append.expected), actual));
      return;
    }
    case 'reused':
      append.reject(eventIdReused(append.streamId, row.detail ?? 'unknown'));
      return;
  }
}
