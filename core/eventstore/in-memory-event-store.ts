import { Observable } from 'rxjs';
import {
  checkExpectedRevision,
  resolveRepeatedAppend,
  type FoundEvent,
} from './expected-revision.js';
import { assertValidStreamId, prepareAppend } from './append-validation.js';
import {
  START,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
} from './event-store.js';
import { GENESIS_HASH, chainText } from './event-hash.js';
import { selectStreamEvents } from './read-stream.js';
import { sha256Hex } from './sha256.js';
import { toError } from '../errors.js';

const copy = (event: RecordedEvent): RecordedEvent => ({
  ...structuredClone(event),
  recordedAt: new Date(event.recordedAt),
});

/**
 * The log in memory, for unit tests. Same contract as the real adapters; every reader gets copies.
 * Stores made with `connect()` share one log, like several connections to one database.
 */
export class InMemoryEventStore implements EventStore {
  private readonly log: RecordedEvent[];
  private readonly byId: Map<string, RecordedEvent>;
  private readonly listeners: Set<() => void>;

  constructor(
    private readonly now: () => Date = () => new Date(),
    shared?: InMemoryEventStore,
  ) {
    this.log = shared?.log ?? [];
    this.byId = shared?.byId ?? new Map<string, RecordedEvent>();
    this.listeners = shared?.listeners ?? new Set<() => void>();
  }

  /** Another handle on the same log. */
  connect(): InMemoryEventStore {
    return new InMemoryEventStore(this.now, this);
  }

  appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    try {
      return Promise.resolve(this.append(streamId, events, options.expectedRevision ?? 'any'));
    } catch (error) {
      return Promise.reject(toError(error));
    }
  }

  private append(
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): AppendResult {
    const prepared = prepareAppend(streamId, events, expected);
    const found = new Map<string, FoundEvent>();
    for (const event of prepared) {
      const hit = this.byId.get(event.eventId);
      if (hit) found.set(hit.eventId, hit);
    }
    const repeated = resolveRepeatedAppend(
      streamId,
      prepared.map((event) => event.eventId),
      found,
    );
    if (repeated) return { nextExpectedRevision: repeated.revision, position: repeated.position };

    const stream = this.log.filter((event) => event.streamId === streamId);
    let revision = BigInt(stream.length) - 1n;
    checkExpectedRevision(streamId, expected, revision);
    const last = this.log.at(-1);
    let position = last?.position ?? START;
    const clock = this.now();
    const recordedAt = last && last.recordedAt > clock ? last.recordedAt : clock;
    let previousHash = stream.at(-1)?.hash ?? GENESIS_HASH;
    for (const event of prepared) {
      const hash = sha256Hex(
        chainText(
          previousHash,
          revision + 1n,
          String(recordedAt.getTime()),
          sha256Hex(event.content),
        ),
      );
      previousHash = hash;
      const recorded: RecordedEvent = {
        eventId: event.eventId,
        type: event.type,
        data: JSON.parse(event.dataJson) as RecordedEvent['data'],
        metadata: JSON.parse(event.metadataJson) as RecordedEvent['metadata'],
        streamId,
        revision: ++revision,
        position: ++position,
        recordedAt,
        hash,
      };
      this.log.push(recorded);
      this.byId.set(recorded.eventId, recorded);
    }
    for (const listener of this.listeners) listener();
    return { nextExpectedRevision: revision, position };
  }

  readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    assertValidStreamId(streamId);
    const stream = this.log.filter((event) => event.streamId === streamId);
    return Promise.resolve(selectStreamEvents(stream, options).map(copy));
  }

  readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const after = options.after ?? START;
    const to = options.toPosition;
    const max = options.maxCount ?? 1000;
    // Positions are 1..n here, so the event after `after` is at index `after`.
    const slice = this.log.slice(Number(after), Number(after) + max);
    return Promise.resolve(
      slice.filter((event) => to === undefined || event.position <= to).map(copy),
    );
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      let checkpoint: Position = options.after ?? START;
      const deliver = (): void => {
        while (!subscriber.closed && checkpoint < BigInt(this.log.length)) {
          const event = this.log[Number(checkpoint)];
          if (!event) break;
          checkpoint = event.position;
          subscriber.next(copy(event));
        }
      };
      // Deliver asynchronously, as the real adapters do, so subscribers never see a re-entrant call.
      const listener = (): void => void Promise.resolve().then(deliver);
      this.listeners.add(listener);
      listener();
      return () => this.listeners.delete(listener);
    });
  }

  headPosition(): Promise<Position> {
    return Promise.resolve(this.log.at(-1)?.position ?? START);
  }

  positionAt(instant: Date): Promise<Position> {
    let position = START;
    for (const event of this.log) {
      if (event.recordedAt > instant) break;
      position = event.position;
    }
    return Promise.resolve(position);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Tests of tamper evidence only: replaces the stored event at `position` with `edit`'s result,
   * as someone with write access to a real store could. Answers a function that puts it back.
   */
  tamperForTests(position: Position, edit: (event: RecordedEvent) => RecordedEvent): () => void {
    const index = this.log.findIndex((event) => event.position === position);
    const original = this.log[index];
    if (!original) throw new Error(`no event at position ${position.toString()}`);
    this.log[index] = edit(copy(original));
    return () => {
      this.log[index] = original;
    };
  }
}
