// Under 400 lines without comments (what the max-lines rule counts): one socket's protocol state
// machine, which reads best in one file.
import websocket, { type WebSocket as Socket } from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Subscription } from 'rxjs';
import { WebSocket, type RawData } from 'ws';
import { allows, type Permission } from '../../core/access/roles.js';
import type { EventStore } from '../../core/eventstore/event-store.js';
import type { Metrics } from '../../monitoring/metrics.js';
import { FailureCounter, bearer } from '../auth/failure-counter.js';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import { startLiveEvents, type LiveEvent, type LiveEvents } from './live-events.js';
import {
  CLOSE,
  channelsOf,
  checkChannel,
  clientMessage,
  describeIssues,
  eventFrame,
  type ClientMessage,
  type CloseCode,
  type ErrorCode,
  type ServerMessage,
} from './protocol.js';

/** What a key's role needs to open the feed. */
export const FEED_PERMISSION: Permission = 'feed:subscribe';

export interface LiveFeedOptions {
  eventStore: EventStore;
  metrics: Pick<Metrics, 'websocketConnections'>;
  authenticator: Pick<Authenticator, 'authenticate'>;
  /** Failed authentications per client address and minute before 4429; default 20. */
  failuresPerMinute?: number;
  /** The count shared with HTTP (and other processes through Redis); default its own. */
  failures?: FailureCounter;
  /** How long a socket without an Authorization header has to send `auth`; default 5 s. */
  authTimeoutMs?: number;
  /** Ping interval; a socket that has not answered the previous ping is terminated. Default 15 s. */
  heartbeatMs?: number;
  /** Bytes a socket may have waiting to be sent before it is closed as a slow consumer; 1 MiB. */
  maxBufferedBytes?: number;
  /** Largest client message; bigger ones close the socket with 1009. Default 16 KiB. */
  maxMessageBytes?: number;
  /** Channels one socket may subscribe to; default 100. */
  maxSubscriptions?: number;
  /** How long a closed socket has to answer the close frame before it is cut; default 5 s. */
  closeGraceMs?: number;
}

type Settings = Required<
  Omit<LiveFeedOptions, 'eventStore' | 'metrics' | 'authenticator' | 'failures'>
>;

const DEFAULTS: Settings = {
  failuresPerMinute: 20,
  authTimeoutMs: 5000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
  maxMessageBytes: 16 * 1024,
  maxSubscriptions: 100,
  closeGraceMs: 5000,
};

/** Messages a socket may have queued while its authentication is still running. */
const MAX_PENDING_MESSAGES = 32;

const text = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

interface Shared {
  settings: Settings;
  live: LiveEvents;
  authenticator: Pick<Authenticator, 'authenticate'>;
  failures: FailureCounter;
  log: FastifyBaseLogger;
}

/** One socket of the feed, from upgrade to close. */
class FeedConnection {
  private state: 'authenticating' | 'open' | 'closed' = 'authenticating';
  private principal: Principal | null = null;
  private token = '';
  private readonly channels = new Set<string>();
  private events: Subscription | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  /** Answered the last ping (or has not been pinged yet). */
  alive = true;

  constructor(
    readonly socket: Socket,
    private readonly address: string,
    private readonly shared: Shared,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(headerToken: string | null): void {
    this.socket.on('pong', () => {
      this.alive = true;
    });
    this.socket.on('message', (data, isBinary) => {
      // Once authenticated, messages are handled at once; until then, one after the other, so
      // that none overtakes the pending authentication.
      if (this.state === 'open' && this.pending === 0) this.receiveOpen(data, isBinary);
      else this.enqueue(() => this.receive(data, isBinary));
    });
    this.socket.on('close', () => {
      this.release();
      clearTimeout(this.killTimer);
    });
    if (headerToken !== null) {
      this.enqueue(() => this.authenticate(headerToken));
    } else {
      this.authTimer = setTimeout(() => {
        this.close(CLOSE.AUTHENTICATION_TIMEOUT, 'no auth message in time');
      }, this.shared.settings.authTimeoutMs);
    }
  }

  private enqueue(task: () => Promise<void> | void): void {
    if (this.pending >= MAX_PENDING_MESSAGES) {
      this.close(CLOSE.POLICY_VIOLATION, 'too many messages before authentication completed');
      return;
    }
    this.pending++;
    this.queue = this.queue
      .then(task)
      .catch((error: unknown) => {
        this.log.error({ err: error }, 'websocket message failed');
        this.close(CLOSE.INTERNAL_ERROR, 'internal error');
      })
      .finally(() => {
        this.pending--;
      });
  }

  private async receive(data: RawData, isBinary: boolean): Promise<void> {
    if (this.state === 'open') {
      this.receiveOpen(data, isBinary);
      return;
    }
    if (this.state === 'closed') return;
    // Until authenticated, the only acceptable message is `auth`; anything else ends the socket.
    const parsed = this.parse(data, isBinary);
    if (!parsed.ok || parsed.message.type !== 'auth') {
      this.close(CLOSE.AUTHENTICATION_FAILED, 'authenticate first: {"type":"auth","token":...}');
      return;
    }
    clearTimeout(this.authTimer);
    await this.authenticate(parsed.message.token);
  }

  private receiveOpen(data: RawData, isBinary: boolean): void {
    if (this.state !== 'open') return;
    const parsed = this.parse(data, isBinary);
    if (!parsed.ok) {
      this.error(parsed.code, parsed.error);
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'auth':
        this.error('ALREADY_AUTHENTICATED', 'this socket is already authenticated');
        return;
      case 'subscribe':
        this.subscribe(message.channel);
        return;
      case 'unsubscribe':
        this.unsubscribe(message.channel);
        return;
    }
  }

  private parse(
    data: RawData,
    isBinary: boolean,
  ): { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; error: string } {
    if (isBinary) {
      return {
        ok: false,
        code: 'INVALID_MESSAGE',
        error: 'binary frames are not supported: send JSON text',
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(text(data).toString('utf8'));
    } catch {
      return { ok: false, code: 'INVALID_JSON', error: 'the message is not valid JSON' };
    }
    const result = clientMessage.safeParse(json);
    if (!result.success) {
      return { ok: false, code: 'INVALID_MESSAGE', error: describeIssues(result.error) };
    }
    return { ok: true, message: result.data };
  }

  private async authenticate(token: string): Promise<void> {
    const { failures, authenticator } = this.shared;
    if (await failures.refused(this.address, token)) {
      this.close(CLOSE.TOO_MANY_FAILED_AUTHENTICATIONS, 'too many failed authentications');
      return;
    }
    const principal = token === '' ? null : await authenticator.authenticate(token);
    if (principal) await failures.succeeded(token);
    else await failures.record(this.address);
    if (this.state === 'closed') return;
    if (!principal) {
      this.close(CLOSE.AUTHENTICATION_FAILED, 'the API key is unknown, revoked or malformed');
      return;
    }
    if (!allows(principal.role, FEED_PERMISSION)) {
      this.close(CLOSE.FORBIDDEN, `role '${principal.role}' lacks '${FEED_PERMISSION}'`);
      return;
    }
    this.principal = principal;
    this.token = token;
    this.state = 'open';
    this.events = this.shared.live.events$.subscribe((live) => {
      this.deliver(live);
    });
    this.send({ type: 'authenticated', keyId: principal.keyId, role: principal.role });
  }

  /** A method, not the field: the state may change while a check is awaited. */
  private isOpen(): boolean {
    return this.state === 'open';
  }

  /** Re-reads the key (through the authenticator's cache): a revoked key loses its sockets. */
  async recheck(): Promise<void> {
    if (!this.isOpen()) return;
    const principal = await this.shared.authenticator.authenticate(this.token);
    if (!this.isOpen()) return;
    if (!principal || principal.keyId !== this.principal?.keyId) {
      this.close(CLOSE.AUTHENTICATION_FAILED, 'the API key was revoked or rotated');
    } else if (!allows(principal.role, FEED_PERMISSION)) {
      this.close(CLOSE.FORBIDDEN, `role '${principal.role}' lacks '${FEED_PERMISSION}'`);
    }
  }

  private subscribe(channel: string): void {
    const check = checkChannel(channel);
    if (!check.ok) {
      this.error(check.code, check.message);
      return;
    }
    if (
      !this.channels.has(channel) &&
      this.channels.size >= this.shared.settings.maxSubscriptions
    ) {
      this.error(
        'TOO_MANY_SUBSCRIPTIONS',
        `at most ${this.shared.settings.maxSubscriptions} channels per socket`,
      );
      return;
    }
    this.channels.add(channel);
    this.send({ type: 'subscribed', channel, after: this.shared.live.position().toString() });
  }

  private unsubscribe(channel: string): void {
    if (!this.channels.delete(channel)) {
      this.error('NOT_SUBSCRIBED', `not subscribed to ${JSON.stringify(channel)}`);
      return;
    }
    this.send({ type: 'unsubscribed', channel });
  }

  private deliver(live: LiveEvent): void {
    if (this.channels.size === 0) return;
    for (const channel of channelsOf(live.event.streamId, live.category)) {
      if (this.channels.has(channel) && !this.write(eventFrame(channel, live.json()))) return;
    }
  }

  private error(code: ErrorCode, message: string): void {
    this.send({ type: 'error', code, message });
  }

  private send(message: ServerMessage): void {
    this.write(JSON.stringify(message));
  }

  /** Sends unless the socket's backlog is over the limit, which closes it as a slow consumer. */
  private write(frame: string): boolean {
    if (this.state === 'closed' || this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.socket.bufferedAmount > this.shared.settings.maxBufferedBytes) {
      this.log.warn(
        { bufferedAmount: this.socket.bufferedAmount },
        'websocket closed: slow consumer',
      );
      this.close(CLOSE.SLOW_CONSUMER, 'slow consumer');
      return false;
    }
    this.socket.send(frame);
    return true;
  }

  /** Sends a close frame, stops all delivery, and cuts the socket if it does not answer in time. */
  close(code: CloseCode, reason: string): void {
    if (this.state === 'closed') return;
    this.release();
    if (
      this.socket.readyState === WebSocket.CONNECTING ||
      this.socket.readyState === WebSocket.OPEN
    )
      this.socket.close(code, reason);
    this.killTimer = setTimeout(() => {
      this.socket.terminate();
    }, this.shared.settings.closeGraceMs);
    this.killTimer.unref();
  }

  private release(): void {
    this.state = 'closed';
    clearTimeout(this.authTimer);
    this.events?.unsubscribe();
    this.events = undefined;
    this.channels.clear();
  }
}

/**
 * `GET /ws`: the live event feed (docs/websocket.md). At HTTP level the route is public, so that
 * a browser, which cannot set headers on an upgrade, can authenticate with its first message; the
 * socket then carries nothing until a key with `feed:subscribe` is presented, by header or message.
 */
async function liveFeedPlugin(fastify: FastifyInstance, options: LiveFeedOptions): Promise<void> {
  const settings = settingsOf(options);
  const { metrics } = options;
  const live = await startLiveEvents(options.eventStore, {
    onError: (error, attempt) => {
      fastify.log.warn({ err: error, attempt }, 'live feed: store subscription failed; resuming');
    },
  });
  const shared: Shared = {
    settings,
    live,
    authenticator: options.authenticator,
    failures: options.failures ?? new FailureCounter(settings.failuresPerMinute),
    log: fastify.log,
  };
  const connections = new Set<FeedConnection>();
  const heartbeat = startHeartbeat(connections, settings.heartbeatMs, fastify.log);

  fastify.addHook('onClose', async () => {
    clearInterval(heartbeat);
    live.stop();
  });
  await fastify.register(websocket, {
    options: { maxPayload: settings.maxMessageBytes },
    preClose: () => shutdown(fastify, heartbeat, connections, settings.closeGraceMs),
  });

  fastify.get(
    '/ws',
    // Public at HTTP level only: the socket authenticates itself (see above) and needs FEED_PERMISSION.
    { websocket: true, config: { permission: 'public' } },
    (socket, request) => {
      metrics.websocketConnections.inc();
      const connection = new FeedConnection(socket, request.ip, shared, request.log);
      connections.add(connection);
      socket.on('close', () => {
        metrics.websocketConnections.dec();
        connections.delete(connection);
      });
      connection.start(bearer(request));
    },
  );
}

function settingsOf(options: LiveFeedOptions): Settings {
  return {
    failuresPerMinute: options.failuresPerMinute ?? DEFAULTS.failuresPerMinute,
    authTimeoutMs: options.authTimeoutMs ?? DEFAULTS.authTimeoutMs,
    heartbeatMs: options.heartbeatMs ?? DEFAULTS.heartbeatMs,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    maxSubscriptions: options.maxSubscriptions ?? DEFAULTS.maxSubscriptions,
    closeGraceMs: options.closeGraceMs ?? DEFAULTS.closeGraceMs,
  };
}

/** Pings every open socket each interval; one that has not answered the last ping is cut. */
function startHeartbeat(
  connections: ReadonlySet<FeedConnection>,
  heartbeatMs: number,
  log: FastifyBaseLogger,
): NodeJS.Timeout {
  const heartbeat = setInterval(() => {
    for (const connection of connections) {
      if (connection.socket.readyState !== WebSocket.OPEN) continue;
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
      void connection.recheck().catch((error: unknown) => {
        log.warn({ err: error }, 'live feed: could not re-check a key');
      });
    }
  }, heartbeatMs);
  heartbeat.unref();
  return heartbeat;
}

/** Going away: every socket gets 1001, and the ones that do not answer are cut after the grace. */
async function shutdown(
  fastify: FastifyInstance,
  heartbeat: NodeJS.Timeout,
  connections: ReadonlySet<FeedConnection>,
  closeGraceMs: number,
): Promise<void> {
  clearInterval(heartbeat);
  const sockets = [...fastify.websocketServer.clients];
  const closed = sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) resolve();
        else
          socket.once('close', () => {
            resolve();
          });
      }),
  );
  for (const connection of connections) connection.close(CLOSE.GOING_AWAY, 'server shutting down');
  for (const socket of sockets) {
    if (socket.readyState === WebSocket.OPEN)
      socket.close(CLOSE.GOING_AWAY, 'server shutting down');
  }
  const grace = setTimeout(() => {
    for (const socket of sockets) socket.terminate();
  }, closeGraceMs);
  await Promise.all(closed);
  clearTimeout(grace);
  await new Promise<void>((resolve) => {
    fastify.websocketServer.close(() => {
      resolve();
    });
  });
}

/**
 * Not encapsulated: `@fastify/websocket` must see the routes registered after it (any of them
 * may be asked to upgrade), so register this after the auth plugin and before the routes.
 */
export const liveFeed = fp(liveFeedPlugin, { name: 'qcat-live-feed' });
