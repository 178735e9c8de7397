import { randomUUID } from 'node:crypto';
import { firstValueFrom, take, toArray, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyConflictError, ValidationError } from '../core/errors.js';
import { verifyLog, type VerifyOptions } from '../core/audit/verify.js';
import { MAX_EVENT_BYTES } from '../core/eventstore/append-validation.js';
import { GENESIS_HASH, eventHash } from '../core/eventstore/event-hash.js';
import {
  START,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type RecordedEvent,
} from '../core/eventstore/event-store.js';
import { runGapTest } from './gap-test.js';

/** A stored field that tamper-evidence tests change behind the store's back. */
export type TamperedField = 'data' | 'metadata' | 'type' | 'hash';

/** What a contract run needs from an adapter. */
export interface EventStoreHarness {
  store: EventStore;
  /** Another independent connection to the same log (a second process, in effect). */
  connect(): Promise<EventStore>;
  teardown(): Promise<void>;
  /** How the log verifier reads this adapter's chain (ADR 005); default PostgreSQL's. */
  verify?: Pick<VerifyOptions, 'time' | 'contiguousPositions'>;
  /**
   * Changes one stored field of the event at `position` directly in the storage, as someone with
   * write access to it could, and answers a function that puts it back. Only for adapters whose
   * log belongs to this run alone (the whole log is verified); absent, those tests are skipped.
   */
  tamper?(position: Position, field: TamperedField): Promise<() => Promise<void>>;
}

const actor = 'contract-suite';
const event = (type: string, data: NewEvent['data'] = {}, eventId?: string): NewEvent => ({
  ...(eventId ? { eventId } : {}),
  type,
  data,
  metadata: { actor, correlationId: 'c-1', schemaVersion: 1 },
});
/** Unique per test, so the suite also runs against a log shared with other runs (EventStoreDB). */
const newStream = (category = 'contract'): string => `${category}-${randomUUID()}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Documented gaps of an adapter (docs/adr); each skips its test with the reason printed. */
export interface AdapterLimits {
  /** Why an event id recorded in one stream is not refused in another, when that is so. */
  eventIdsNotUniqueAcrossStreams?: string;
}

export function eventStoreContract(
  adapter: string,
  setup: () => Promise<EventStoreHarness>,
  limits: AdapterLimits = {},
): void {
  describe(`event store contract: ${adapter}`, () => {
    for (const reason of Object.values(limits))
      console.log(`${adapter} contract: skipped a test: ${reason}`);
    let harness: EventStoreHarness;
    let store: EventStore;

    beforeAll(async () => {
      harness = await setup();
      store = harness.store;
    });
    afterAll(async () => {
      await harness.teardown();
    });

    describe('append', () => {
      it('records the full envelope and answers with revision and position', async () => {
        const streamId = newStream();
        const eventId = randomUUID();
        const before = await store.headPosition();
        const result = await store.appendToStream(
          streamId,
          [event('StrategyCreated', { name: 'sma', n: 1.5 }, eventId)],
          {
            expectedRevision: 'no_stream',
          },
        );
        expect(result.nextExpectedRevision).toBe(0n);
        expect(result.position).toBeGreaterThan(before);
        const [recorded] = await store.readStream(streamId);
        expect(recorded).toEqual({
          eventId,
          type: 'StrategyCreated',
          data: { name: 'sma', n: 1.5 },
          metadata: { actor, correlationId: 'c-1', schemaVersion: 1 },
          streamId,
          revision: 0n,
          position: result.position,
          recordedAt: expect.any(Date) as Date,
          hash: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
        });
        expect(await store.headPosition()).toBeGreaterThanOrEqual(result.position);
      });

      it('numbers a multi-event append consecutively and reports its last event', async () => {
        const streamId = newStream();
        const result = await store.appendToStream(streamId, [event('A'), event('B'), event('C')]);
        expect(result.nextExpectedRevision).toBe(2n);
        const events = await store.readStream(streamId);
        expect(events.map((e) => e.revision)).toEqual([0n, 1n, 2n]);
        expect(events.map((e) => e.type)).toEqual(['A', 'B', 'C']);
        expect(events.at(-1)?.position).toBe(result.position);
        expect(
          events[0]!.position < events[1]!.position && events[1]!.position < events[2]!.position,
        ).toBe(true);
      });

      it('generates a uuid eventId when none is given', async () => {
        const streamId = newStream();
        await store.appendToStream(streamId, [event('A')]);
        const [recorded] = await store.readStream(streamId);
        expect(recorded?.eventId).toMatch(
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        );
      });
    });

    describe('expected revision', () => {
      const conflictCases: [string, ExpectedRevision, number][] = [
        ['no_stream on an existing stream', 'no_stream', 2],
        ['stream_exists on a missing stream', 'stream_exists', 0],
        ['an exact revision that is behind', 0n, 2],
        ['an exact revision that is ahead', 5n, 2],
        ['an exact revision on a missing stream', 0n, 0],
      ];
      it.each(conflictCases)(
        'refuses %s with a typed conflict and writes nothing',
        async (_, expected, existing) => {
          const streamId = newStream();
          if (existing > 0)
            await store.appendToStream(
              streamId,
              Array.from({ length: existing }, () => event('Seed')),
            );
          const head = await store.headPosition();
          const error = await rejection(
            store.appendToStream(streamId, [event('Late')], { expectedRevision: expected }),
          );
          expect(error).toBeInstanceOf(ConcurrencyConflictError);
          expect(error).toMatchObject({
            code: 'CONCURRENCY_CONFLICT',
            streamId,
            expected: String(expected),
            actual: existing === 0 ? 'no_stream' : String(existing - 1),
          });
          expect(await store.readStream(streamId)).toHaveLength(existing);
          expect(await store.headPosition()).toBe(head);
        },
      );

      const acceptCases: [string, ExpectedRevision, number][] = [
        ['no_stream on a missing stream', 'no_stream', 0],
        ['stream_exists on an existing stream', 'stream_exists', 1],
        ['the exact current revision', 1n, 2],
        ['any on a missing stream', 'any', 0],
        ['any on an existing stream', 'any', 3],
      ];
      it.each(acceptCases)('accepts %s', async (_, expected, existing) => {
        const streamId = newStream();
        if (existing > 0)
          await store.appendToStream(
            streamId,
            Array.from({ length: existing }, () => event('Seed')),
          );
        const result = await store.appendToStream(streamId, [event('Next')], {
          expectedRevision: expected,
        });
        expect(result.nextExpectedRevision).toBe(BigInt(existing));
      });

      it('lets exactly one of two racing writers with the same expected revision win', async () => {
        const streamId = newStream();
        await store.appendToStream(streamId, [event('Seed')]);
        const other = await harness.connect();
        try {
          const outcomes = await Promise.allSettled([
            store.appendToStream(streamId, [event('FromA')], { expectedRevision: 0n }),
            other.appendToStream(streamId, [event('FromB')], { expectedRevision: 0n }),
          ]);
          expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
          const failed = outcomes.find((o) => o.status === 'rejected');
          expect(failed?.reason).toBeInstanceOf(ConcurrencyConflictError);
          expect(await store.readStream(streamId)).toHaveLength(2);
        } finally {
          if (other !== store) await other.close();
        }
      });
    });

    describe('idempotency', () => {
      it('re-appending the same event ids returns the first result and writes nothing', async () => {
        const streamId = newStream();
        const events = [event('A', { i: 1 }, randomUUID()), event('B', { i: 2 }, randomUUID())];
        const first = await store.appendToStream(streamId, events, {
          expectedRevision: 'no_stream',
        });
        const head = await store.headPosition();
        // A retry after a lost answer carries the same, now stale, expected revision.
        const again = await store.appendToStream(streamId, events, {
          expectedRevision: 'no_stream',
        });
        expect(again).toEqual(first);
        expect(await store.readStream(streamId)).toHaveLength(2);
        expect(await store.headPosition()).toBe(head);
      });

      it('refuses an append that repeats only some recorded ids, and writes nothing', async () => {
        const streamId = newStream();
        const a = event('A', {}, randomUUID());
        await store.appendToStream(streamId, [a]);
        const error = await rejection(
          store.appendToStream(streamId, [a, event('B', {}, randomUUID())]),
        );
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ code: 'EVENT_ID_REUSED' });
        expect(await store.readStream(streamId)).toHaveLength(1);
      });

      it.skipIf(limits.eventIdsNotUniqueAcrossStreams)(
        'refuses an event id already recorded in another stream',
        async () => {
          const a = event('A', {}, randomUUID());
          await store.appendToStream(newStream(), [a]);
          const other = newStream();
          const error = await rejection(store.appendToStream(other, [a]));
          expect(error).toMatchObject({ code: 'EVENT_ID_REUSED' });
          expect(await store.readStream(other)).toHaveLength(0);
        },
      );

      it('treats concurrent identical appends as one', async () => {
        const streamId = newStream();
        const events = [event('A', {}, randomUUID())];
        const other = await harness.connect();
        try {
          const results = await Promise.allSettled([
            store.appendToStream(streamId, events),
            other.appendToStream(streamId, events),
          ]);
          expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
          expect(await store.readStream(streamId)).toHaveLength(1);
        } finally {
          if (other !== store) await other.close();
        }
      });
    });

    describe('bad input', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      const cases: [string, string, () => [string, NewEvent[]]][] = [
        ['an empty event list', 'EMPTY_EVENT_LIST', () => [newStream(), []]],
        ['a stream id without a category', 'INVALID_STREAM_ID', () => ['nocategory', [event('A')]]],
        ['a stream id with a space', 'INVALID_STREAM_ID', () => ['bad stream-1', [event('A')]]],
        ['a reserved $ stream id', 'INVALID_STREAM_ID', () => ['$all-1', [event('A')]]],
        [
          'a bigint in data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { n: 1n } as never)]],
        ],
        [
          'NaN in data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { n: Number.NaN })]],
        ],
        [
          'undefined in data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { n: undefined })]],
        ],
        [
          'a Date in data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { at: new Date() } as never)]],
        ],
        [
          'a cycle in data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', cyclic as never)]],
        ],
        [
          'a NUL character in a string of data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { name: 'a\u0000b' })]],
        ],
        [
          'a NUL character in a key of metadata',
          'EVENT_NOT_SERIALIZABLE',
          () => [
            newStream(),
            [{ type: 'A', data: {}, metadata: { actor: 'test', ['k\u0000']: 1 } }],
          ],
        ],
        [
          'a lone high surrogate in a string of data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { name: 'x\ud800' })]],
        ],
        [
          'a lone low surrogate in a string of data',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A', { name: '\udc00y' })]],
        ],
        [
          'a lone surrogate in a key of metadata',
          'EVENT_NOT_SERIALIZABLE',
          () => [
            newStream(),
            [{ type: 'A', data: {}, metadata: { actor: 'test', ['k\udfff']: 1 } }],
          ],
        ],
        [
          'an event over 1 MiB',
          'EVENT_TOO_LARGE',
          () => [newStream(), [event('A', { blob: 'x'.repeat(MAX_EVENT_BYTES) })]],
        ],
        [
          'a missing actor',
          'MISSING_ACTOR',
          () => [newStream(), [{ type: 'A', data: {}, metadata: {} as never }]],
        ],
        [
          'a blank actor',
          'MISSING_ACTOR',
          () => [newStream(), [{ type: 'A', data: {}, metadata: { actor: '  ' } }]],
        ],
        [
          'an invalid event type',
          'INVALID_EVENT_TYPE',
          () => [newStream(), [event('no spaces allowed')]],
        ],
        [
          'an eventId that is not a uuid',
          'INVALID_EVENT_ID',
          () => [newStream(), [event('A', {}, 'abc')]],
        ],
        [
          'an eventId twice in one append',
          'DUPLICATE_EVENT_ID',
          () => {
            const id = randomUUID();
            return [newStream(), [event('A', {}, id), event('B', {}, id)]];
          },
        ],
        [
          'one bad event among good ones',
          'EVENT_NOT_SERIALIZABLE',
          () => [newStream(), [event('A'), event('B', { n: Number.POSITIVE_INFINITY })]],
        ],
      ];
      it.each(cases)('refuses %s with %s and writes nothing', async (_, code, make) => {
        const [streamId, events] = make();
        const head = await store.headPosition();
        const error = await rejection(store.appendToStream(streamId, events));
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ code });
        expect((error as Error).message.length).toBeGreaterThan(10);
        expect(await store.headPosition()).toBe(head);
      });

      it('stores the text \\u0000 (a backslash, not a NUL), and appends beside a refused NUL', async () => {
        const good = newStream();
        const [refused, written] = await Promise.allSettled([
          store.appendToStream(newStream(), [event('A', { name: 'a\u0000b' })]),
          store.appendToStream(good, [event('A', { text: '\\u0000' })]),
        ]);
        expect(refused.status).toBe('rejected');
        expect(written.status).toBe('fulfilled');
        const [stored] = await store.readStream(good);
        expect(stored?.data).toEqual({ text: '\\u0000' });
      });

      it('stores a surrogate pair and the text \\ud800, and appends beside a refused lone surrogate', async () => {
        const good = newStream();
        const [refused, written] = await Promise.allSettled([
          store.appendToStream(newStream(), [event('A', { name: 'x\ud800' })]),
          store.appendToStream(good, [event('A', { emoji: '\ud83d\ude00', text: '\\ud800' })]),
        ]);
        expect(refused.status).toBe('rejected');
        expect(written.status).toBe('fulfilled');
        const [stored] = await store.readStream(good);
        expect(stored?.data).toEqual({ emoji: '\u{1f600}', text: '\\ud800' });
      });

      it('refuses a negative expected revision', async () => {
        const error = await rejection(
          store.appendToStream(newStream(), [event('A')], { expectedRevision: -1n }),
        );
        expect(error).toMatchObject({ code: 'INVALID_EXPECTED_REVISION' });
      });
    });

    describe('reading a stream', () => {
      let streamId: string;
      let events: RecordedEvent[];
      beforeAll(async () => {
        streamId = newStream();
        for (let i = 0; i < 5; i++) {
          await store.appendToStream(streamId, [event(`E${i}`, { i })]);
          await sleep(5); // distinct commit instants
        }
        events = await store.readStream(streamId);
      });

      it('reads forwards and backwards', async () => {
        expect(events.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n]);
        const backwards = await store.readStream(streamId, { direction: 'backwards' });
        expect(backwards.map((e) => e.revision)).toEqual([4n, 3n, 2n, 1n, 0n]);
      });

      it('reads from and to a revision, and at most maxCount', async () => {
        const range = await store.readStream(streamId, { fromRevision: 1n, toRevision: 3n });
        expect(range.map((e) => e.revision)).toEqual([1n, 2n, 3n]);
        const lastTwo = await store.readStream(streamId, { direction: 'backwards', maxCount: 2 });
        expect(lastTwo.map((e) => e.revision)).toEqual([4n, 3n]);
        const firstTwo = await store.readStream(streamId, { fromRevision: 2n, maxCount: 2 });
        expect(firstTwo.map((e) => e.revision)).toEqual([2n, 3n]);
      });

      it('reads up to a global position', async () => {
        const upTo = await store.readStream(streamId, { toPosition: events[2]!.position });
        expect(upTo.map((e) => e.revision)).toEqual([0n, 1n, 2n]);
      });

      it('reads up to an instant (recordedAt <= T)', async () => {
        const asOf = await store.readStream(streamId, { toInstant: events[1]!.recordedAt });
        expect(asOf.map((e) => e.revision)).toEqual([0n, 1n]);
        const before = await store.readStream(streamId, {
          toInstant: new Date(events[0]!.recordedAt.getTime() - 1),
        });
        expect(before).toEqual([]);
      });

      it('reads an unknown stream as empty', async () => {
        expect(await store.readStream(newStream())).toEqual([]);
      });
    });

    describe('$all and time', () => {
      it('reads $all in strictly increasing position order, in batches, from a position', async () => {
        const start = await store.headPosition();
        const streams = [newStream(), newStream(), newStream()];
        for (let i = 0; i < 12; i++)
          await store.appendToStream(streams[i % 3]!, [event('Tick', { i })]);
        const seen: RecordedEvent[] = [];
        let after: Position = start;
        for (;;) {
          const batch = await store.readAll({ after, maxCount: 5 });
          expect(batch.length).toBeLessThanOrEqual(5);
          if (batch.length === 0) break;
          seen.push(...batch);
          after = batch.at(-1)!.position;
        }
        const ours = seen.filter((e) => streams.includes(e.streamId));
        expect(ours.map((e) => e.data)).toEqual(Array.from({ length: 12 }, (_, i) => ({ i })));
        for (let i = 1; i < seen.length; i++)
          expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
        const capped = await store.readAll({
          after: start,
          toPosition: ours[3]!.position,
          maxCount: 1000,
        });
        expect(capped.at(-1)?.position).toBe(ours[3]!.position);
      });

      it('records non-decreasing commit times along positions', async () => {
        const start = await store.headPosition();
        await Promise.all(
          Array.from({ length: 20 }, () => store.appendToStream(newStream(), [event('T')])),
        );
        const all = await store.readAll({ after: start, maxCount: 1000 });
        for (let i = 1; i < all.length; i++) {
          expect(all[i]!.recordedAt.getTime()).toBeGreaterThanOrEqual(
            all[i - 1]!.recordedAt.getTime(),
          );
        }
      });

      it('resolves an instant to the last position recorded at or before it', async () => {
        const streamId = newStream();
        await store.appendToStream(streamId, [event('A')]);
        await sleep(5);
        await store.appendToStream(streamId, [event('B')]);
        const [a, b] = await store.readStream(streamId);
        expect(await store.positionAt(a!.recordedAt)).toBeGreaterThanOrEqual(a!.position);
        expect(await store.positionAt(a!.recordedAt)).toBeLessThan(b!.position);
        expect(await store.positionAt(b!.recordedAt)).toBeGreaterThanOrEqual(b!.position);
        expect(await store.positionAt(new Date(Date.now() + 60_000))).toBe(
          await store.headPosition(),
        );
        expect(await store.positionAt(new Date('2000-01-01T00:00:00Z'))).toBe(START);
      });
    });

    describe('subscription to $all', () => {
      it('catches up, then delivers live events, in order', async () => {
        const streamId = newStream();
        const start = await store.headPosition();
        await store.appendToStream(streamId, [event('Old', { i: 0 }), event('Old', { i: 1 })]);
        const received = firstValueFrom(
          store.subscribeToAll({ after: start }).pipe(take(4), toArray(), timeout(20_000)),
        );
        await sleep(50);
        await store.appendToStream(streamId, [event('New', { i: 2 })]);
        await store.appendToStream(streamId, [event('New', { i: 3 })]);
        const events = (await received).filter((e) => e.streamId === streamId);
        expect(events.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
        expect(events.map((e) => e.type)).toEqual(['Old', 'Old', 'New', 'New']);
      });

      it('resumes after a checkpoint without repeating it', async () => {
        const streamId = newStream();
        await store.appendToStream(streamId, [event('A'), event('B'), event('C')]);
        const [a] = await store.readStream(streamId);
        const next = await firstValueFrom(
          store.subscribeToAll({ after: a!.position }).pipe(take(2), toArray(), timeout(20_000)),
        );
        expect(next.map((e) => e.type)).toEqual(['B', 'C']);
      });

      it('delivers every committed event exactly once, in order, while 8 writers append 20,000 events (gap test)', async () => {
        const report = await runGapTest({
          store,
          connect: () => harness.connect(),
          writers: 8,
          events: 20_000,
        });
        expect(report.missing).toEqual([]);
        expect(report.duplicates).toEqual([]);
        expect(report.outOfOrder).toEqual([]);
        expect(report.received).toBe(20_000);
      }, 300_000);
    });

    // Last: by now the log holds every kind of append above, the gap test's 8 writers included.
    describe('hash chain', () => {
      const hashOptions = (): Pick<VerifyOptions, 'time' | 'contiguousPositions'> =>
        harness.verify ?? { time: 'recordedAt', contiguousPositions: true };
      const expectChained = (events: readonly RecordedEvent[]): void => {
        let previous = GENESIS_HASH;
        for (const recorded of events) {
          expect(recorded.hash).toMatch(/^[0-9a-f]{64}$/);
          expect(recorded.hash).toBe(
            eventHash(previous, recorded, { time: hashOptions().time ?? 'recordedAt' }),
          );
          previous = recorded.hash;
        }
      };

      it('gives every event a hash over its content, chained to its predecessor in the stream', async () => {
        const streamId = newStream();
        const neighbour = newStream();
        await store.appendToStream(streamId, [
          event('A', { nested: { b: 1, a: [1, 'x', null] }, price: 101.25 }),
          event('B', { n: 1e21, small: 1.5e-7 }),
        ]);
        await store.appendToStream(neighbour, [event('N')]);
        await store.appendToStream(streamId, [event('C', 'text')], { expectedRevision: 1n });
        const events = await store.readStream(streamId);
        expect(events).toHaveLength(3);
        expectChained(events);
        expect(new Set(events.map((e) => e.hash)).size).toBe(3);
        // Both read paths hand out the same hashes.
        const all = await store.readAll({
          after: events[0]!.position - 1n,
          toPosition: events[2]!.position,
        });
        const fromAll = all.filter((e) => e.streamId === streamId).map((e) => e.hash);
        expect(fromAll).toEqual(events.map((e) => e.hash));
        // The same content in another stream hashes differently: the stream is part of it.
        const [first] = await store.readStream(neighbour);
        expect(first!.hash).not.toBe(events[0]!.hash);
      });

      it('chains appends to one stream that share a commit, a refused one among them', async () => {
        const streamId = newStream();
        await store.appendToStream(streamId, [event('Seed')]);
        const outcomes = await Promise.allSettled([
          store.appendToStream(streamId, [event('A1'), event('A2')]),
          store.appendToStream(streamId, [event('Refused')], { expectedRevision: 'no_stream' }),
          store.appendToStream(streamId, [event('B1')]),
          store.appendToStream(streamId, [event('C1'), event('C2')], {
            expectedRevision: 'stream_exists',
          }),
        ]);
        expect(outcomes.map((o) => o.status)).toEqual([
          'fulfilled',
          'rejected',
          'fulfilled',
          'fulfilled',
        ]);
        const events = await store.readStream(streamId);
        // Appends from one caller land in call order here, but the contract does not promise it.
        expect(events.map((e) => e.type).sort()).toEqual(['A1', 'A2', 'B1', 'C1', 'C2', 'Seed']);
        expectChained(events);
      });

      it('verifies the whole log written by this suite, every writer included', async (context) => {
        if (!harness.tamper) {
          context.skip();
          return;
        }
        const head = await store.headPosition();
        const report = await verifyLog(store, hashOptions());
        expect(report.firstBroken).toBeNull();
        expect(report.ok).toBe(true);
        expect(report.verifiedTo).toBe(head);
        expect(report.digest).toMatch(/^[0-9a-f]{64}$/);
        if (hashOptions().contiguousPositions) expect(BigInt(report.eventsChecked)).toBe(head);
        // The digest depends on nothing but the log: a second walk gives the same one.
        expect((await verifyLog(store, hashOptions())).digest).toBe(report.digest);
      }, 120_000);

      it.for<TamperedField>(['data', 'metadata', 'type', 'hash'])(
        'names the first broken link when the stored %s of an event is edited',
        { timeout: 120_000 },
        async (field, context) => {
          if (!harness.tamper) {
            context.skip();
            return;
          }
          const streamId = newStream();
          await store.appendToStream(streamId, [
            event('A', { amount: 1 }),
            event('B', { amount: 2 }),
            event('C', { amount: 3 }),
          ]);
          const [, victim] = await store.readStream(streamId);
          const undo = await harness.tamper(victim!.position, field);
          try {
            const report = await verifyLog(store, hashOptions());
            expect(report.ok).toBe(false);
            expect(report.digest).toBeNull();
            expect(report.firstBroken).toMatchObject({
              reason: 'hash_mismatch',
              position: victim!.position,
              streamId,
              revision: 1n,
              eventId: victim!.eventId,
            });
            const { expected, found } = report.firstBroken!;
            expect(expected).not.toBe(found);
            if (field === 'hash') {
              // The content is intact, so the recomputed hash is the one written.
              expect(expected).toBe(victim!.hash);
            } else {
              // The stored hash is intact and no longer matches the edited content.
              expect(found).toBe(victim!.hash);
            }
            // Everything before the broken link was checked, and nothing after it.
            if (hashOptions().contiguousPositions)
              expect(report.verifiedTo).toBe(victim!.position - 1n);
          } finally {
            await undo();
          }
          expect((await verifyLog(store, hashOptions())).ok).toBe(true);
        },
      );
    });
  });
}
