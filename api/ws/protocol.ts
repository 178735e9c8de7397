import { z } from 'zod';
import { assertValidStreamId, categoryOf } from '../../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';

/**
 * The `/ws` live feed protocol (docs/websocket.md): JSON text frames both ways. Clients send
 * `auth`, `subscribe` and `unsubscribe`; the server answers `authenticated`, `subscribed`,
 * `unsubscribed`, `error` and pushes `event`.
 */

/** Close codes the server uses; 4xxx mirror the HTTP status of the same meaning where one fits. */
export const CLOSE = {
  /** The server is shutting down (or restarting); reconnect elsewhere or later. */
  GOING_AWAY: 1001,
  /** Too many messages queued while authentication was still running. */
  POLICY_VIOLATION: 1008,
  /** Something failed on the server's side (e.g. the key store was unreachable). */
  INTERNAL_ERROR: 1011,
  /** The client did not read fast enough: its send buffer passed the limit. */
  SLOW_CONSUMER: 4008,
  /** No, a malformed, an unknown, a revoked or a rotated-away API key; or a first message that was not `auth`. */
  AUTHENTICATION_FAILED: 4401,
  /** The key's role lacks `feed:subscribe`. */
  FORBIDDEN: 4403,
  /** No `auth` message within the authentication timeout (5 s by default). */
  AUTHENTICATION_TIMEOUT: 4408,
  /** Too many failed authentications from this address in the current minute. */
  TOO_MANY_FAILED_AUTHENTICATIONS: 4429,
} as const;
export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** Codes of `error` frames: the mistake is the client's and the socket stays open. */
export type ErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_MESSAGE'
  | 'INVALID_CHANNEL'
  | 'CHANNEL_FORBIDDEN'
  | 'NOT_SUBSCRIBED'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'ALREADY_AUTHENTICATED';

const MAX_CHANNEL_LENGTH = 256;

export const clientMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('auth'), token: z.string().min(1).max(512) }),
  z.strictObject({
    type: z.literal('subscribe'),
    channel: z.string().min(1).max(MAX_CHANNEL_LENGTH),
  }),
  z.strictObject({
    type: z.literal('unsubscribe'),
    channel: z.string().min(1).max(MAX_CHANNEL_LENGTH),
  }),
]);
export type ClientMessage = z.infer<typeof clientMessage>;

/** What a zod failure says, in one line for an `error` frame. */
export const describeIssues = (error: z.ZodError): string =>
  error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'message'}: ${issue.message}`)
    .join('; ');

/** Named channels: a shorthand for one stream category. */
const ALIASES: Readonly<Record<string, string>> = {
  risk: 'risk',
  positions: 'position',
  strategies: 'strategy',
  /** Optimization runs: requested, each batch of trials (progress), completed, failed, cancelled. */
  optimizations: 'optimization',
  /** Allocation policies, members, proposals and applied allocations (docs/portfolio.md). */
  allocations: 'portfolio',
};
/** The reverse: which alias, if any, a category's events are also published under. */
const ALIAS_OF_CATEGORY: ReadonlyMap<string, string> = new Map(
  Object.entries(ALIASES).map(([alias, category]) => [category, alias]),
);

/**
 * Categories whose events never leave the server over the feed: API key events carry secret
 * hashes and who holds which role. Audit them over HTTP (`audit:read`), which shows no data.
 */
export const WITHHELD_CATEGORIES: ReadonlySet<string> = new Set(['apikey']);

const CATEGORY = /^[A-Za-z][A-Za-z0-9_]{0,199}$/;

const isStreamId = (value: string): boolean => {
  try {
    assertValidStreamId(value);
    return true;
  } catch {
    return false;
  }
};

export type ChannelCheck =
  | { ok: true; channel: string }
  | { ok: false; code: 'INVALID_CHANNEL' | 'CHANNEL_FORBIDDEN'; message: string };

/** Checks a channel name a client asked for: `stream:<id>`, `category:<c>` or an alias. */
export function checkChannel(channel: string): ChannelCheck {
  let category: string | undefined;
  if (Object.hasOwn(ALIASES, channel)) category = ALIASES[channel];
  else if (channel.startsWith('stream:')) {
    const streamId = channel.slice('stream:'.length);
    if (isStreamId(streamId)) category = categoryOf(streamId);
  } else if (channel.startsWith('category:')) {
    const name = channel.slice('category:'.length);
    if (CATEGORY.test(name)) category = name;
  }
  if (category === undefined) {
    return {
      ok: false,
      code: 'INVALID_CHANNEL',
      message: `unknown channel ${JSON.stringify(channel)}: expected 'stream:<category>-<id>', 'category:<category>', 'risk', 'positions', 'strategies', 'optimizations' or 'allocations'`,
    };
  }
  if (WITHHELD_CATEGORIES.has(category)) {
    return {
      ok: false,
      code: 'CHANNEL_FORBIDDEN',
      message: `events of category '${category}' are not published on the feed`,
    };
  }
  return { ok: true, channel };
}

/** Every channel an event is published on. */
export function channelsOf(streamId: string, category: string): string[] {
  const channels = [`stream:${streamId}`, `category:${category}`];
  const alias = ALIAS_OF_CATEGORY.get(category);
  if (alias !== undefined) channels.push(alias);
  return channels;
}

export interface WireEvent {
  eventId: string;
  /** Global position in the log, as a decimal string (it may exceed 2^53). */
  position: string;
  /** Revision in its stream, as a decimal string. */
  revision: string;
  recordedAt: string;
  streamId: string;
  category: string;
  type: string;
  data: RecordedEvent['data'];
  metadata: RecordedEvent['metadata'];
}

export const toWireEvent = (event: RecordedEvent): WireEvent => ({
  eventId: event.eventId,
  position: event.position.toString(),
  revision: event.revision.toString(),
  recordedAt: event.recordedAt.toISOString(),
  streamId: event.streamId,
  category: categoryOf(event.streamId),
  type: event.type,
  data: event.data,
  metadata: event.metadata,
});

export type ServerMessage =
  | { type: 'authenticated'; keyId: string; role: string }
  | { type: 'subscribed'; channel: string; after: string }
  | { type: 'unsubscribed'; channel: string }
  | { type: 'error'; code: ErrorCode; message: string };

/** An `event` frame around an event already serialized once for every socket. */
export const eventFrame = (channel: string, eventJson: string): string =>
  `{"type":"event","channel":${JSON.stringify(channel)},"event":${eventJson}}`;
