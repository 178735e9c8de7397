import { describe, expect, it } from 'vitest';
import type { EventStore, Position, RecordedEvent } from '../eventstore/event-store.js';
import { InMemoryEventStore } from '../eventstore/in-memory-event-store.js';
import { verifyLog, verifyOptionsFor } from './verify.js';

/** A log as a list, served the way an adapter's readAll does; head as the store records it. */
function logOf(
  events: readonly RecordedEvent[],
  head: Position = events.at(-1)?.position ?? 0n,
): Pick<EventStore, 'readAll' | 'headPosition'> & { reads: number } {
  const store = {
    reads: 0,
    headPosition: () => Promise.resolve(head),
    readAll: (options: { after?: Position; toPosition?: Position; maxCount?: number } = {}) => {
      store.reads++;
      const after = options.after ?? 0n;
      return Promise.resolve(
        events
          .filter(
            (e) =>
              e.position > after &&
              (options.toPosition === undefined || e.position <= options.toPosition),
          )
          .slice(0, options.maxCount ?? 1000),
      );
    },
  };
  return store;
}

/** Three streams, eleven events, in several appends. */
async function sampleLog(): Promise<RecordedEvent[]> {
  let clock = Date.UTC(2026, 0, 1);
  const store = new InMemoryEventStore(() => new Date((clock += 7)));
  const e = (type: string, n: number) => ({ type, data: { n }, metadata: { actor: 'u' } });
  await store.appendToStream('order-a', [e('A', 0), e('A', 1)]);
  await store.appendToStream('order-b', [e('B', 0)]);
  await store.appendToStream('order-a', [e('A', 2)]);
  await store.appendToStream('order-c', [e('C', 0), e('C', 1), e('C', 2)]);
  await store.appendToStream('order-b', [e('B', 1), e('B', 2)]);
  await store.appendToStream('order-a', [e('A', 3), e('A', 4)]);
  return store.readAll();
}

const renumber = (events: RecordedEvent[]): RecordedEvent[] =>
  events.map((event, index) => ({ ...event, position: BigInt(index + 1) }));

describe('verifyLog', () => {
  it('passes an intact log in batches and reports what it covered', async () => {
    const events = await sampleLog();
    const log = logOf(events);
    const report = await verifyLog(log, { batchSize: 4 });
    expect(report).toMatchObject({
      ok: true,
      eventsChecked: 11,
      streams: 3,
      headPosition: 11n,
      verifiedTo: 11n,
      firstBroken: null,
    });
    expect(report.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(log.reads).toBe(3);
  });

  it('passes an empty log', async () => {
    expect(await verifyLog(logOf([]))).toMatchObject({ ok: true, eventsChecked: 0 });
  });

  it('verifies up to a position, and the digest there does not depend on what follows', async () => {
    const events = await sampleLog();
    const upTo6 = await verifyLog(logOf(events), { toPosition: 6n });
    expect(upTo6).toMatchObject({ ok: true, eventsChecked: 6, verifiedTo: 6n });
    expect((await verifyLog(logOf(events.slice(0, 6)))).digest).toBe(upTo6.digest);
    expect((await verifyLog(logOf(events))).digest).not.toBe(upTo6.digest);
  });

  it('names a stream event deleted from the middle of the log (position gap)', async () => {
    const events = await sampleLog();
    const deleted = events.filter((e) => e.position !== 4n); // order-a@2
    const report = await verifyLog(logOf(deleted, 11n));
    expect(report.firstBroken).toMatchObject({
      reason: 'position_gap',
      position: 5n,
      expected: '4',
      found: '5',
    });
  });

  it('names a deleted event even when the positions were renumbered to hide it (revision gap)', async () => {
    const events = await sampleLog();
    const renumbered = renumber(events.filter((e) => e.position !== 4n));
    const report = await verifyLog(logOf(renumbered));
    // order-a jumps from revision 1 to 3 at its next event.
    expect(report.firstBroken).toMatchObject({
      reason: 'revision_gap',
      streamId: 'order-a',
      revision: 3n,
      expected: '2',
      found: '3',
    });
  });

  it('names deleted events at the end of the log (truncated below the recorded head)', async () => {
    const events = await sampleLog();
    const report = await verifyLog(logOf(events.slice(0, 9), 11n));
    expect(report.firstBroken).toMatchObject({
      reason: 'log_truncated',
      position: 11n,
      expected: '11',
      found: '9',
    });
    expect(report.eventsChecked).toBe(9);
  });

  it('names a changed event and the hash it should have', async () => {
    const events = await sampleLog();
    const original = events[6]!;
    events[6] = { ...original, data: { n: 999 } };
    const report = await verifyLog(logOf(events));
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({
      reason: 'hash_mismatch',
      position: original.position,
      streamId: original.streamId,
      revision: original.revision,
      eventId: original.eventId,
      found: original.hash,
    });
    expect(report.firstBroken?.expected).toMatch(/^[0-9a-f]{64}$/);
    expect(report.verifiedTo).toBe(original.position - 1n);
  });

  it('names an event whose hash was recomputed, at its successor in the stream', async () => {
    // Someone changes an event and fixes its own hash: the next event's link no longer fits.
    const { eventHash, GENESIS_HASH } = await import('../eventstore/event-hash.js');
    const events = await sampleLog();
    const index = events.findIndex((e) => e.streamId === 'order-c' && e.revision === 0n);
    const forged = { ...events[index]!, data: { n: 42 } };
    forged.hash = eventHash(GENESIS_HASH, forged);
    events[index] = forged;
    const report = await verifyLog(logOf(events));
    expect(report.firstBroken).toMatchObject({
      reason: 'hash_mismatch',
      streamId: 'order-c',
      revision: 1n,
    });
  });

  it('names commit times that go backwards and positions that do not increase', async () => {
    const events = await sampleLog();
    const early = events.map((e, i) =>
      i === 5 ? { ...e, recordedAt: new Date(e.recordedAt.getTime() - 1000) } : e,
    );
    expect((await verifyLog(logOf(early))).firstBroken).toMatchObject({
      reason: 'time_order',
      position: 6n,
    });
    const swapped = [...events];
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    // Where gaps are allowed, 5 before 4 is the order going back; with contiguous positions it
    // is the gap at 5 that shows first.
    expect((await verifyLog(logOf(swapped))).firstBroken).toMatchObject({
      reason: 'position_gap',
      position: 5n,
    });
    expect(
      (await verifyLog(logOf(swapped), { contiguousPositions: false })).firstBroken,
    ).toMatchObject({
      reason: 'position_order',
      position: 4n,
    });
  });

  it('allows gaps between positions where the store does (EventStoreDB), not a missing head', async () => {
    const events = (await sampleLog()).map((e) => ({ ...e, position: e.position * 100n }));
    // These hashes cover the commit time; EventStoreDB's do not, so check positions only here.
    const options = { ...verifyOptionsFor('eventstoredb'), time: 'recordedAt' as const };
    expect(await verifyLog(logOf(events), options)).toMatchObject({ ok: true, eventsChecked: 11 });
    expect(
      (await verifyLog(logOf(events), verifyOptionsFor('postgres'))).firstBroken,
    ).toMatchObject({ reason: 'position_gap', position: 100n });
    expect((await verifyLog(logOf(events.slice(0, 10), 1100n), options)).firstBroken).toMatchObject(
      { reason: 'log_truncated' },
    );
  });

  it('reads an EventStoreDB chain without the commit time, and refuses it with one', async () => {
    const { eventHash, GENESIS_HASH } = await import('../eventstore/event-hash.js');
    const events = (await sampleLog()).filter((e) => e.streamId === 'order-b');
    let previous = GENESIS_HASH;
    const esdb = events.map((e, index) => {
      previous = eventHash(previous, e, { time: 'none' });
      return { ...e, position: BigInt(index + 1) * 50n, hash: previous };
    });
    expect((await verifyLog(logOf(esdb), verifyOptionsFor('eventstoredb'))).ok).toBe(true);
    expect(
      (await verifyLog(logOf(esdb), { contiguousPositions: false })).firstBroken,
    ).toMatchObject({ reason: 'hash_mismatch', revision: 0n });
  });
});
