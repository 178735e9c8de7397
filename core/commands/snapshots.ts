import type { Decider, DomainEvent } from '../decider.js';
import { canonicalJsonIfPlain } from '../eventstore/event-hash.js';
import type { JsonValue } from '../eventstore/event-store.js';

/**
 * Snapshots of command-side state (ADR 012): a stream's folded state at a revision, so loading an
 * aggregate reads only the events after it. A cache, never a source of truth: any snapshot may be
 * lost, and one that does not match (another schema, another log) is ignored.
 */
export interface StateSnapshot {
  /** Which fold made it: the decider's snapshot name and schema version (`desk/1`). */
  schema: string;
  /** The revision of the last event folded, and that event's id and position. */
  revision: bigint;
  eventId: string;
  position: bigint;
  /** The folded state, as plain JSON. */
  state: JsonValue;
}

export interface SnapshotStore {
  load(streamId: string): Promise<StateSnapshot | undefined>;
  /**
   * Keeps the snapshot unless the stored one is of the same schema and a later revision (two
   * processes may save at once); `replace` keeps it whatever is stored (the stored one was found
   * to be of another log).
   */
  save(streamId: string, snapshot: StateSnapshot, replace?: boolean): Promise<void>;
}

export interface SnapshotOptions {
  store: SnapshotStore;
  /** A snapshot is written once a load folds at least this many events after it; default 200. */
  every?: number;
  /** The snapshot schema of a decider, or undefined for one that is not snapshotted. */
  schemaOf?: (decider: Decider<unknown, unknown, DomainEvent>) => string | undefined;
}

/** The state as plain JSON text, or null when it is not plain JSON (then it is not snapshotted). */
export const snapshotText = (state: unknown): string | null => canonicalJsonIfPlain(state);

/** For tests and the in-memory store: snapshots as JSON text, so a loaded state is a fresh copy. */
export class InMemorySnapshotStore implements SnapshotStore {
  private readonly rows = new Map<string, Omit<StateSnapshot, 'state'> & { text: string }>();
  saves = 0;

  load(streamId: string): Promise<StateSnapshot | undefined> {
    const row = this.rows.get(streamId);
    if (!row) return Promise.resolve(undefined);
    const { text, ...rest } = row;
    return Promise.resolve({ ...rest, state: JSON.parse(text) as JsonValue });
  }

  save(streamId: string, snapshot: StateSnapshot, replace = false): Promise<void> {
    const stored = this.rows.get(streamId);
    const newer =
      stored && stored.schema === snapshot.schema && stored.revision >= snapshot.revision;
    if (newer && !replace) return Promise.resolve();
    const { state, ...rest } = snapshot;
    this.rows.set(streamId, { ...rest, text: JSON.stringify(state) });
    this.saves++;
    return Promise.resolve();
  }

  /** Tests: replace a stored snapshot as is. */
  put(streamId: string, snapshot: StateSnapshot): void {
    const { state, ...rest } = snapshot;
    this.rows.set(streamId, { ...rest, text: JSON.stringify(state) });
  }
}
