import {
  END,
  MaxAppendSizeExceededError,
  START as ESDB_START,
  WrongExpectedVersionError,
  type EventData,
  type RecordedEvent as EsdbRecordedEvent,
} from '@eventstore/db-client';
// The client's own wire decoding and protobuf messages, so these tests see events exactly as the
// client hands them over (no server exists here).
import { convertGrpcRecord } from '@eventstore/db-client/dist/utils/convertGrpcEvent.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import { describe, expect, it } from 'vitest';
import { ConcurrencyConflictError, QcatError, ValidationError } from '../../errors.js';
import { prepareAppend } from '../../eventstore/append-validation.js';
import { eventHash } from '../../eventstore/event-hash.js';
import {
  START,
  type ExpectedRevision,
  type JsonValue,
  type NewEvent,
  type ReadStreamOptions,
  type RecordedEvent,
} from '../../eventstore/event-store.js';
import { selectStreamEvents } from '../../eventstore/read-stream.js';
import {
  isEventMetadata,
  isJsonValue,
  isSystemEvent,
  lastPositionAt,
  mapAppendError,
  positionOf,
  readPositionAfter,
  selectAllRead,
  selectStreamRead,
  streamReadStart,
  toConcurrencyConflict,
  toEsdbExpectedRevision,
  toEventData,
  toRecordedEvent,
  assertNoReservedMetadata,
  chainHashes,
  metadataWithHash,
} from './eventstoredb-event-store.js';

const TICKS_PER_MS = 10_000n;
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** What the client puts on the wire for one event (as eventBatcher in batchAppend.js does). */
function send(event: EventData): InstanceType<typeof streamsPb.BatchAppendReq.ProposedMessage> {
  const message = new streamsPb.BatchAppendReq.ProposedMessage();
  message.getMetadataMap().set('type', event.type);
  message.getMetadataMap().set('content-type', event.contentType);
  if (event.contentType === 'application/json') {
    message.setData(Buffer.from(JSON.stringify(event.data), 'utf8').toString('base64'));
  } else {
    message.setData(event.data);
  }
  if (event.metadata) {
    if (event.metadata instanceof Uint8Array && event.metadata.constructor === Uint8Array) {
      message.setCustomMetadata(event.metadata);
    } else {
      message.setCustomMetadata(
        Buffer.from(JSON.stringify(event.metadata), 'utf8').toString('base64'),
      );
    }
  }
  return streamsPb.BatchAppendReq.ProposedMessage.deserializeBinary(message.serializeBinary());
}

interface Stored {
  id: string;
  streamId: string;
  revision: bigint;
  position: bigint;
  createdTicks: bigint;
  type: string;
  contentType: string;
  data: Uint8Array;
  metadata: Uint8Array;
}

/** The server's answer for a stored event, decoded by the client's own converter. */
function receive(stored: Stored): EsdbRecordedEvent {
  const record = new streamsPb.ReadResp.ReadEvent.RecordedEvent();
  const id = new sharedPb.UUID();
  id.setString(stored.id);
  record.setId(id);
  const stream = new sharedPb.StreamIdentifier();
  stream.setStreamName(utf8(stored.streamId));
  record.setStreamIdentifier(stream);
  record.setStreamRevision(String(stored.revision));
  record.setCommitPosition(String(stored.position));
  record.setPreparePosition(String(stored.position));
  record.getMetadataMap().set('type', stored.type);
  record.getMetadataMap().set('content-type', stored.contentType);
  record.getMetadataMap().set('created', String(stored.createdTicks));
  record.setData(stored.data);
  record.setCustomMetadata(stored.metadata);
  const onWire = streamsPb.ReadResp.ReadEvent.RecordedEvent.deserializeBinary(
    record.serializeBinary(),
  );
  return convertGrpcRecord(onWire);
}

const createdMs = 1_700_000_000_123;
/** The hash roundTrip sends with each event. */
const sentHash = 'ab'.repeat(32);
/** 0.9999 ms past createdMs: the envelope must truncate, not round. */
const createdTicks = BigInt(createdMs) * TICKS_PER_MS + 9_999n;

/** One event through prepareAppend, the client's write and read paths, and our mapping. */
function roundTrip(
  event: NewEvent,
  where = { streamId: 'order-1', revision: 3n, position: 4096n },
): { data: EventData; esdb: EsdbRecordedEvent; recorded: RecordedEvent } {
  const [prepared] = prepareAppend(where.streamId, [event], 'any');
  if (!prepared) throw new Error('prepareAppend returned nothing');
  const data = toEventData(prepared, sentHash);
  const sent = send(data);
  const esdb = receive({
    id: prepared.eventId,
    streamId: where.streamId,
    revision: where.revision,
    position: where.position,
    createdTicks,
    type: sent.getMetadataMap().get('type') ?? '',
    contentType: sent.getMetadataMap().get('content-type') ?? '',
    data: sent.getData_asU8(),
    metadata: sent.getCustomMetadata_asU8(),
  });
  const position = positionOf({ event: esdb });
  if (position === undefined) throw new Error('no position on the received event');
  return { data, esdb, recorded: toRecordedEvent(esdb, position) };
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('EventStoreDB mapping: expected revision', () => {
  it.each<[ExpectedRevision, unknown]>([
    ['any', 'any'],
    ['no_stream', 'no_stream'],
    ['stream_exists', 'stream_exists'],
    [0n, 0n],
    [41n, 41n],
  ])('maps %s to the client value %s', (ours, theirs) => {
    expect(toEsdbExpectedRevision(ours)).toBe(theirs);
  });
});

describe('EventStoreDB mapping: append errors', () => {
  const wrongVersion = (
    expected: 'any' | 'no_stream' | 'stream_exists' | bigint,
    current: 'no_stream' | bigint,
  ): WrongExpectedVersionError =>
    new WrongExpectedVersionError(undefined, { streamName: 'order-1', expected, current });

  it('maps a wrong expected version on a missing stream to a conflict at no_stream', () => {
    const error = mapAppendError(
      'order-1',
      'stream_exists',
      wrongVersion('stream_exists', 'no_stream'),
    );
    expect(error).toBeInstanceOf(ConcurrencyConflictError);
    expect(error).toMatchObject({
      code: 'CONCURRENCY_CONFLICT',
      streamId: 'order-1',
      expected: 'stream_exists',
      actual: 'no_stream',
    });
  });

  it('maps a wrong expected version on an existing stream to a conflict at its revision', () => {
    const error = mapAppendError('order-1', 0n, wrongVersion(0n, 2n));
    expect(error).toMatchObject({ expected: '0', actual: '2' });
    expect(error.message).toBe("stream 'order-1' expected revision 0 but is at 2");
  });

  it('reports our expected revision, not the one the client echoes', () => {
    // ESDB reports `any` for what it checked as a partial idempotent repeat.
    expect(mapAppendError('order-1', 'no_stream', wrongVersion('any', 0n))).toMatchObject({
      expected: 'no_stream',
      actual: '0',
    });
  });

  it('reads a negative current revision as no_stream', () => {
    expect(toConcurrencyConflict('order-1', 3n, -1n)).toMatchObject({
      expected: '3',
      actual: 'no_stream',
    });
  });

  it('refuses an append over the server maximum as a validation error', () => {
    const error = mapAppendError(
      'order-1',
      'any',
      MaxAppendSizeExceededError.fromMaxAppendSize(1_048_576),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({
      code: 'APPEND_TOO_LARGE',
      details: { streamId: 'order-1', limit: 1_048_576 },
    });
  });

  it('passes other errors through, and makes thrown non-errors into errors', () => {
    const unavailable = new Error('14 UNAVAILABLE');
    expect(mapAppendError('order-1', 'any', unavailable)).toBe(unavailable);
    const wrapped = mapAppendError('order-1', 'any', 'boom');
    expect(wrapped).toBeInstanceOf(Error);
    expect(wrapped.message).toBe('boom');
  });
});

describe('EventStoreDB mapping: positions', () => {
  it('starts "after START" at the start of $all', () => {
    expect(readPositionAfter(START)).toBe(ESDB_START);
    expect(readPositionAfter(-5n)).toBe(ESDB_START);
  });

  it('starts "after p" at the event at p, as commit and prepare', () => {
    expect(readPositionAfter(123_456n)).toEqual({ commit: 123_456n, prepare: 123_456n });
  });

  it("takes the event's commit position, else the read's, else none", () => {
    const event = roundTrip({ type: 'A', data: {}, metadata: { actor: 'u' } }).esdb;
    expect(positionOf({ event, commitPosition: 1n })).toBe(4096n);
    const { position: _, ...withoutPosition } = event;
    expect(positionOf({ event: withoutPosition, commitPosition: 77n })).toBe(77n);
    expect(positionOf({ event: withoutPosition })).toBeUndefined();
    expect(positionOf({})).toBeUndefined();
  });
});

describe('EventStoreDB mapping: envelope through the client wire format', () => {
  it('records the full envelope', () => {
    const eventId = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const { recorded } = roundTrip(
      {
        eventId,
        type: 'OrderPlaced',
        data: { qty: 2, price: 101.25, tags: ['a', 'b'], note: null },
        metadata: { actor: 'user-1', correlationId: 'c-1', causationId: 'k-9', schemaVersion: 2 },
      },
      { streamId: 'order-42', revision: 7n, position: 9_876_543n },
    );
    expect(recorded).toEqual({
      eventId,
      type: 'OrderPlaced',
      data: { qty: 2, price: 101.25, tags: ['a', 'b'], note: null },
      metadata: { actor: 'user-1', correlationId: 'c-1', causationId: 'k-9', schemaVersion: 2 },
      streamId: 'order-42',
      revision: 7n,
      position: 9_876_543n,
      recordedAt: new Date(createdMs),
      hash: sentHash,
    });
  });

  it('truncates created to milliseconds and hands out its own Date', () => {
    const { esdb, recorded } = roundTrip({ type: 'A', data: {}, metadata: { actor: 'u' } });
    expect(recorded.recordedAt.getTime()).toBe(createdMs);
    expect(recorded.recordedAt).not.toBe(esdb.created);
  });

  it.each<[string, JsonValue, boolean]>([
    ['an object', { a: { b: [1, 2, { c: 'd' }] } }, true],
    ['an empty object', {}, true],
    ['an array', [1, 'two', null, false], true],
    ['a string', 'plain text', true],
    ['a string of JSON', '{"not":"parsed"}', true],
    ['null', null, false],
    ['zero', 0, false],
    ['a negative fraction', -1.5, false],
    ['true', true, false],
    ['false', false, false],
  ])('round-trips %s as data exactly (JSON content: %s)', (_, data, json) => {
    const { data: sent, esdb, recorded } = roundTrip({ type: 'A', data, metadata: { actor: 'u' } });
    expect(sent.contentType).toBe(json ? 'application/json' : 'application/octet-stream');
    expect(esdb.isJson).toBe(json);
    expect(recorded.data).toEqual(data);
  });

  it('sends metadata as the validated bytes, which the client writes unchanged', () => {
    const metadata = { actor: 'u', schemaVersion: 1, extra: { nested: [1, 2] } };
    const [prepared] = prepareAppend('order-1', [{ type: 'A', data: {}, metadata }], 'any');
    const sent = toEventData(prepared!, sentHash);
    // A Buffer (or anything but a plain Uint8Array) would be JSON.stringify'd again by the client.
    expect(sent.metadata?.constructor).toBe(Uint8Array);
    const stored = new TextDecoder().decode(send(sent).getCustomMetadata_asU8());
    expect(stored).toBe(metadataWithHash(prepared!.metadataJson, sentHash));
    // The hash rides in the metadata and nowhere else; the rest is the validated metadata.
    expect(JSON.parse(stored)).toEqual({ $qcatHash: sentHash, ...metadata });
    expect(sent.id).toBe(prepared!.eventId);
  });

  it('carries the hash in the metadata and hands the metadata back without it', () => {
    const metadata = { actor: 'u', correlationId: 'c-1' };
    const { recorded } = roundTrip({ type: 'A', data: { x: 1 }, metadata });
    expect(recorded.hash).toBe(sentHash);
    expect(recorded.metadata).toEqual(metadata);
  });

  it('reads an event written before the chain with an empty hash (a broken link)', () => {
    const esdb = receive({
      id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      streamId: 'order-1',
      revision: 0n,
      position: 10n,
      createdTicks,
      type: 'A',
      contentType: 'application/json',
      data: utf8('{}'),
      metadata: utf8('{"actor":"u"}'),
    });
    expect(toRecordedEvent(esdb, 10n).hash).toBe('');
  });

  it('chains the hashes of an append onto the previous one, without the commit time', () => {
    const prepared = prepareAppend(
      'order-1',
      [
        { type: 'A', data: { n: 1 }, metadata: { actor: 'u' } },
        { type: 'B', data: { n: 2 }, metadata: { actor: 'u' } },
      ],
      'any',
    );
    const previous = 'cd'.repeat(32);
    const hashes = chainHashes(previous, 5n, prepared);
    const expected: string[] = [];
    let link = previous;
    prepared.forEach((event, index) => {
      link = eventHash(
        link,
        {
          eventId: event.eventId,
          streamId: 'order-1',
          type: event.type,
          data: JSON.parse(event.dataJson) as JsonValue,
          metadata: JSON.parse(event.metadataJson) as Record<string, JsonValue>,
          revision: 5n + BigInt(index),
          // Any time: the EventStoreDB chain leaves it out.
          recordedAt: new Date(0),
        },
        { time: 'none' },
      );
      expected.push(link);
    });
    expect(hashes).toEqual(expected);
    expect(hashes[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(hashes[0]).not.toBe(hashes[1]);
  });

  it('refuses caller metadata that uses the reserved hash member', () => {
    const prepared = prepareAppend(
      'order-1',
      [{ type: 'A', data: {}, metadata: { actor: 'u', $qcatHash: 'forged' } }],
      'any',
    );
    expect(
      thrown(() => {
        assertNoReservedMetadata(prepared);
      }),
    ).toMatchObject({
      code: 'RESERVED_METADATA_KEY',
    });
  });

  it('lower-cases event ids read back', () => {
    const esdb = receive({
      id: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
      streamId: 'order-1',
      revision: 0n,
      position: 10n,
      createdTicks,
      type: 'A',
      contentType: 'application/json',
      data: utf8('{}'),
      metadata: utf8('{"actor":"u"}'),
    });
    expect(toRecordedEvent(esdb, 10n).eventId).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  });

  const foreign = (overrides: Partial<Stored>): EsdbRecordedEvent =>
    receive({
      id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      streamId: 'order-1',
      revision: 0n,
      position: 10n,
      createdTicks,
      type: 'A',
      contentType: 'application/json',
      data: utf8('{}'),
      metadata: utf8('{"actor":"u"}'),
      ...overrides,
    });

  it.each<[string, Partial<Stored>]>([
    ['no metadata', { metadata: new Uint8Array() }],
    ['metadata without an actor', { metadata: utf8('{"user":"u"}') }],
    ['metadata with a numeric actor', { metadata: utf8('{"actor":7}') }],
    ['metadata that is not JSON', { metadata: utf8('actor=u') }],
    [
      'binary data that is not JSON',
      { contentType: 'application/octet-stream', data: utf8('\u0001x') },
    ],
    [
      'binary data that is not UTF-8',
      { contentType: 'application/octet-stream', data: new Uint8Array([0xff, 0xfe]) },
    ],
  ])('refuses an event with %s as UNREADABLE_EVENT', (_, overrides) => {
    const error = thrown(() => toRecordedEvent(foreign(overrides), 10n));
    expect(error).toBeInstanceOf(QcatError);
    expect(error).toMatchObject({
      code: 'UNREADABLE_EVENT',
      details: { streamId: 'order-1', revision: '0' },
    });
  });
});

describe('EventStoreDB mapping: value checks', () => {
  it('accepts plain JSON and nothing else', () => {
    expect(isJsonValue({ a: [1, 'x', null, true, { b: -0.5 }] })).toBe(true);
    expect(isJsonValue(Object.create(null))).toBe(true);
    expect(isJsonValue(Number.NaN)).toBe(false);
    expect(isJsonValue(Number.POSITIVE_INFINITY)).toBe(false);
    expect(isJsonValue({ a: undefined })).toBe(false);
    expect(isJsonValue([1n])).toBe(false);
    expect(isJsonValue({ at: new Date() })).toBe(false);
    expect(isJsonValue(new Uint8Array(1))).toBe(false);
  });

  it('accepts metadata with an actor and well-typed known fields', () => {
    expect(isEventMetadata({ actor: 'u', correlationId: 'c', schemaVersion: 3, x: [1] })).toBe(
      true,
    );
    expect(isEventMetadata({ actor: 'u', correlationId: 5 })).toBe(false);
    expect(isEventMetadata({ actor: 'u', causationId: null })).toBe(false);
    expect(isEventMetadata({ actor: 'u', schemaVersion: '2' })).toBe(false);
    expect(isEventMetadata({ correlationId: 'c' })).toBe(false);
    expect(isEventMetadata(['u'])).toBe(false);
  });

  it('tells system events and streams apart from ours', () => {
    expect(isSystemEvent({ streamId: 'order-1', type: 'OrderPlaced' })).toBe(false);
    expect(isSystemEvent({ streamId: '$stats-127.0.0.1:2113', type: 'StatsCollected' })).toBe(true);
    expect(isSystemEvent({ streamId: 'order-1', type: '$>' })).toBe(true);
    expect(isSystemEvent({ streamId: '$$order-1', type: '$metadata' })).toBe(true);
  });
});

/* A 7-event stream: positions not contiguous (byte offsets), two events in one millisecond. */
const T0 = Date.UTC(2025, 0, 1);
const stream: RecordedEvent[] = [0, 5, 10, 10, 20, 30, 40].map((ms, i) => ({
  eventId: `00000000-0000-4000-8000-00000000000${i}`,
  type: `E${i}`,
  data: { i },
  metadata: { actor: 'u' },
  streamId: 'order-1',
  revision: BigInt(i),
  position: 1000n + BigInt(i) * 137n,
  recordedAt: new Date(T0 + ms),
  hash: String(i).repeat(64),
}));
const at = (i: number): RecordedEvent => {
  const event = stream[i];
  if (!event) throw new Error(`no event ${i}`);
  return event;
};

/** Yields events in order and counts how many the consumer pulled. */
function source(events: readonly RecordedEvent[]): {
  items: AsyncIterable<RecordedEvent>;
  pulled: () => number;
} {
  let pulled = 0;
  async function* items(): AsyncGenerator<RecordedEvent> {
    for (const event of events) {
      pulled++;
      await Promise.resolve();
      yield event;
    }
  }
  return { items: items(), pulled: () => pulled };
}

/** What ESDB returns for the read `streamReadStart` asks for. */
function serverStreamRead(start: NonNullable<ReturnType<typeof streamReadStart>>): RecordedEvent[] {
  const last = BigInt(stream.length - 1);
  if (start.direction === 'forwards') {
    const from = start.fromRevision === END ? last + 1n : start.fromRevision;
    return stream.filter((event) => event.revision >= from);
  }
  const from = start.fromRevision === END || start.fromRevision > last ? last : start.fromRevision;
  return stream.filter((event) => event.revision <= from).reverse();
}

describe('EventStoreDB mapping: reading a stream', () => {
  const cases: ReadStreamOptions[] = [];
  for (const direction of [undefined, 'forwards', 'backwards'] as const)
    for (const fromRevision of [undefined, -1n, 0n, 2n, 3n, 9n])
      for (const toRevision of [undefined, 1n, 3n, 4n, 10n])
        for (const toPosition of [undefined, at(4).position, at(0).position - 1n])
          for (const toInstant of [
            undefined,
            at(2).recordedAt,
            new Date(T0 - 1),
            new Date(T0 + 25),
          ])
            for (const maxCount of [undefined, 0, 1, 2, 50])
              cases.push({ direction, fromRevision, toRevision, toPosition, toInstant, maxCount });

  it(`selects exactly what the reference selection does (${cases.length} option sets)`, async () => {
    for (const options of cases) {
      const expected = selectStreamEvents(stream, options);
      const start = streamReadStart(options);
      const actual =
        start === null
          ? []
          : await selectStreamRead(source(serverStreamRead(start)).items, options);
      expect({ options, revisions: actual.map((e) => e.revision) }).toEqual({
        options,
        revisions: expected.map((e) => e.revision),
      });
    }
  });

  it('asks ESDB for the right starting point', () => {
    expect(streamReadStart({})).toEqual({ direction: 'forwards', fromRevision: 0n });
    expect(streamReadStart({ fromRevision: -3n })).toEqual({
      direction: 'forwards',
      fromRevision: 0n,
    });
    expect(streamReadStart({ fromRevision: 4n, toRevision: 9n })).toEqual({
      direction: 'forwards',
      fromRevision: 4n,
    });
    expect(streamReadStart({ direction: 'backwards' })).toEqual({
      direction: 'backwards',
      fromRevision: END,
    });
    expect(streamReadStart({ direction: 'backwards', toRevision: 5n })).toEqual({
      direction: 'backwards',
      fromRevision: 5n,
    });
    expect(streamReadStart({ fromRevision: 3n, toRevision: 2n })).toBeNull();
    expect(streamReadStart({ maxCount: 0 })).toBeNull();
  });

  it('stops reading once the rest cannot match', async () => {
    const upTo = source(stream);
    await selectStreamRead(upTo.items, { toRevision: 1n });
    expect(upTo.pulled()).toBe(3);
    const firstTwo = source(stream);
    await selectStreamRead(firstTwo.items, { maxCount: 2 });
    expect(firstTwo.pulled()).toBe(2);
    const backwardsFrom = source([...stream].reverse());
    await selectStreamRead(backwardsFrom.items, { direction: 'backwards', fromRevision: 5n });
    expect(backwardsFrom.pulled()).toBe(3);
  });

  it('filters by instant without stopping, so it means recordedAt <= T', async () => {
    const shuffledClock = [at(0), { ...at(1), recordedAt: new Date(T0 + 50) }, at(2)];
    const selected = await selectStreamRead(source(shuffledClock).items, {
      toInstant: new Date(T0 + 10),
    });
    expect(selected.map((e) => e.revision)).toEqual([0n, 2n]);
  });
});

describe('EventStoreDB mapping: reading $all', () => {
  it('skips the event at the start position, which forward reads include', async () => {
    const batch = await selectAllRead(source(stream.slice(2)).items, { after: at(2).position });
    expect(batch.map((e) => e.revision)).toEqual([3n, 4n, 5n, 6n]);
  });

  it('stops at toPosition (inclusive) and at maxCount', async () => {
    const capped = source(stream);
    const upTo = await selectAllRead(capped.items, { toPosition: at(3).position });
    expect(upTo.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
    expect(capped.pulled()).toBe(5);
    const counted = source(stream);
    const two = await selectAllRead(counted.items, { after: at(0).position, maxCount: 2 });
    expect(two.map((e) => e.revision)).toEqual([1n, 2n]);
    expect(counted.pulled()).toBe(3);
  });

  it('reads nothing for maxCount 0', async () => {
    const none = source(stream);
    expect(await selectAllRead(none.items, { maxCount: 0 })).toEqual([]);
    expect(none.pulled()).toBe(0);
  });

  it('resolves an instant to the last position recorded at or before it', async () => {
    const backwards = (): AsyncIterable<RecordedEvent> => source([...stream].reverse()).items;
    expect(await lastPositionAt(backwards(), at(3).recordedAt)).toBe(at(3).position);
    expect(await lastPositionAt(backwards(), new Date(T0 + 12))).toBe(at(3).position);
    expect(await lastPositionAt(backwards(), new Date(T0 + 60_000))).toBe(at(6).position);
    expect(await lastPositionAt(backwards(), new Date(T0 - 1))).toBe(START);
  });
});
