import { ConcurrencyConflictError, ValidationError } from '../errors.js';
import type { ExpectedRevision, Revision } from './event-store.js';

/** `current` is the stream's last revision, or -1n when the stream does not exist. */
export function checkExpectedRevision(
  streamId: string,
  expected: ExpectedRevision,
  current: Revision,
): void {
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && current === -1n) ||
    (expected === 'stream_exists' && current >= 0n) ||
    expected === current;
  if (!ok) {
    throw new ConcurrencyConflictError(
      streamId,
      String(expected),
      current === -1n ? 'no_stream' : String(current),
    );
  }
}

/** An eventId already in the log, somewhere other than a faithful repeat of this append. */
export const eventIdReused = (streamId: string, eventId: string): ValidationError =>
  new ValidationError(
    'EVENT_ID_REUSED',
    `eventId ${eventId} is already recorded, but not as part of this same append to '${streamId}'`,
    { streamId, eventId },
  );

/** Events found by id: where each of an append's ids already stands, if anywhere. */
export interface FoundEvent {
  eventId: string;
  streamId: string;
  revision: Revision;
  position: bigint;
}

/**
 * Idempotent re-append: when every id of the append is already recorded in this stream, in this
 * order and back to back, the append already happened and its original result stands. Any other
 * overlap with recorded ids is refused.
 * Returns the original last event, or null when none of the ids are recorded.
 */
export function resolveRepeatedAppend(
  streamId: string,
  eventIds: readonly string[],
  found: ReadonlyMap<string, FoundEvent>,
): FoundEvent | null {
  if (found.size === 0) return null;
  let previous: FoundEvent | undefined;
  for (const eventId of eventIds) {
    const hit = found.get(eventId);
    if (hit?.streamId !== streamId || (previous && hit.revision !== previous.revision + 1n)) {
      throw eventIdReused(streamId, eventId);
    }
    previous = hit;
  }
  return previous ?? null;
}
