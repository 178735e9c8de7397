// Over 400 lines: one adapter implementing the whole EventStore contract over one gRPC client;
// splitting it would scatter that client's state (ADR 025's exception list).
import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  MaxAppendSizeExceededError,
  NO_STREAM,
  START as ESDB_START,
  STREAM_EXISTS,
  StreamNotFoundError,
  WrongExpectedVersionError,
  excludeSystemEvents,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type AppendResult as EsdbAppendResult,
  type CurrentRevision,
  type EventData,
  type ReadPosition,
  type RecordedEvent as EsdbRecordedEvent,
  type ResolvedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import { Observable, type Subscriber } from 'rxjs';
import { ConcurrencyConflictError, QcatError, ValidationError, toError } from '../../errors.js';
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
  type Revision,
  type SubscribeOptions,
} from '../../eventstore/event-store.js';
import { GENESIS_HASH, chainText } from '../../eventstore/event-hash.js';
import { nodeSha256 as sha256 } from '../node-sha256.js';
import {
  checkExpectedRevision,
  resolveRepeatedAppend,
  type FoundEvent,
} from '../../eventstore/expected-revision.js';

export interface EventStoreDBEventStoreOptions {
  /** e.g. `esdb://localhost:2113?tls=false`; credentials, TLS and cluster discovery go here too. */
  connectionString: string;
}

/* ------------------------------------------------------------------------------------------------
 * Pure mappings between the port and EventStoreDB (unit-tested without a server).
 * ---------------------------------------------------------------------------------------------- */

/** A read or subscription result: the event plus, on `$all`, its commit position. */
export interface EsdbResolved {
  event?: EsdbRecordedEvent;
  commitPosition?: bigint;
}

export const toEsdbExpectedRevision = (expected: ExpectedRevision): AppendExpectedRevision => {
  switch (expected) {
    case 'any':
      return ANY;
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    default:
      return expected;
  }
};

/** ESDB's current revision (`no_stream` or the last revision) as the port's conflict error. */
export const toConcurrencyConflict = (
  streamId: string,
  expected: ExpectedRevision,
  actual: CurrentRevision,
): ConcurrencyConflictError =>
  new ConcurrencyConflictError(
    streamId,
    String(expected),
    actual === NO_STREAM || actual < 0n ? 'no_stream' : String(actual),
  );

/** What an append failure means to callers: a typed conflict, a refused input, or the raw error. */
export function mapAppendError(
  streamId: string,
  expected: ExpectedRevision,
  error: unknown,
): Error {
  if (error instanceof WrongExpectedVersionError) {
    return toConcurrencyConflict(streamId, expected, error.actualVersion);
  }
  if (error instanceof MaxAppendSizeExceededError) {
    // The server's --max-append-size (1 MiB by default) caps a whole append; nothing was written.
    return new ValidationError(
      'APPEND_TOO_LARGE',
      `append to '${streamId}' exceeds the EventStoreDB server's maximum append size of ${error.maxAppendSize} bytes`,
      { streamId, limit: error.maxAppendSize },
    );
  }
  return toError(error);
}

/**
 * Where a forward read or subscription "after p" starts. ESDB positions of events written through
 * gRPC have commit = prepare = the event's log offset, so {p, p} is the event at p itself: forward
 * reads include it and callers skip it.
 */
export const readPositionAfter = (after: Position): ReadPosition =>
  after <= START ? ESDB_START : { commit: after, prepare: after };

/** The port's single position: the commit position (from the event on ≥ 22.6 servers). */
export const positionOf = (resolved: EsdbResolved): Position | undefined =>
  resolved.event?.position?.commit ?? resolved.commitPosition;

/** ESDB's own events and streams (`$`-prefixed) are not part of QCAT's log. */
export const isSystemEvent = (event: { streamId: string; type: string }): boolean =>
  event.streamId.startsWith('$') || event.type.startsWith('$');

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

export function isJsonValue(value: unknown): value is JsonValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      if (value === null) return true;
      if (Array.isArray(value)) return value.every(isJsonValue);
      return isPlainObject(value) && Object.values(value).every(isJsonValue);
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return false;
  }
}

const optional = (value: unknown, type: 'string' | 'number'): boolean =>
  value === undefined || typeof value === type;

export const isEventMetadata = (value: unknown): value is EventMetadata =>
  isPlainObject(value) &&
  typeof value['actor'] === 'string' &&
  optional(value['correlationId'], 'string') &&
  optional(value['causationId'], 'string') &&
  optional(value['schemaVersion'], 'number') &&
  Object.values(value).every(isJsonValue);

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Where the event's hash travels: a reserved member of the ESDB metadata, taken out again on read
 * (ADR 005). ESDB has no column for it, and its metadata is stored as written.
 */
export const HASH_METADATA_KEY = '$qcatHash';

/** The metadata bytes to store: the validated metadata with the hash as its first member. */
export const metadataWithHash = (metadataJson: string, hash: string): string =>
  // Validated metadata is always an object with at least an actor, so `{` is followed by a member.
  `{${JSON.stringify(HASH_METADATA_KEY)}:${JSON.stringify(hash)},${metadataJson.slice(1)}`;

/**
 * The prepared (validated, serialized) event as ESDB event data. Metadata goes as the exact bytes
 * validated plus the hash: the client writes a plain Uint8Array as is (a Buffer it would
 * re-serialize). Data goes as JSON content; the client's JSON type only admits objects, arrays and
 * strings, so scalar data (null, numbers, booleans) is written as the same JSON text with a binary
 * content type and parsed back the same way on read.
 */
export function toEventData(event: PreparedEvent, hash: string): EventData {
  const metadata = utf8Encoder.encode(metadataWithHash(event.metadataJson, hash));
  const data: unknown = JSON.parse(event.dataJson);
  if (isPlainObject(data) || Array.isArray(data) || typeof data === 'string') {
    return { id: event.eventId, contentType: 'application/json', type: event.type, data, metadata };
  }
  return {
    id: event.eventId,
    contentType: 'application/octet-stream',
    type: event.type,
    data: utf8Encoder.encode(event.dataJson),
    metadata,
  };
}

const unreadable = (event: EsdbRecordedEvent, problem: string): QcatError =>
  new QcatError(
    'UNREADABLE_EVENT',
    `event ${event.id} at '${event.streamId}'@${String(event.revision)} is not a QCAT event: ${problem}`,
    { streamId: event.streamId, revision: String(event.revision), eventId: event.id },
  );

function decodeData(event: EsdbRecordedEvent): JsonValue {
  if (event.isJson) {
    if (isJsonValue(event.data)) return event.data;
    throw unreadable(event, 'data is not JSON');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decoder.decode(event.data));
  } catch {
    throw unreadable(event, 'binary data is not JSON text');
  }
  if (isJsonValue(parsed)) return parsed;
  throw unreadable(event, 'data is not JSON');
}

/** An ESDB event as the port's envelope; throws UNREADABLE_EVENT for events QCAT did not write. */
export function toRecordedEvent(event: EsdbRecordedEvent, position: Position): RecordedEvent {
  const stored = event.metadata;
  if (!isEventMetadata(stored)) throw unreadable(event, 'metadata lacks an actor');
  // Events written before the chain carry no hash: '' reads as a broken link to the verifier.
  const { [HASH_METADATA_KEY]: hash, ...metadata } = stored;
  return {
    eventId: event.id.toLowerCase(),
    type: event.type,
    data: decodeData(event),
    metadata,
    streamId: event.streamId,
    revision: event.revision,
    position,
    // The client already truncates ESDB's 100 ns ticks to milliseconds; copy so callers own it.
    recordedAt: new Date(event.created.getTime()),
    hash: typeof hash === 'string' ? hash : '',
  };
}

/**
 * The hashes of events appended after `previous` (the stream's last hash, GENESIS_HASH for a new
 * stream) starting at `revision`. ESDB stamps the commit time itself after the hash is made, so
 * the time field of the chain text is empty here (ADR 005).
 */
export function chainHashes(
  previous: string,
  revision: Revision,
  events: readonly PreparedEvent[],
): string[] {
  let hash = previous;
  return events.map((event, index) => {
    hash = sha256(chainText(hash, revision + BigInt(index), '', sha256(event.content)));
    return hash;
  });
}

/** The reserved hash member in a caller's metadata would be overwritten: refuse it. */
export function assertNoReservedMetadata(events: readonly PreparedEvent[]): void {
  events.forEach((event, index) => {
    const metadata = JSON.parse(event.metadataJson) as Record<string, unknown>;
    if (Object.hasOwn(metadata, HASH_METADATA_KEY)) {
      throw new ValidationError(
        'RESERVED_METADATA_KEY',
        `event ${index}: metadata.${HASH_METADATA_KEY} is reserved for the event's hash`,
        { index },
      );
    }
  });
}

const clampRevision = (revision: Revision | undefined): Revision =>
  revision === undefined || revision < 0n ? 0n : revision;

const countLimit = (maxCount: number | undefined, fallback: number): number =>
  maxCount === undefined ? fallback : Math.trunc(maxCount);

/** How to ask ESDB for a stream read with these options; null when nothing can match. */
export function streamReadStart(
  options: ReadStreamOptions,
): { direction: typeof FORWARDS | typeof BACKWARDS; fromRevision: Revision | typeof END } | null {
  const from = clampRevision(options.fromRevision);
  const to = options.toRevision;
  if (countLimit(options.maxCount, 1) <= 0 || (to !== undefined && to < from)) return null;
  // A backwards read from beyond the end starts at the last event (ESDB clamps it).
  return options.direction === 'backwards'
    ? { direction: BACKWARDS, fromRevision: to ?? END }
    : { direction: FORWARDS, fromRevision: from };
}

/**
 * Applies ReadStreamOptions to a stream read in the order ESDB returns it (as planned by
 * `streamReadStart`), stopping as soon as the rest cannot match: revisions and positions grow
 * together along a stream. `toInstant` is a filter, not a stop, so it means exactly "recordedAt ≤ T".
 */
export async function selectStreamRead(
  events: AsyncIterable<RecordedEvent>,
  options: ReadStreamOptions,
): Promise<RecordedEvent[]> {
  const from = clampRevision(options.fromRevision);
  const { toRevision: to, toPosition, toInstant } = options;
  const backwards = options.direction === 'backwards';
  const max = countLimit(options.maxCount, Number.POSITIVE_INFINITY);
  const selected: RecordedEvent[] = [];
  if (max <= 0) return selected;
  for await (const event of events) {
    const beyond = backwards
      ? event.revision < from
      : (to !== undefined && event.revision > to) ||
        (toPosition !== undefined && event.position > toPosition);
    if (beyond) break;
    const inRange =
      event.revision >= from &&
      (to === undefined || event.revision <= to) &&
      (toPosition === undefined || event.position <= toPosition) &&
      (toInstant === undefined || event.recordedAt.getTime() <= toInstant.getTime());
    if (!inRange) continue;
    selected.push(event);
    if (selected.length >= max) break;
  }
  return selected;
}

/** One batch of `$all` from a forward read that starts at `readPositionAfter(after)`. */
export async function selectAllRead(
  events: AsyncIterable<RecordedEvent>,
  options: ReadAllOptions,
): Promise<RecordedEvent[]> {
  const after = options.after ?? START;
  const max = countLimit(options.maxCount, 1000);
  const selected: RecordedEvent[] = [];
  if (max <= 0) return selected;
  for await (const event of events) {
    if (event.position <= after) continue;
    if (options.toPosition !== undefined && event.position > options.toPosition) break;
    selected.push(event);
    if (selected.length >= max) break;
  }
  return selected;
}

/** From a backwards read of `$all`: the last position recorded at or before `instant`. */
export async function lastPositionAt(
  backwards: AsyncIterable<RecordedEvent>,
  instant: Date,
): Promise<Position> {
  for await (const event of backwards) {
    if (event.recordedAt.getTime() <= instant.getTime()) return event.position;
  }
  return START;
}

/* ------------------------------------------------------------------------------------------------
 * The adapter.
 * ---------------------------------------------------------------------------------------------- */

/** Events per read request after the first one. */
const PAGE = 1000;
/** Appends with 'any' that lose the race to another writer re-chain this many times at most. */
const MAX_CHAIN_RETRIES = 20;
const pageSize = (wanted: number): number => Math.max(2, Math.min(wanted, 5 * PAGE));

/**
 * One bounded read, consumed to its end. Reads are never abandoned part-way: the client keeps a
 * read that finished on the server but was not read to its end among its open streams for good
 * (cancel() is then a no-op), which leaks it and makes dispose() wait forever.
 */
async function collect<T>(read: StreamingRead<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of read) items.push(item);
  return items;
}

function requirePosition(resolved: EsdbResolved): Position {
  const position = positionOf(resolved);
  if (position === undefined) {
    throw new QcatError(
      'UNSUPPORTED_SERVER',
      'EventStoreDB returned an event without its position; stream reads need server 22.6 or later',
    );
  }
  return position;
}

async function first<T>(items: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of items) return item;
  return undefined;
}

/**
 * The event log in EventStoreDB. ESDB's single writer commits in log order, so `$all` has no gaps
 * for a subscriber to skip; positions are commit positions (byte offsets, not contiguous).
 *
 * Where the semantics differ from the contract (recorded in the ADR):
 * - An eventId recorded in another stream is not detected: ESDB has no index by event id (its own
 *   check is a bounded in-memory cache that ignores other streams), so such an append is written.
 *   Repeats and partial repeats within the same stream are detected by reading that stream.
 * - An append with caller-chosen eventIds first reads the whole stream to find them: O(stream).
 * - Every append first reads the stream's last event, for the hash chain (ADR 005), and appends at
 *   exactly that revision; with 'any' or 'stream_exists' a writer that got in between makes it
 *   re-read and re-chain. The hash travels in the metadata member `$qcatHash` and does not cover
 *   recordedAt, which the server stamps afterwards.
 * - positionAt is a linear backwards scan of `$all`: ESDB has no time index.
 * - recordedAt is ESDB's `created`, stamped by the leader's clock; it stays non-decreasing along
 *   positions only as long as that clock never steps back.
 * - The server's max append size (1 MiB by default) caps a whole append, which the port's per-event
 *   limit does not; raise --max-append-size for large multi-event appends.
 * - Explicit transactions (legacy TCP clients only) give several events one commit position; such
 *   logs are not supported.
 */
export class EventStoreDBEventStore implements EventStore {
  private readonly live = new Set<Subscriber<RecordedEvent>>();
  private closed = false;

  private constructor(private readonly client: EventStoreDBClient) {}

  static async connect(options: EventStoreDBEventStoreOptions): Promise<EventStoreDBEventStore> {
    const client = EventStoreDBClient.connectionString(options.connectionString);
    try {
      // The client connects lazily: one tiny read proves address, credentials and $all access now.
      await collect(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    } catch (error) {
      await client.dispose().catch(() => undefined);
      throw toError(error);
    }
    return new EventStoreDBEventStore(client);
  }

  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    const expected = options.expectedRevision ?? 'any';
    const generated = new Set<string>();
    const prepared = prepareAppend(streamId, events, expected, () => {
      const id = randomUUID();
      generated.add(id);
      return id;
    });
    assertNoReservedMetadata(prepared);
    const eventIds = prepared.map((event) => event.eventId);
    // Ids generated just now cannot be recorded anywhere; only caller-chosen ones need a look-up.
    const mayRepeat = eventIds.some((id) => !generated.has(id));
    if (mayRepeat) {
      const repeated = await this.repeatedAppend(streamId, eventIds);
      if (repeated) return repeated;
    }

    let written: EsdbAppendResult;
    for (let attempt = 1; ; attempt++) {
      // The chain needs the stream's last hash, so every append reads the last event first and
      // then appends at exactly that revision: a writer that got in between makes ESDB refuse.
      const last = await this.lastEvent(streamId);
      const current = last?.revision ?? -1n;
      try {
        checkExpectedRevision(streamId, expected, current);
      } catch (error) {
        // A concurrent identical append may be what moved the stream: that is a repeat.
        if (mayRepeat) {
          const repeated = await this.repeatedAppend(streamId, eventIds);
          if (repeated) return repeated;
        }
        throw error;
      }
      const hashes = chainHashes(last?.hash ?? GENESIS_HASH, current + 1n, prepared);
      try {
        written = await this.client.appendToStream(
          streamId,
          prepared.map((event, index) => toEventData(event, hashes[index] ?? '')),
          { expectedRevision: current === -1n ? NO_STREAM : current },
        );
        break;
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) {
          // ESDB also answers a partial repeat with WrongExpectedVersion, and a concurrent
          // identical append may have landed since we looked: decide by what the stream now holds.
          if (mayRepeat) {
            const repeated = await this.repeatedAppend(streamId, eventIds);
            if (repeated) return repeated;
          }
          // Another writer appended since we read: with 'any' or 'stream_exists' the caller did
          // not ask for a revision, so chain onto the new last event and try again.
          if ((expected === 'any' || expected === 'stream_exists') && attempt < MAX_CHAIN_RETRIES)
            continue;
        }
        throw mapAppendError(streamId, expected, error);
      }
    }
    if (!written.success) {
      // Only with throwOnAppendFailure=false in the connection string; the client's revision in
      // that answer is unreliable, so read the actual one.
      if (mayRepeat) {
        const repeated = await this.repeatedAppend(streamId, eventIds);
        if (repeated) return repeated;
      }
      throw toConcurrencyConflict(streamId, expected, await this.lastRevision(streamId));
    }
    if (written.position) {
      return {
        nextExpectedRevision: written.nextExpectedRevision,
        position: written.position.commit,
      };
    }
    // ESDB took it as a repeat of an append it has not indexed yet and gave no position.
    const repeated = await this.repeatedAppend(streamId, eventIds);
    if (repeated) return repeated;
    throw new Error(`EventStoreDB accepted an append to '${streamId}' but reported no position`);
  }

  /** The original result when this append already happened; throws when it partly did. */
  private async repeatedAppend(
    streamId: string,
    eventIds: readonly string[],
  ): Promise<AppendResult | null> {
    const wanted = new Set(eventIds);
    const found = new Map<string, FoundEvent>();
    // Backwards: a retry's events are usually the stream's last ones.
    let from: Revision | typeof END = END;
    try {
      while (found.size < wanted.size) {
        const page: ResolvedEvent[] = await collect(
          this.client.readStream(streamId, {
            direction: BACKWARDS,
            fromRevision: from,
            maxCount: PAGE,
          }),
        );
        for (const resolved of page) {
          const event = resolved.event;
          const eventId = event?.id.toLowerCase();
          if (event === undefined || eventId === undefined || !wanted.has(eventId)) continue;
          if (found.has(eventId)) continue;
          const position = requirePosition(resolved);
          found.set(eventId, { eventId, streamId, revision: event.revision, position });
        }
        const last = page.at(-1)?.event;
        if (page.length < PAGE || last === undefined || last.revision === 0n) break;
        from = last.revision - 1n;
      }
    } catch (error) {
      if (!(error instanceof StreamNotFoundError)) throw toError(error);
    }
    const repeated = resolveRepeatedAppend(streamId, eventIds, found);
    return repeated && { nextExpectedRevision: repeated.revision, position: repeated.position };
  }

  /** The stream's last event (its revision and hash), or undefined for no stream. */
  private async lastEvent(streamId: string): Promise<RecordedEvent | undefined> {
    try {
      const [last] = await collect(
        this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: 1 }),
      );
      return last?.event === undefined
        ? undefined
        : toRecordedEvent(last.event, requirePosition(last));
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw toError(error);
    }
  }

  private async lastRevision(streamId: string): Promise<CurrentRevision> {
    try {
      const [last] = await collect(
        this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: 1 }),
      );
      return last?.event?.revision ?? NO_STREAM;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return NO_STREAM;
      throw toError(error);
    }
  }

  /** QCAT's events of a stream, from where `start` says, in pages; system events left out. */
  private async *streamEvents(
    streamId: string,
    start: NonNullable<ReturnType<typeof streamReadStart>>,
    firstPage: number,
  ): AsyncGenerator<RecordedEvent, void, undefined> {
    const backwards = start.direction === BACKWARDS;
    let from: Revision | typeof END = start.fromRevision;
    let size = firstPage;
    for (;;) {
      const page: ResolvedEvent[] = await collect(
        this.client.readStream(streamId, {
          direction: start.direction,
          fromRevision: from,
          maxCount: size,
        }),
      );
      for (const resolved of page) {
        const event = resolved.event;
        if (event === undefined || isSystemEvent(event)) continue;
        yield toRecordedEvent(event, requirePosition(resolved));
      }
      const last = page.at(-1)?.event;
      if (page.length < size || last === undefined) return;
      if (backwards && last.revision === 0n) return;
      from = backwards ? last.revision - 1n : last.revision + 1n;
      size = PAGE;
    }
  }

  /**
   * QCAT's events of `$all`, in pages, system events left out. Forwards from `after` (the event at
   * a start position comes back and is skipped); backwards from the end (`after` unused).
   */
  private async *allEvents(
    direction: typeof FORWARDS | typeof BACKWARDS,
    after: Position,
    firstPage: number,
  ): AsyncGenerator<RecordedEvent, void, undefined> {
    const forwards = direction === FORWARDS;
    let from: ReadPosition = forwards ? readPositionAfter(after) : END;
    // Highest position seen going forwards, lowest going backwards: pages may overlap by one.
    let seen: Position | undefined = forwards ? after : undefined;
    let size = firstPage;
    for (;;) {
      const page: AllStreamResolvedEvent[] = await collect(
        this.client.readAll({ direction, fromPosition: from, maxCount: size }),
      );
      for (const resolved of page) {
        const event = resolved.event;
        if (event === undefined) continue;
        const position = event.position.commit;
        if (seen !== undefined && (forwards ? position <= seen : position >= seen)) continue;
        seen = position;
        if (!isSystemEvent(event)) yield toRecordedEvent(event, position);
      }
      const last = page.at(-1)?.event;
      if (page.length < size || last === undefined) return;
      from = last.position;
      size = PAGE;
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    assertValidStreamId(streamId);
    const start = streamReadStart(options);
    if (start === null) return [];
    const firstPage = pageSize(options.maxCount === undefined ? PAGE : options.maxCount);
    try {
      return await selectStreamRead(this.streamEvents(streamId, start, firstPage), options);
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw toError(error);
    }
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const after = options.after ?? START;
    if (options.toPosition !== undefined && options.toPosition <= after) return [];
    // One more than asked for: a forward read includes the event at its start position.
    const firstPage = pageSize((options.maxCount ?? 1000) + 1);
    return selectAllRead(this.allEvents(FORWARDS, after, firstPage), options);
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    const after = options.after ?? START;
    return new Observable<RecordedEvent>((subscriber) => {
      if (this.closed) {
        subscriber.error(new Error('EventStoreDB event store is closed'));
        return undefined;
      }
      // Catch-up then live is ESDB's own: it switches from reading the log to live pushes and
      // back (if we fall behind) without gaps, pacing itself (so batchSize does not apply). The
      // filter keeps system events on the server.
      const subscription = this.client.subscribeToAll({
        fromPosition: readPositionAfter(after),
        filter: excludeSystemEvents(),
      });
      let checkpoint = after;
      this.live.add(subscriber);
      subscription.on('data', (resolved: AllStreamResolvedEvent) => {
        const event = resolved.event;
        if (event === undefined || subscriber.closed) return;
        const position = event.position.commit;
        // The start position itself may be delivered again; `$` streams pass an event-type filter.
        if (position <= checkpoint || isSystemEvent(event)) return;
        let recorded: RecordedEvent;
        try {
          recorded = toRecordedEvent(event, position);
        } catch (error) {
          subscriber.error(error);
          return;
        }
        checkpoint = position;
        subscriber.next(recorded);
      });
      // Errors after our own unsubscribe land on a closed subscriber and are dropped; the listener
      // stays so a late 'error' never goes unhandled.
      subscription.on('error', (error: Error) => {
        subscriber.error(error);
      });
      subscription.on('end', () => {
        subscriber.error(new Error('EventStoreDB ended the $all subscription'));
      });
      return () => {
        this.live.delete(subscriber);
        // A live subscription never finished on the server, so cancelling really ends it.
        void subscription.unsubscribe().catch(() => undefined);
      };
    });
  }

  async headPosition(): Promise<Position> {
    const last = await first(this.allEvents(BACKWARDS, START, 16));
    return last?.position ?? START;
  }

  /**
   * Linear in the events after the answer: ESDB has no index by time, so this scans `$all`
   * backwards. An instant before the first event is answered from the log's start instead, which
   * relies on recordedAt being non-decreasing along positions.
   */
  async positionAt(instant: Date): Promise<Position> {
    const earliest = await first(this.allEvents(FORWARDS, START, 64));
    if (earliest === undefined || earliest.recordedAt.getTime() > instant.getTime()) return START;
    return lastPositionAt(this.allEvents(BACKWARDS, START, PAGE), instant);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Disposing cancels live subscriptions silently; tell their subscribers instead of hanging.
    for (const subscriber of this.live) {
      subscriber.error(new Error('EventStoreDB event store was closed'));
    }
    this.live.clear();
    await this.client.dispose();
  }
}
