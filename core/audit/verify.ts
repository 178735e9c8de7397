import { GENESIS_HASH, eventHash, type HashedTime } from '../eventstore/event-hash.js';
import {
  START,
  type EventStore,
  type Position,
  type RecordedEvent,
  type Revision,
} from '../eventstore/event-store.js';
import { sha256Hex, type Sha256Hex } from '../eventstore/sha256.js';

/** Why a link of the log is broken. */
export type BreakReason =
  /** The stored hash is not the one its content and its predecessor's hash give. */
  | 'hash_mismatch'
  /** A stream's revisions do not run 0, 1, 2, …: an event is missing or was moved. */
  | 'revision_gap'
  /** Positions skip one (PostgreSQL positions are contiguous): an event was deleted. */
  | 'position_gap'
  /** Positions do not strictly increase. */
  | 'position_order'
  /** A commit time earlier than the one before it. */
  | 'time_order'
  /** The log ends before the head it records: its last events were deleted. */
  | 'log_truncated'
  /** Resuming: the event at the last verified position is gone or not the one verified then. */
  | 'checkpoint_changed';

export interface BrokenLink {
  reason: BreakReason;
  /** Where the walk found it: the event's position, or the head for `log_truncated`. */
  position: Position;
  streamId: string | null;
  revision: Revision | null;
  eventId: string | null;
  expected: string;
  found: string;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  eventsChecked: number;
  streams: number;
  /** The log head when the walk started. */
  headPosition: Position;
  /** The last position the walk covered: the head (or `toPosition`) when the log is intact. */
  verifiedTo: Position;
  /**
   * Running SHA-256 over every checked event's position and hash, up to `verifiedTo`
   * (`d₀ = GENESIS_HASH`, `dᵢ = SHA-256(dᵢ₋₁ + "\n" + position + "\n" + hash)`); null when broken.
   * Kept somewhere the database's writers cannot reach, it proves later that nothing up to that
   * position changed, was removed or was renumbered (ADR 005).
   */
  digest: string | null;
  firstBroken: BrokenLink | null;
  /** Where this walk started: `START`, or the resumed checkpoint's position. */
  startedAfter: Position;
  /** The point to resume from next time (the last event checked); null when broken. */
  checkpoint: VerifiedPoint | null;
}

/**
 * The last event a walk verified and the running digest there: enough to resume the walk after it
 * instead of from position 1 (the scheduled incremental verify keeps it outside the database).
 */
export interface VerifiedPoint {
  position: Position;
  /** That event's stored hash: a resumed walk first checks it is still the same event. */
  hash: string;
  /** Its commit time, in Unix milliseconds. */
  recordedAt: number;
  digest: string;
}

export interface VerifyOptions {
  /** What the chain's time field holds; EventStoreDB's chain leaves it empty. */
  time?: HashedTime;
  /**
   * Positions run 1, 2, 3, … without gaps (PostgreSQL, in-memory; the default), so a missing one
   * is a break.
   */
  contiguousPositions?: boolean;
  /** Verify only up to here (inclusive); default the head when the walk starts. */
  toPosition?: Position;
  /** Events per read; default 1000. */
  batchSize?: number;
  /** A faster SHA-256 than the portable one, where the caller has it. */
  sha256?: Sha256Hex;
  onProgress?: (eventsChecked: number, position: Position) => void;
  /**
   * Resume after this verified point (needs the store's `readStream`): the walk checks that the
   * event there is unchanged, then each stream's next link against its predecessor's stored hash.
   * What lies before the point is not re-read; a full walk (no `from`) re-checks it.
   */
  from?: VerifiedPoint;
}

/** How to verify the log of each kind of store (ADR 005). */
export const verifyOptionsFor = (
  store: 'postgres' | 'eventstoredb' | 'memory',
): Pick<VerifyOptions, 'time' | 'contiguousPositions'> =>
  store === 'eventstoredb'
    ? { time: 'none', contiguousPositions: false }
    : { time: 'recordedAt', contiguousPositions: true };

interface StreamLink {
  revision: Revision;
  hash: string;
}

const broken = (
  reason: BreakReason,
  event: RecordedEvent,
  expected: string,
  found: string,
  detail: string,
): BrokenLink => ({
  reason,
  position: event.position,
  streamId: event.streamId,
  revision: event.revision,
  eventId: event.eventId,
  expected,
  found,
  detail,
});

/** The first problem with this event given what came before it, or null. */
function check(
  event: RecordedEvent,
  previousPosition: Position,
  previousTime: number,
  link: StreamLink | undefined,
  options: VerifyOptions,
  sha256: Sha256Hex,
): BrokenLink | null {
  const where = `'${event.streamId}'@${event.revision.toString()}`;
  if (event.position <= previousPosition) {
    return broken(
      'position_order',
      event,
      `> ${previousPosition.toString()}`,
      event.position.toString(),
      `position ${event.position.toString()} of ${where} does not follow ${previousPosition.toString()}`,
    );
  }
  if ((options.contiguousPositions ?? true) && event.position !== previousPosition + 1n) {
    const expected = previousPosition + 1n;
    return broken(
      'position_gap',
      event,
      expected.toString(),
      event.position.toString(),
      `positions ${expected.toString()}…${(event.position - 1n).toString()} are missing before ${where}: events were deleted`,
    );
  }
  if (event.recordedAt.getTime() < previousTime) {
    return broken(
      'time_order',
      event,
      `>= ${new Date(previousTime).toISOString()}`,
      event.recordedAt.toISOString(),
      `${where} was recorded before the event at the previous position`,
    );
  }
  const expectedRevision = link ? link.revision + 1n : 0n;
  if (event.revision !== expectedRevision) {
    return broken(
      'revision_gap',
      event,
      expectedRevision.toString(),
      event.revision.toString(),
      link
        ? `'${event.streamId}' jumps from revision ${link.revision.toString()} to ${event.revision.toString()}: events are missing`
        : `'${event.streamId}' starts at revision ${event.revision.toString()}: its first events are missing`,
    );
  }
  const expectedHash = eventHash(link?.hash ?? GENESIS_HASH, event, {
    sha256,
    time: options.time ?? 'recordedAt',
  });
  if (event.hash !== expectedHash) {
    return broken(
      'hash_mismatch',
      event,
      expectedHash,
      event.hash,
      `the hash stored with ${where} is not the one its content and its predecessor give: the event (or its hash) was changed after it was written`,
    );
  }
  return null;
}

/**
 * Walks `$all` in position order and checks every link: positions (strictly increasing, and
 * contiguous where the store promises it), commit times (non-decreasing), each stream's revisions
 * (0, 1, 2, …) and hash chain, and that the log reaches the head it records. Stops at the first
 * broken link. Streams through the log in batches; memory grows only with the number of streams
 * (one revision and hash each).
 */
export async function verifyLog(
  store: Pick<EventStore, 'readAll' | 'headPosition'> & Partial<Pick<EventStore, 'readStream'>>,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const sha256 = options.sha256 ?? sha256Hex;
  const batchSize = options.batchSize ?? 1000;
  const from = options.from;
  const headPosition = await store.headPosition();
  const to =
    options.toPosition !== undefined && options.toPosition < headPosition
      ? options.toPosition
      : headPosition;
  const streams = new Map<string, StreamLink>();
  let checked = 0;
  let previousPosition = from?.position ?? START;
  let previousTime = from?.recordedAt ?? Number.NEGATIVE_INFINITY;
  let previousHash = from?.hash ?? GENESIS_HASH;
  let digest = from?.digest ?? GENESIS_HASH;
  const report = (firstBroken: BrokenLink | null): VerifyReport => ({
    ok: firstBroken === null,
    eventsChecked: checked,
    streams: streams.size,
    headPosition,
    verifiedTo: previousPosition,
    digest: firstBroken === null ? digest : null,
    firstBroken,
    startedAfter: from?.position ?? START,
    checkpoint:
      firstBroken === null && previousPosition > START
        ? { position: previousPosition, hash: previousHash, recordedAt: previousTime, digest }
        : null,
  });

  if (from) {
    const problem = await anchorProblem(store, from);
    if (problem) return report(problem);
  }
  while (previousPosition < to) {
    const events = await store.readAll({
      after: previousPosition,
      toPosition: to,
      maxCount: batchSize,
    });
    if (events.length === 0) break;
    for (const event of events) {
      const link = streams.get(event.streamId) ?? (await storedLink(store, from, event));
      const problem = check(event, previousPosition, previousTime, link, options, sha256);
      if (problem) return report(problem);
      streams.set(event.streamId, { revision: event.revision, hash: event.hash });
      digest = sha256(`${digest}\n${event.position.toString()}\n${event.hash}`);
      previousPosition = event.position;
      previousTime = event.recordedAt.getTime();
      previousHash = event.hash;
      checked++;
    }
    options.onProgress?.(checked, previousPosition);
  }
  // With gaps allowed between positions, only the head itself is known to hold an event.
  const mustReach = (options.contiguousPositions ?? true) || to === headPosition;
  if (mustReach && previousPosition < to) {
    return report(truncated(to, previousPosition));
  }
  return report(null);
}

/**
 * A stream first met after the resumed point links to its predecessor as stored (or to nothing:
 * a fresh walk, a first revision, a store that cannot read streams).
 */
async function storedLink(
  store: Partial<Pick<EventStore, 'readStream'>>,
  from: VerifiedPoint | undefined,
  event: RecordedEvent,
): Promise<StreamLink | undefined> {
  if (!from || event.revision === 0n || !store.readStream) return undefined;
  const [predecessor] = await store.readStream(event.streamId, {
    fromRevision: event.revision - 1n,
    toRevision: event.revision - 1n,
    maxCount: 1,
  });
  return predecessor && predecessor.position <= from.position
    ? { revision: predecessor.revision, hash: predecessor.hash }
    : undefined;
}

/** The log ends before the head it records. */
function truncated(to: bigint, reached: bigint): BrokenLink {
  return {
    reason: 'log_truncated',
    position: to,
    streamId: null,
    revision: null,
    eventId: null,
    expected: to.toString(),
    found: reached.toString(),
    detail: `the log records its head at position ${to.toString()} but its events end at ${reached.toString()}: the last events were deleted`,
  };
}

/** The event at a resumed point must still be there, with the hash verified then. */
async function anchorProblem(
  store: Pick<EventStore, 'readAll' | 'headPosition'> & Partial<Pick<EventStore, 'readStream'>>,
  from: VerifiedPoint,
): Promise<BrokenLink | null> {
  if (!store.readStream) throw new Error('resuming a verify needs the store to read streams');
  if (from.position === START) return null;
  const [event] = await store.readAll({
    after: from.position - 1n,
    toPosition: from.position,
    maxCount: 1,
  });
  if (event?.position === from.position && event.hash === from.hash) return null;
  return {
    reason: 'checkpoint_changed',
    position: from.position,
    streamId: event?.streamId ?? null,
    revision: event?.revision ?? null,
    eventId: event?.eventId ?? null,
    expected: from.hash,
    found: event?.position === from.position ? event.hash : 'no event',
    detail: `the event at the last verified position ${from.position.toString()} is ${event?.position === from.position ? 'not the one verified then: the log was changed or replaced (a restore?)' : 'gone: the log was truncated or replaced'}`,
  };
}
