import { v7 as uuidv7 } from 'uuid';
import { ValidationError } from '../errors.js';
import { canonicalJson, canonicalJsonIfPlain, joinContent } from './event-hash.js';
import type { ExpectedRevision, JsonValue, NewEvent } from './event-store.js';

/** Largest serialized event (data + metadata) the store accepts. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Stream ids: a category, a dash, then an id (`strategy-7f3c...`); letters, digits and `_.:@=+-`.
 * A leading `$` is reserved for the store itself.
 */
const STREAM_ID = /^[A-Za-z][A-Za-z0-9_]*-[A-Za-z0-9_.:@=+-]+$/;
const MAX_STREAM_ID_LENGTH = 200;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,199}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An event checked and serialized once, ready for any adapter to write. */
export interface PreparedEvent {
  eventId: string;
  type: string;
  /** Proven plain JSON, so parsing it back is exact; canonical (RFC 8785), so it hashes as is. */
  dataJson: string;
  metadataJson: string;
  /** The canonical text the event's content digest is taken over (event-hash.ts). */
  content: string;
}

export const categoryOf = (streamId: string): string => streamId.slice(0, streamId.indexOf('-'));

export function assertValidStreamId(streamId: unknown): asserts streamId is string {
  if (
    typeof streamId !== 'string' ||
    streamId.length > MAX_STREAM_ID_LENGTH ||
    !STREAM_ID.test(streamId)
  ) {
    throw new ValidationError(
      'INVALID_STREAM_ID',
      `invalid stream id ${JSON.stringify(streamId)}: expected '<category>-<id>' (letters, digits, _.:@=+-; at most ${MAX_STREAM_ID_LENGTH} characters)`,
      { streamId: String(streamId) },
    );
  }
}

export function assertValidExpectedRevision(
  expected: unknown,
): asserts expected is ExpectedRevision {
  if (expected === 'no_stream' || expected === 'stream_exists' || expected === 'any') return;
  if (typeof expected === 'bigint' && expected >= 0n) return;
  throw new ValidationError(
    'INVALID_EXPECTED_REVISION',
    `invalid expected revision ${String(expected)}: expected a revision >= 0 (bigint), 'no_stream', 'stream_exists' or 'any'`,
  );
}

/** Where in a value the first non-JSON part is, or null when it is all plain JSON. */
function firstNonJson(value: unknown, path: string, seen: Set<object>): string | null {
  switch (typeof value) {
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return `${path} is ${typeof value}`;
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : `${path} is ${String(value)}`;
    case 'object': {
      if (value === null) return null;
      if (seen.has(value)) return `${path} is a circular reference`;
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const found = firstNonJson(value[i], `${path}[${i}]`, seen);
            if (found) return found;
          }
          return null;
        }
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          return `${path} is a ${value.constructor.name}, not a plain object`;
        }
        for (const [key, item] of Object.entries(value)) {
          const found = firstNonJson(item, `${path}.${key}`, seen);
          if (found) return found;
        }
        return null;
      } finally {
        seen.delete(value);
      }
    }
  }
}

/** A `\\udXXX` escape for U+D800–U+DFFF that is not itself an escaped backslash's text. */
const LONE_SURROGATE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/i;

function serialize(value: unknown, path: string, index: number): string {
  // Canonical, not JSON.stringify: the same text serves the write and the content digest. One
  // walk checks and writes; only a value it refuses is walked again, to name the problem's path.
  const text = canonicalJsonIfPlain(value);
  if (text !== null) {
    // U+0000 is written `\u0000` (not after an escaping backslash): PostgreSQL's jsonb refuses
    // it, and a refused event would fail the other appends of its group commit. Refused here,
    // in every store, so any log can be restored into any other.
    if (text.includes('\\u0000') && /(?:^|[^\\])(?:\\\\)*\\u0000/.test(text)) {
      throw new ValidationError(
        'EVENT_NOT_SERIALIZABLE',
        `event ${index}: ${path} holds the NUL character (U+0000), which the log cannot store`,
        { index },
      );
    }
    // JSON.stringify writes a lone UTF-16 surrogate as `\udXXX` (a paired one as the character
    // itself): not well-formed Unicode, and PostgreSQL's jsonb refuses it, like NUL.
    if (text.includes('\\ud') && LONE_SURROGATE_ESCAPE.test(text)) {
      throw new ValidationError(
        'EVENT_NOT_SERIALIZABLE',
        `event ${index}: ${path} holds a lone UTF-16 surrogate (not well-formed Unicode), which the log cannot store`,
        { index },
      );
    }
    return text;
  }
  const problem = firstNonJson(value, path, new Set());
  if (problem !== null) {
    throw new ValidationError(
      'EVENT_NOT_SERIALIZABLE',
      `event ${index}: ${problem}; events must be plain JSON`,
      {
        index,
      },
    );
  }
  // Plain JSON nested deeper than the checked walk goes.
  return canonicalJson(value as JsonValue);
}

/** Upper bound first: exact UTF-8 length is only worth computing for long strings. */
function utf8Length(text: string): number {
  if (text.length * 3 <= MAX_EVENT_BYTES) return text.length;
  return new TextEncoder().encode(text).length;
}

const field = (value: object, key: string): unknown =>
  key in value ? (value as Record<string, unknown>)[key] : undefined;

function prepareEvent(
  streamId: string,
  event: unknown,
  index: number,
  newId: () => string,
): PreparedEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new ValidationError('INVALID_EVENT', `event ${index} is not an object`, { index });
  }
  const type = field(event, 'type');
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
    throw new ValidationError(
      'INVALID_EVENT_TYPE',
      `event ${index}: invalid type ${JSON.stringify(type)}: expected a name such as 'StrategyApproved'`,
      { index },
    );
  }
  const eventId = field(event, 'eventId') ?? newId();
  if (typeof eventId !== 'string' || !UUID.test(eventId)) {
    throw new ValidationError(
      'INVALID_EVENT_ID',
      `event ${index}: eventId ${JSON.stringify(eventId)} is not a uuid`,
      {
        index,
      },
    );
  }
  const metadata = field(event, 'metadata');
  const actor =
    typeof metadata === 'object' && metadata !== null ? field(metadata, 'actor') : undefined;
  if (typeof actor !== 'string' || actor.trim() === '') {
    throw new ValidationError(
      'MISSING_ACTOR',
      `event ${index}: metadata.actor is required (who caused this event)`,
      {
        index,
      },
    );
  }
  const data = field(event, 'data');
  const dataJson = serialize(data, 'data', index);
  const metadataJson = serialize(metadata, 'metadata', index);
  const size = utf8Length(dataJson) + utf8Length(metadataJson);
  if (size > MAX_EVENT_BYTES) {
    throw new ValidationError(
      'EVENT_TOO_LARGE',
      `event ${index} is ${size} bytes serialized; the limit is ${MAX_EVENT_BYTES} bytes`,
      { index, size, limit: MAX_EVENT_BYTES },
    );
  }
  const id = eventId.toLowerCase();
  return {
    eventId: id,
    type,
    dataJson,
    metadataJson,
    content: joinContent(id, streamId, type, dataJson, metadataJson),
  };
}

/**
 * Checks everything about an append that does not need the store, so a bad append is refused
 * before anything is written.
 */
export function prepareAppend(
  streamId: string,
  events: readonly NewEvent[] | readonly unknown[],
  expectedRevision: unknown,
  // Time-ordered (UUIDv7): a new id lands at the right edge of the log's unique event_id index
  // instead of on a random page of it, which keeps appends' index cost flat as the log grows.
  newId: () => string = uuidv7,
): PreparedEvent[] {
  assertValidStreamId(streamId);
  assertValidExpectedRevision(expectedRevision);
  if (events.length === 0) {
    throw new ValidationError('EMPTY_EVENT_LIST', `append to '${streamId}' has no events`, {
      streamId,
    });
  }
  const prepared = events.map((event, index) => prepareEvent(streamId, event, index, newId));
  const ids = new Set(prepared.map((event) => event.eventId));
  if (ids.size !== prepared.length) {
    throw new ValidationError('DUPLICATE_EVENT_ID', `append to '${streamId}' repeats an eventId`, {
      streamId,
    });
  }
  return prepared;
}
