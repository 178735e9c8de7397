import type { Position, RecordedEvent } from '../../eventstore/event-store.js';

/**
 * The reads of a store's live subscribers, shared. A commit's notification wakes every caught-up
 * subscriber of a process at once (a `qcat serve` has about 25: each read model, each process
 * manager, the engine), and each asks for the events after the same position: one query answers
 * them all instead of one each (ADR 020, fifth round).
 *
 * A read joins another one in flight only when no notification has come since that one started:
 * the earlier query might not see the commit the later notification announced, and a subscriber
 * woken by it must. The events handed out are shared by every subscriber that joined, so they are
 * frozen, data and metadata included: a reader that tried to change one would fail loudly instead
 * of changing another reader's event.
 */
export class SharedReads {
  /** Notifications (and reconnections of the LISTEN connection) seen so far. */
  private notices = 0;
  private readonly inFlight = new Map<
    string,
    { notices: number; read: Promise<readonly RecordedEvent[]> }
  >();

  constructor(
    private readonly readAll: (after: Position, maxCount: number) => Promise<RecordedEvent[]>,
  ) {}

  /** Something was committed (or may have been, unseen): reads started before may miss it. */
  noticed(): void {
    this.notices++;
  }

  /** The events after `after`, at most `maxCount`, read with whoever asks the same now. */
  after(after: Position, maxCount: number): Promise<readonly RecordedEvent[]> {
    const key = `${String(after)}:${String(maxCount)}`;
    const joined = this.inFlight.get(key);
    if (joined?.notices === this.notices) return joined.read;
    const entry = {
      notices: this.notices,
      read: this.readAll(after, maxCount).then((events) => Object.freeze(events.map(deepFreeze))),
    };
    this.inFlight.set(key, entry);
    const done = (): void => {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    };
    entry.read.then(done, done);
    return entry.read;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return Object.freeze(value);
}
