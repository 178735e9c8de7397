import type { JsonValue, Revision } from './event-store.js';
import { sha256Hex, type Sha256Hex } from './sha256.js';

/**
 * The per-stream hash chain (ADR 005). Every event's `hash` is
 *
 *   hash    = SHA-256( previous + "\n" + revision + "\n" + recordedAtMs + "\n" + content )
 *   content = SHA-256( JCS([eventId, streamId, type, data, metadata]) )
 *
 * as lower-case hex over UTF-8, where `previous` is the hash of the stream's event at
 * revision − 1 (GENESIS_HASH for revision 0), `revision` is decimal, `recordedAtMs` is the commit
 * time in decimal milliseconds since the Unix epoch (empty for EventStoreDB, whose server stamps
 * the time after the hash is made) and JCS is the RFC 8785 canonical JSON below. The global
 * position is deliberately left out, so a copy restored at the same positions verifies as the
 * original does; missing or moved positions are the verifier's separate checks
 * (core/audit/verify.ts).
 */
export const GENESIS_HASH = '0'.repeat(64);

/** Does the chain cover `recordedAt`? Yes everywhere but EventStoreDB (ADR 005). */
export type HashedTime = 'recordedAt' | 'none';

/**
 * RFC 8785 (JCS) canonical JSON: no whitespace, object members sorted by the UTF-16 code units of
 * their names (JavaScript's default sort), strings and numbers as ECMAScript's JSON.stringify
 * writes them (shortest round-trip numbers, `-0` as `0`). Members whose value is `undefined` are
 * left out, as JSON.stringify does. The same value gives the same text whatever its key order, so
 * a hash made before PostgreSQL's jsonb re-ordered the keys still matches after.
 */
export function canonicalJson(value: JsonValue | undefined): string {
  switch (typeof value) {
    case 'string':
    case 'number':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'bigint':
    case 'function':
    case 'symbol':
      // Never in validated JSON (prepareAppend refuses them); null keeps the function total.
      return 'null';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
        return `${out}]`;
      }
      const keys = Object.keys(value);
      let sorted = true;
      for (let i = 1; i < keys.length && sorted; i++)
        sorted = (keys[i - 1] ?? '') <= (keys[i] ?? '');
      if (!sorted) keys.sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const member = value[key];
        if (member === undefined) continue;
        out += `${first ? '' : ','}${quotedName(key)}:${canonicalJson(member)}`;
        first = false;
      }
      return `${out}}`;
    }
  }
}

/** Nesting beyond this makes canonicalJsonIfPlain give up (a cycle, or absurdly deep data). */
const MAX_CHECKED_DEPTH = 1000;

/**
 * canonicalJson of `value` if it is plain JSON — null, booleans, finite numbers, strings, arrays
 * without holes and plain objects (prototype Object.prototype or null) without `undefined`
 * members — else null. One walk that checks and writes, for the append path; the caller explains
 * a null with a walk that names the path (and also gets null for nesting deeper than 1,000).
 */
export function canonicalJsonIfPlain(value: unknown, depth = 0): string | null {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : null;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_CHECKED_DEPTH) return null;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item = canonicalJsonIfPlain(value[i], depth + 1);
          if (item === null) return null;
          out += (i > 0 ? ',' : '') + item;
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return null;
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object);
      let sorted = true;
      for (let i = 1; i < keys.length && sorted; i++)
        sorted = (keys[i - 1] ?? '') <= (keys[i] ?? '');
      if (!sorted) keys.sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] ?? '';
        const member = canonicalJsonIfPlain(object[key], depth + 1);
        if (member === null) return null;
        out += `${i > 0 ? ',' : ''}${quotedName(key)}:${member}`;
      }
      return `${out}}`;
    }
    case 'undefined':
    case 'bigint':
    case 'function':
    case 'symbol':
      return null;
  }
}

/** Member names repeat across events of one schema: quote each once (bounded, then uncached). */
const quotedNames = new Map<string, string>();
function quotedName(name: string): string {
  let quoted = quotedNames.get(name);
  if (quoted === undefined) {
    quoted = JSON.stringify(name);
    if (quotedNames.size < 10_000) quotedNames.set(name, quoted);
  }
  return quoted;
}

/** What the content digest covers: the parts of an event its writer decides. */
export interface HashedContent {
  eventId: string;
  streamId: string;
  type: string;
  data: JsonValue;
  metadata: { [key: string]: JsonValue | undefined };
}

/** The canonical text the content digest is taken over. */
export const contentText = (event: HashedContent): string =>
  canonicalJson([
    event.eventId,
    event.streamId,
    event.type,
    event.data,
    event.metadata as JsonValue,
  ]);

/**
 * `contentText` from parts already in canonical JSON: what the append path uses, so each event is
 * serialized once.
 */
export const joinContent = (
  eventId: string,
  streamId: string,
  type: string,
  canonicalData: string,
  canonicalMetadata: string,
): string =>
  `[${JSON.stringify(eventId)},${JSON.stringify(streamId)},${JSON.stringify(type)},${canonicalData},${canonicalMetadata}]`;

/** The text the event's hash is taken over, given the content digest. */
export const chainText = (
  previousHash: string,
  revision: Revision,
  recordedAtMs: string,
  contentDigest: string,
): string => `${previousHash}\n${revision.toString()}\n${recordedAtMs}\n${contentDigest}`;

/** The time field of the chain text. */
export const hashedTime = (recordedAt: Date, time: HashedTime): string =>
  time === 'recordedAt' ? String(recordedAt.getTime()) : '';

/** An event's expected hash, given the hash of its predecessor in the stream. */
export function eventHash(
  previousHash: string,
  event: HashedContent & { revision: Revision; recordedAt: Date },
  options: { sha256?: Sha256Hex; time?: HashedTime } = {},
): string {
  const sha256 = options.sha256 ?? sha256Hex;
  return sha256(
    chainText(
      previousHash,
      event.revision,
      hashedTime(event.recordedAt, options.time ?? 'recordedAt'),
      sha256(contentText(event)),
    ),
  );
}

/** Lower-case hex SHA-256: the only shape a stored hash may have. */
export const isHash = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
