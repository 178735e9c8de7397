import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GENESIS_HASH,
  canonicalJson,
  canonicalJsonIfPlain,
  chainText,
  contentText,
  eventHash,
  joinContent,
} from './event-hash.js';
import type { JsonValue } from './event-store.js';
import { sha256Hex } from './sha256.js';

const nodeSha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('sha256Hex (portable SHA-256)', () => {
  it.each([
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
  ])('matches the FIPS 180-4 test vector for %j', (input, digest) => {
    expect(sha256Hex(input)).toBe(digest);
  });

  it('matches node:crypto on lengths around the block boundaries and on non-ASCII text', () => {
    const inputs: string[] = [];
    for (let length = 0; length <= 200; length++) inputs.push('x'.repeat(length));
    inputs.push('é€𝔘🚀\u0000\uffff'.repeat(500), 'ａ'.repeat(70_000));
    for (const input of inputs) expect(sha256Hex(input)).toBe(nodeSha256(input));
  });
});

describe('canonicalJson (RFC 8785)', () => {
  it('writes the RFC 8785 §3.2.2 example exactly', () => {
    const value = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals":[null,true,false]}',
    ) as JsonValue;
    expect(canonicalJson(value)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts members by UTF-16 code units (RFC 8785 §3.2.3), not by code points', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Read the member names off the text: parsing it back would put '1' first (an array index).
    const keys = [...canonicalJson(value).matchAll(/"([^"]*)":/g)].map((match) => match[1]);
    expect(keys).toEqual(['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  it('gives the same text whatever the key order, and -0 as 0', () => {
    const a = { z: 1, a: { y: [1, { b: 2, a: 1 }], x: null }, m: -0 };
    const b = { m: 0, a: { x: null, y: [1, { a: 1, b: 2 }] }, z: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"x":null,"y":[1,{"a":1,"b":2}]},"m":0,"z":1}');
  });

  it('joins canonical parts into exactly the canonical text of the whole event', () => {
    const data = { b: [1, { y: 'é\n', x: null }], a: -0, '10': true, '9': 1e-7 } as JsonValue;
    const metadata = { actor: 'u', z: { k: 'v' }, correlationId: 'c' };
    expect(joinContent('id', 'order-1', 'T', canonicalJson(data), canonicalJson(metadata))).toBe(
      contentText({ eventId: 'id', streamId: 'order-1', type: 'T', data, metadata }),
    );
    // Names that look like array indexes still sort as strings.
    expect(canonicalJson(data)).toBe('{"10":true,"9":1e-7,"a":0,"b":[1,{"x":null,"y":"é\\n"}]}');
  });

  it('is what PostgreSQL jsonb gives back, parsed: shortest numbers survive the round trip', () => {
    // jsonb stores 1e21 as 1000000000000000000000 and 1.5e-7 as 0.00000015; JSON.parse of either
    // is the same double, which canonicalJson writes the same way.
    expect(canonicalJson(JSON.parse('1000000000000000000000') as JsonValue)).toBe(
      canonicalJson(1e21),
    );
    expect(canonicalJson(JSON.parse('0.00000015') as JsonValue)).toBe(canonicalJson(1.5e-7));
    expect(canonicalJson(JSON.parse('101.250') as JsonValue)).toBe('101.25');
  });
});

describe('canonicalJsonIfPlain (the append path: check and write in one walk)', () => {
  it('writes plain JSON exactly as canonicalJson does', () => {
    const value = { z: [1, { b: 'x', a: null }], a: true, n: -2.5e-9, e: {}, l: [] };
    expect(canonicalJsonIfPlain(value)).toBe(canonicalJson(value));
    expect(canonicalJsonIfPlain(Object.assign(Object.create(null), { b: 1, a: 2 }))).toBe(
      '{"a":2,"b":1}',
    );
  });

  it.each<[string, unknown]>([
    ['NaN', { a: Number.NaN }],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['an undefined member', { a: undefined }],
    ['a hole in an array', new Array<number>(3)],
    ['a bigint', { a: 1n }],
    ['a function', { a: () => 1 }],
    ['a Date', { at: new Date(0) }],
    ['a Map', new Map()],
    ['nesting deeper than 1,000', JSON.parse('['.repeat(1001) + ']'.repeat(1001)) as unknown],
  ])('gives up on %s', (_, value) => {
    expect(canonicalJsonIfPlain(value)).toBeNull();
  });

  it('gives up on a cycle instead of recursing forever', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(canonicalJsonIfPlain(cyclic)).toBeNull();
  });
});

describe('eventHash', () => {
  const base = {
    eventId: randomUUID(),
    streamId: 'order-1',
    type: 'OrderPlaced',
    data: { qty: 2, price: 101.25 } as JsonValue,
    metadata: { actor: 'u', correlationId: 'c-1' },
    revision: 3n,
    recordedAt: new Date(Date.UTC(2026, 10, 26, 10, 0, 0, 123)),
  };
  const previous = 'ab'.repeat(32);

  it('is the documented construction (ADR 005)', () => {
    const content = nodeSha256(
      `["${base.eventId}","order-1","OrderPlaced",{"price":101.25,"qty":2},{"actor":"u","correlationId":"c-1"}]`,
    );
    expect(contentText(base)).toBe(
      `["${base.eventId}","order-1","OrderPlaced",{"price":101.25,"qty":2},{"actor":"u","correlationId":"c-1"}]`,
    );
    expect(chainText(previous, 3n, '1795687200123', content)).toBe(
      `${previous}\n3\n1795687200123\n${content}`,
    );
    expect(eventHash(previous, base)).toBe(
      nodeSha256(`${previous}\n3\n${String(base.recordedAt.getTime())}\n${content}`),
    );
    expect(eventHash(previous, base, { time: 'none' })).toBe(
      nodeSha256(`${previous}\n3\n\n${content}`),
    );
    expect(eventHash(previous, base, { sha256: nodeSha256 })).toBe(eventHash(previous, base));
    expect(GENESIS_HASH).toBe('0'.repeat(64));
  });

  it.each<[string, Partial<typeof base>]>([
    ['event id', { eventId: randomUUID() }],
    ['stream', { streamId: 'order-2' }],
    ['type', { type: 'OrderPlacedX' }],
    ['data', { data: { qty: 2, price: 101.26 } }],
    ['metadata', { metadata: { actor: 'mallory', correlationId: 'c-1' } }],
    ['revision', { revision: 4n }],
    ['commit time', { recordedAt: new Date(base.recordedAt.getTime() + 1) }],
  ])('changes when the %s changes', (_, change) => {
    expect(eventHash(previous, { ...base, ...change })).not.toBe(eventHash(previous, base));
  });

  it('changes with the predecessor, and not with the key order of data', () => {
    expect(eventHash(GENESIS_HASH, base)).not.toBe(eventHash(previous, base));
    expect(eventHash(previous, { ...base, data: { price: 101.25, qty: 2 } })).toBe(
      eventHash(previous, base),
    );
  });
});
