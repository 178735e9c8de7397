import type { EventStore } from '../eventstore/event-store.js';

/** Where an event sits: enough to answer a keyed command again (ADR 032). */
export interface RecordedId {
  eventId: string;
  revision: bigint;
  position: bigint;
}

/**
 * Events of one stream found by their ids. A keyed command's events carry ids derived from its
 * idempotency key, so a retry after a crash between the append and the key's completion finds
 * what the first run wrote by id, without reading the stream (ADR 032).
 */
export interface EventIdIndex {
  /** Those of `eventIds` that are recorded in `streamId`, in any order. */
  find(streamId: string, eventIds: readonly string[]): Promise<RecordedId[]>;
}

/**
 * For stores without an index on event ids (in-memory, EventStoreDB): reads the whole stream, as
 * keyed commands did before ADR 032. Correct everywhere; its cost grows with the stream.
 */
export class StreamScanIndex implements EventIdIndex {
  constructor(private readonly store: EventStore) {}

  async find(streamId: string, eventIds: readonly string[]): Promise<RecordedId[]> {
    const wanted = new Set(eventIds);
    const events = await this.store.readStream(streamId);
    return events
      .filter((event) => wanted.has(event.eventId))
      .map(({ eventId, revision, position }) => ({ eventId, revision, position }));
  }
}
