import { describe, expect, it } from 'vitest';
import type { Position, RecordedEvent } from '../../eventstore/event-store.js';
import { SharedReads } from './shared-reads.js';

/** A store's readAll that answers only when told, counting its queries. */
function pendingReads() {
  const calls: { after: Position; resolve: (events: RecordedEvent[]) => void }[] = [];
  const read = (after: Position): Promise<RecordedEvent[]> =>
    new Promise((resolve) => calls.push({ after, resolve }));
  return { calls, read };
}

const event = (position: bigint): RecordedEvent => ({
  eventId: `e${String(position)}`,
  type: 'Probe',
  data: { nested: { n: Number(position) } },
  metadata: { actor: 'spec' },
  streamId: 'probe-1',
  revision: position - 1n,
  position,
  recordedAt: new Date(0),
  hash: '',
});

describe('shared reads of live subscribers', () => {
  it('answers the readers that ask for the same events at once with one query', async () => {
    const { calls, read } = pendingReads();
    const reads = new SharedReads(read);
    const answers = [reads.after(7n, 100), reads.after(7n, 100), reads.after(7n, 100)];
    expect(calls).toHaveLength(1);
    calls[0]!.resolve([event(8n)]);
    const [a, b, c] = await Promise.all(answers);
    expect(a).toBe(b);
    expect(b).toBe(c);
    // Done: the next question is a new query.
    void reads.after(7n, 100);
    expect(calls).toHaveLength(2);
  });

  it('starts a new query for a reader woken by a notification that came after the one in flight began', async () => {
    const { calls, read } = pendingReads();
    const reads = new SharedReads(read);
    const early = reads.after(7n, 100);
    // A commit is announced while the first query runs: it may not see that commit.
    reads.noticed();
    const late = reads.after(7n, 100);
    expect(calls).toHaveLength(2);
    // Readers after the notification share the newer query.
    const later = reads.after(7n, 100);
    expect(calls).toHaveLength(2);
    calls[0]!.resolve([]);
    calls[1]!.resolve([event(8n)]);
    expect(await early).toEqual([]);
    expect((await late).map((e) => e.position)).toEqual([8n]);
    expect(await later).toBe(await late);
  });

  it('keeps readers of different positions or batch sizes apart', () => {
    const { calls, read } = pendingReads();
    const reads = new SharedReads(read);
    void reads.after(7n, 100);
    void reads.after(8n, 100);
    void reads.after(7n, 10);
    expect(calls.map((call) => call.after)).toEqual([7n, 8n, 7n]);
  });

  it('hands out frozen events, data and metadata included, so no reader can change another reader’s', async () => {
    const { calls, read } = pendingReads();
    const reads = new SharedReads(read);
    const answer = reads.after(0n, 100);
    calls[0]!.resolve([event(1n)]);
    const [shared] = await answer;
    expect(() => {
      (shared!.data as { nested: { n: number } }).nested.n = 2;
    }).toThrow(TypeError);
    expect(() => {
      (shared!.metadata as { actor: string }).actor = 'someone else';
    }).toThrow(TypeError);
    expect(Object.isFrozen(await answer)).toBe(true);
  });

  it('lets every reader of a failed query see the failure, and asks again afterwards', async () => {
    const { calls, read } = pendingReads();
    const failing = new SharedReads((after) =>
      calls.length === 0
        ? (calls.push({ after, resolve: () => undefined }), Promise.reject(new Error('gone')))
        : read(after),
    );
    const [a, b] = [failing.after(3n, 10), failing.after(3n, 10)];
    await expect(a).rejects.toThrow('gone');
    await expect(b).rejects.toThrow('gone');
    void failing.after(3n, 10);
    expect(calls).toHaveLength(2);
  });
});
