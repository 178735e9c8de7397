import type { Observable } from 'rxjs';

/** A value that survives a JSON round trip unchanged. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * What an event's data may be written as: JSON, with read-only arrays and objects and with members
 * whose value is `undefined` (left out, as JSON.stringify and canonicalJson leave them out). So a
 * typed event (a type alias of JSON fields) is written as it is, without a cast; it is read back
 * as a JsonValue and parsed by its schema. The store checks it at run time (prepareAppend).
 */
export type JsonInput =
  | null
  | boolean
  | number
  | string
  | undefined
  | readonly JsonInput[]
  | { readonly [key: string]: JsonInput };

/**
 * Global position in `$all`: strictly increasing in commit order, not necessarily contiguous
 * (EventStoreDB positions are byte offsets). `0n` means "before the first event".
 */
export type Position = bigint;
export const START: Position = 0n;

/** Revision of an event inside its stream, from 0. */
export type Revision = bigint;

/**
 * - a revision: the stream's last event must be at exactly this revision;
 * - `no_stream`: the stream must not exist yet;
 * - `stream_exists`: the stream must have at least one event;
 * - `any`: no check.
 */
export type ExpectedRevision = Revision | 'no_stream' | 'stream_exists' | 'any';

export interface EventMetadata {
  /** Who caused the event: a user, an API key or a named system process. Required. */
  actor: string;
  correlationId?: string;
  causationId?: string;
  schemaVersion?: number;
  [key: string]: JsonValue | undefined;
}

export interface NewEvent {
  /** uuid; generated when absent. Re-appending the same ids to the same stream is a no-op. */
  eventId?: string;
  type: string;
  data: JsonInput;
  metadata: EventMetadata;
}

export interface RecordedEvent {
  eventId: string;
  type: string;
  data: JsonValue;
  metadata: EventMetadata;
  streamId: string;
  revision: Revision;
  position: Position;
  /** Commit time; non-decreasing in position order. */
  recordedAt: Date;
  /**
   * Lower-case hex SHA-256 over this event's content and its predecessor's hash in the stream
   * (core/eventstore/event-hash.ts, ADR 005): the log's tamper evidence.
   */
  hash: string;
}

export interface AppendResult {
  /** Revision of the last event now in the stream: the expected revision for the next append. */
  nextExpectedRevision: Revision;
  /** Global position of the last event written (or found, for an idempotent re-append). */
  position: Position;
}

export interface ReadStreamOptions {
  direction?: 'forwards' | 'backwards';
  /** Lowest revision to return (inclusive). */
  fromRevision?: Revision;
  /** Highest revision to return (inclusive). */
  toRevision?: Revision;
  /** Only events at or before this global position. */
  toPosition?: Position;
  /** Only events recorded at or before this instant. */
  toInstant?: Date;
  maxCount?: number;
}

export interface ReadAllOptions {
  /** Exclusive lower bound; `START` (default) reads from the first event. */
  after?: Position;
  /** Inclusive upper bound. */
  toPosition?: Position;
  /** Batch size; defaults to 1000. */
  maxCount?: number;
}

export interface SubscribeOptions {
  /** Exclusive: a checkpoint is the last position handled. Defaults to `START`. */
  after?: Position;
  /** How many events to read from the store per round trip while catching up. */
  batchSize?: number;
}

/**
 * The event store port. Adapters: PostgreSQL and EventStoreDB in core/adapters, in-memory for
 * unit tests. Every adapter passes the contract suite in test/eventstore.contract.ts.
 */
export interface EventStore {
  appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options?: { expectedRevision?: ExpectedRevision },
  ): Promise<AppendResult>;

  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;

  /** One batch of `$all` in position order; call again with `after` = last position for more. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;

  /**
   * Catch-up then live: every committed event after `after`, exactly once, in position order.
   * Events are facts: a subscriber reads them and never changes them (an adapter may hand the
   * same frozen object to several subscribers).
   */
  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent>;

  /** Position of the last committed event, `START` when the log is empty. */
  headPosition(): Promise<Position>;

  /** The last position recorded at or before `instant`; `START` if none was. */
  positionAt(instant: Date): Promise<Position>;

  close(): Promise<void>;
}
