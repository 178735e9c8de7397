import type { ReadStreamOptions, RecordedEvent } from './event-store.js';

/** Applies read-stream options to a stream's events held in revision order. */
export function selectStreamEvents(
  stream: readonly RecordedEvent[],
  options: ReadStreamOptions,
): RecordedEvent[] {
  const from = options.fromRevision ?? 0n;
  const to = options.toRevision;
  const selected = stream.filter(
    (event) =>
      event.revision >= from &&
      (to === undefined || event.revision <= to) &&
      (options.toPosition === undefined || event.position <= options.toPosition) &&
      (options.toInstant === undefined || event.recordedAt <= options.toInstant),
  );
  if (options.direction === 'backwards') selected.reverse();
  return options.maxCount === undefined ? selected : selected.slice(0, options.maxCount);
}
