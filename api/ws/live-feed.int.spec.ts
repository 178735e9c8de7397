import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { ROLES, allows } from '../../core/access/roles.js';
import { PostgresEventStore } from '../../core/adapters/postgres/postgres-event-store.js';
import type { JsonValue } from '../../core/eventstore/event-store.js';
import type { Runtime } from '../../ops/runtime.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { ApiKeyService } from '../auth/api-key-service.js';
import { Authenticator } from '../auth/authenticator.js';
import { liveFeed, type LiveFeedOptions } from './plugin.js';
import { CLOSE } from './protocol.js';

/** Whatever the server sends: parsed, never cast. */
const frameSchema = z.looseObject({ type: z.string() });
type Frame = z.infer<typeof frameSchema>;

interface Closed {
  code: number;
  reason: string;
}

/** A real `ws` client that records every frame, so tests await frames instead of sleeping. */
class TestClient {
  readonly frames: Frame[] = [];
  pings = 0;
  readonly closed: Promise<Closed>;
  private cursor = 0;
  private wake: (() => void) | undefined;
  private closedWith: Closed | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      this.frames.push(frameSchema.parse(JSON.parse(bytes.toString('utf8'))));
      this.wake?.();
    });
    ws.on('ping', () => {
      this.pings++;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        this.wake?.();
      });
    });
  }

  /** Connects; `token` goes into the Authorization header of the upgrade request. */
  static async open(
    url: string,
    options: { token?: string; authorization?: string; autoPong?: boolean } = {},
  ): Promise<TestClient> {
    const authorization =
      options.authorization ??
      (options.token === undefined ? undefined : `Bearer ${options.token}`);
    const ws = new WebSocket(url, {
      ...(authorization === undefined ? {} : { headers: { authorization } }),
      autoPong: options.autoPong ?? true,
    });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        resolve();
      });
      ws.once('error', reject);
    });
    return client;
  }

  /** Resolves when `ready()` holds, re-checked on every frame, ping and close. */
  private async until(ready: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.closedWith)
        throw new Error(`closed ${JSON.stringify(this.closedWith)} while waiting for ${what}`);
      if (Date.now() >= deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** The next frame not yet read. */
  async next(): Promise<Frame> {
    await this.until(() => this.cursor < this.frames.length, 'frame');
    return this.frames[this.cursor++]!;
  }

  /** The next frame, which must be of this type. */
  async expect(type: string): Promise<Frame> {
    const frame = await this.next();
    if (frame.type !== type)
      throw new Error(`expected a '${type}' frame, got ${JSON.stringify(frame)}`);
    return frame;
  }

  async untilPings(count: number): Promise<void> {
    await this.until(() => this.pings >= count, `${count} pings`);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async subscribe(channel: string): Promise<Frame> {
    this.send({ type: 'subscribe', channel });
    const frame = await this.expect('subscribed');
    expect(frame['channel']).toBe(channel);
    return frame;
  }
}

const eventsIn = (client: TestClient): Frame[] =>
  client.frames.filter((frame) => frame.type === 'event');

const gauge = async (runtime: Runtime): Promise<number> =>
  (await runtime.metrics.websocketConnections.get()).values[0]?.value ?? 0;

const append = (runtime: Runtime, streamId: string, type: string, data: JsonValue = {}) =>
  runtime.eventStore.appendToStream(streamId, [
    { type, data, metadata: { actor: 'ws-test', correlationId: 'corr-1' } },
  ]);

/** A stream id of a category no other test uses. */
const freshStream = (category: string): string => `${category}-${randomUUID()}`;

describe('live feed: /ws of the QCAT app', () => {
  let api: TestServer;
  let url: string;
  let runtime: Runtime;

  beforeAll(async () => {
    api = await startTestServer('ws');
    runtime = api.server.runtime;
    url = `${api.server.url.replace(/^http/, 'ws')}/ws`;
  });
  afterAll(async () => {
    await api.stop();
  });

  it('header auth: a subscriber gets an event appended through the store, in the documented shape', async () => {
    const client = await TestClient.open(url, { token: api.tokens.viewer });
    const welcome = await client.expect('authenticated');
    expect(welcome).toMatchObject({ role: 'viewer' });
    const streamId = freshStream('order');
    const subscribed = await client.subscribe(`stream:${streamId}`);
    expect(subscribed['after']).toMatch(/^\d+$/);

    const written = await append(runtime, streamId, 'OrderPlaced', { qty: 3, symbol: 'BTC-USD' });
    const frame = await client.expect('event');
    const [stored] = await runtime.eventStore.readStream(streamId);
    expect(frame).toEqual({
      type: 'event',
      channel: `stream:${streamId}`,
      event: {
        eventId: stored!.eventId,
        position: written.position.toString(),
        revision: '0',
        recordedAt: stored!.recordedAt.toISOString(),
        streamId,
        category: 'order',
        type: 'OrderPlaced',
        data: { qty: 3, symbol: 'BTC-USD' },
        metadata: { actor: 'ws-test', correlationId: 'corr-1' },
      },
    });
    expect(written.position).toBeGreaterThan(BigInt(String(subscribed['after'])));
    client.ws.close();
    await client.closed;
  });

  it('delivers on category channels and the risk/positions aliases, one frame per matching channel', async () => {
    const client = await TestClient.open(url, { token: api.tokens.trader });
    await client.expect('authenticated');
    const risk = freshStream('risk');
    const position = freshStream('position');
    await client.subscribe('risk');
    await client.subscribe('positions');
    await client.subscribe(`category:risk`);

    await append(runtime, risk, 'LimitBreached');
    await append(runtime, position, 'PositionOpened');
    const frames = [await client.next(), await client.next(), await client.next()];
    expect(
      frames.map((frame) => [
        frame['channel'],
        z.object({ streamId: z.string() }).parse(frame['event']).streamId,
      ]),
    ).toEqual([
      ['category:risk', risk],
      ['risk', risk],
      ['positions', position],
    ]);
    client.ws.close();
    await client.closed;
  });

  it('delivers optimization progress on the optimizations alias', async () => {
    const client = await TestClient.open(url, { token: api.tokens.analyst });
    await client.expect('authenticated');
    const optimizationId = randomUUID();
    const run = `optimization-${optimizationId}`;
    await client.subscribe('optimizations');
    await append(runtime, freshStream('risk'), 'LimitBreached');
    await append(runtime, run, 'OptimizationProgressed', {
      optimizationId,
      batch: 0,
      trials: [],
      trialsDone: 16,
      bestTrial: 3,
      bestScore: 1.25,
    });
    const frame = await client.expect('event');
    expect(frame['channel']).toBe('optimizations');
    expect(frame['event']).toMatchObject({
      streamId: run,
      type: 'OptimizationProgressed',
      data: { trialsDone: 16, bestScore: 1.25 },
    });
    expect(eventsIn(client)).toHaveLength(1);
    client.ws.close();
    await client.closed;
  });

  it('delivers allocation events on the allocations channel: a policy set over HTTP arrives as PortfolioPolicySet', async () => {
    const client = await TestClient.open(url, { token: api.tokens.viewer });
    await client.expect('authenticated');
    await client.subscribe('allocations');
    const portfolioId = `ws-${randomUUID()}`;
    const response = await api.request(
      'PUT',
      `/api/v1/portfolios/${portfolioId}/allocation/policy`,
      { token: api.tokens.risk_officer, body: { method: 'equal_weight' } },
    );
    expect(response.status, await response.text()).toBe(200);
    const frame = await client.expect('event');
    expect(frame['channel']).toBe('allocations');
    expect(frame['event']).toMatchObject({
      streamId: `portfolio-${portfolioId}`,
      category: 'portfolio',
      type: 'PortfolioPolicySet',
      data: { portfolioId, policy: { method: 'equal_weight' } },
    });
    // Other categories are not on it.
    await append(runtime, freshStream('risk'), 'LimitBreached');
    const position = freshStream('position');
    await client.subscribe(`stream:${position}`);
    await append(runtime, position, 'PositionOpened');
    expect((await client.expect('event'))['channel']).toBe(`stream:${position}`);
    expect(eventsIn(client)).toHaveLength(2);
    client.ws.close();
    await client.closed;
  });

  it('stops delivery on unsubscribe', async () => {
    const client = await TestClient.open(url, { token: api.tokens.analyst });
    await client.expect('authenticated');
    const dropped = freshStream('order');
    const kept = freshStream('order');
    await client.subscribe(`stream:${dropped}`);
    await client.subscribe(`stream:${kept}`);
    await append(runtime, dropped, 'OrderPlaced');
    expect((await client.expect('event'))['channel']).toBe(`stream:${dropped}`);

    client.send({ type: 'unsubscribe', channel: `stream:${dropped}` });
    expect(await client.expect('unsubscribed')).toEqual({
      type: 'unsubscribed',
      channel: `stream:${dropped}`,
    });
    // Delivery is in log order: had the dropped stream's second event been sent, it would come
    // before the kept stream's.
    await append(runtime, dropped, 'OrderCancelled');
    await append(runtime, kept, 'OrderPlaced');
    expect((await client.expect('event'))['channel']).toBe(`stream:${kept}`);
    expect(eventsIn(client).map((frame) => frame['channel'])).toEqual([
      `stream:${dropped}`,
      `stream:${kept}`,
    ]);
    client.ws.close();
    await client.closed;
  });

  it('first-message auth: a client without headers authenticates with {"type":"auth"}', async () => {
    const client = await TestClient.open(url);
    client.send({ type: 'auth', token: api.tokens.risk_officer });
    expect(await client.expect('authenticated')).toMatchObject({ role: 'risk_officer' });
    const streamId = freshStream('risk');
    await client.subscribe(`stream:${streamId}`);
    const written = await append(runtime, streamId, 'KillSwitchArmed');
    const frame = await client.expect('event');
    expect(frame['event']).toMatchObject({ streamId, position: written.position.toString() });
    client.ws.close();
    await client.closed;
  });

  it('lets in every role that has feed:subscribe and closes any other with 4403', async () => {
    for (const role of ROLES) {
      const client = await TestClient.open(url, { token: api.tokens[role] });
      if (allows(role, 'feed:subscribe')) {
        expect(await client.expect('authenticated')).toMatchObject({ role });
        client.ws.close();
        await client.closed;
      } else {
        expect(await client.closed).toMatchObject({ code: CLOSE.FORBIDDEN });
        expect(client.frames).toEqual([]);
      }
    }
  });

  it('refuses missing, malformed, unknown and revoked keys with 4401 and sends them nothing', async () => {
    const attempts: { authorization?: string; message?: unknown }[] = [
      { authorization: 'Bearer qcat_not_a_key' },
      { authorization: `Bearer ${api.tokens.revoked}` },
      { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
      { message: { type: 'auth', token: 'qcat_not_a_key' } },
      { message: { type: 'auth', token: api.tokens.revoked } },
      { message: 'not json' },
      { message: { type: 'subscribe', channel: 'risk' } },
    ];
    for (const attempt of attempts) {
      const client = await TestClient.open(
        url,
        attempt.authorization === undefined ? {} : { authorization: attempt.authorization },
      );
      if (attempt.message !== undefined) client.send(attempt.message);
      const closed = await client.closed;
      expect(closed.code, JSON.stringify(attempt)).toBe(CLOSE.AUTHENTICATION_FAILED);
      expect(client.frames).toEqual([]);
    }
  });

  it('unauthenticated sockets get nothing, and silence is closed with 4408 after 5 s', async () => {
    const streamId = freshStream('risk');
    const silent = await TestClient.open(url);
    const opened = Date.now();
    const pushy = await TestClient.open(url);
    pushy.send({ type: 'subscribe', channel: `stream:${streamId}` });
    const watcher = await TestClient.open(url, { token: api.tokens.viewer });
    await watcher.expect('authenticated');
    await watcher.subscribe(`stream:${streamId}`);

    await append(runtime, streamId, 'LimitBreached');
    await watcher.expect('event');
    expect((await pushy.closed).code).toBe(CLOSE.AUTHENTICATION_FAILED);
    expect(pushy.frames).toEqual([]);
    expect(silent.frames).toEqual([]);

    expect(await silent.closed).toEqual({
      code: CLOSE.AUTHENTICATION_TIMEOUT,
      reason: 'no auth message in time',
    });
    expect(Date.now() - opened).toBeGreaterThanOrEqual(4900);
    expect(silent.frames).toEqual([]);
    watcher.ws.close();
    await watcher.closed;
  });

  it('answers invalid messages with error frames and keeps the socket usable', async () => {
    const client = await TestClient.open(url, { token: api.tokens.auditor });
    await client.expect('authenticated');
    const cases: [unknown, string][] = [
      ['{not json', 'INVALID_JSON'],
      [{ type: 'dance' }, 'INVALID_MESSAGE'],
      [{ type: 'subscribe' }, 'INVALID_MESSAGE'],
      [{ type: 'subscribe', channel: 'risk', extra: 1 }, 'INVALID_MESSAGE'],
      [{ type: 'subscribe', channel: 42 }, 'INVALID_MESSAGE'],
      [[1, 2, 3], 'INVALID_MESSAGE'],
      [{ type: 'subscribe', channel: 'everything' }, 'INVALID_CHANNEL'],
      [{ type: 'subscribe', channel: 'stream:no category' }, 'INVALID_CHANNEL'],
      [{ type: 'subscribe', channel: 'category:' }, 'INVALID_CHANNEL'],
      [{ type: 'subscribe', channel: 'category:apikey' }, 'CHANNEL_FORBIDDEN'],
      [{ type: 'subscribe', channel: 'stream:apikey-abc' }, 'CHANNEL_FORBIDDEN'],
      [{ type: 'unsubscribe', channel: 'risk' }, 'NOT_SUBSCRIBED'],
      [{ type: 'auth', token: api.tokens.admin }, 'ALREADY_AUTHENTICATED'],
    ];
    for (const [message, code] of cases) {
      client.send(message);
      const frame = await client.expect('error');
      expect(frame, JSON.stringify(message)).toMatchObject({ type: 'error', code });
      expect(frame['message']).toEqual(expect.any(String));
    }
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await client.expect('error')).toMatchObject({ code: 'INVALID_MESSAGE' });

    // Still open and working.
    const streamId = freshStream('order');
    await client.subscribe(`stream:${streamId}`);
    await append(runtime, streamId, 'OrderPlaced');
    expect((await client.expect('event'))['channel']).toBe(`stream:${streamId}`);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.ws.close();
    await client.closed;
  });

  it('counts open sockets in websocket_connections', async () => {
    const before = await gauge(runtime);
    const a = await TestClient.open(url, { token: api.tokens.viewer });
    const b = await TestClient.open(url);
    await a.expect('authenticated');
    expect(await gauge(runtime)).toBe(before + 2);
    a.ws.close();
    b.ws.close();
    await Promise.all([a.closed, b.closed]);
    // The server's side of the close may land just after the client's.
    await vi.waitFor(async () => {
      expect(await gauge(runtime)).toBe(before);
    });
  });

  it('does nothing over plain HTTP: GET /ws without an upgrade is 404', async () => {
    const response = await api.request('GET', '/ws', { token: null });
    expect(response.status).toBe(404);
    expect(api.server.fastify.qcatRoutes).toContainEqual({
      method: 'GET',
      url: '/ws',
      permission: 'public',
    });
  });
});

describe('live feed: the plugin with tuned options, on the same log', () => {
  let api: TestServer;
  let runtime: Runtime;
  const started: FastifyInstance[] = [];

  /** The plugin alone on its own port: a second QCAT process, as far as the feed can tell. */
  const startFeed = async (
    options: Partial<LiveFeedOptions> = {},
  ): Promise<{ url: string; fastify: FastifyInstance }> => {
    const fastify = Fastify();
    started.push(fastify);
    await fastify.register(liveFeed, {
      eventStore: runtime.eventStore,
      metrics: runtime.metrics,
      authenticator: new Authenticator(runtime.pool),
      ...options,
    });
    const address = await fastify.listen({ port: 0, host: '127.0.0.1' });
    return { url: `${address.replace(/^http/, 'ws')}/ws`, fastify };
  };

  beforeAll(async () => {
    api = await startTestServer('ws_tuned');
    runtime = api.server.runtime;
  });
  afterAll(async () => {
    for (const fastify of started) await fastify.close();
    await api.stop();
  });

  it('shares one store subscription among all sockets; another process sees appends made here', async () => {
    const store = await PostgresEventStore.connect({
      connectionString: runtime.databaseUrl,
      migrate: false,
    });
    const subscribe = vi.spyOn(store, 'subscribeToAll');
    try {
      const feed = await startFeed({ eventStore: store });
      expect(subscribe).toHaveBeenCalledTimes(1);
      const streamId = freshStream('order');
      const clients = await Promise.all(
        ROLES.slice(0, 4).map((role) => TestClient.open(feed.url, { token: api.tokens[role] })),
      );
      for (const client of clients) {
        await client.expect('authenticated');
        await client.subscribe(`stream:${streamId}`);
      }
      // Appended through the app's store (its own pool): reaches this "process" through the log.
      const written = await append(runtime, streamId, 'OrderPlaced');
      for (const client of clients) {
        expect((await client.expect('event'))['event']).toMatchObject({
          position: written.position.toString(),
        });
      }
      expect(subscribe).toHaveBeenCalledTimes(1);
      await feed.fastify.close();
    } finally {
      await store.close();
    }
  });

  it('closes a slow consumer with 4008 once its backlog passes the limit', async () => {
    const feed = await startFeed({ maxBufferedBytes: 256 * 1024, closeGraceMs: 60_000 });
    const client = await TestClient.open(feed.url, { token: api.tokens.viewer });
    await client.expect('authenticated');
    const streamId = freshStream('bulk');
    await client.subscribe(`stream:${streamId}`);
    const [server] = feed.fastify.websocketServer.clients;
    expect(server?.readyState).toBe(WebSocket.OPEN);

    client.ws.pause(); // reads nothing more: the kernel buffers fill, then the server's
    let appended = 0;
    while (server?.readyState === WebSocket.OPEN && appended < 500) {
      await append(runtime, streamId, 'Bulk', { n: appended, blob: 'x'.repeat(200_000) });
      appended++;
    }
    expect(server?.readyState).toBe(WebSocket.CLOSING);

    client.ws.resume();
    expect(await client.closed).toEqual({ code: CLOSE.SLOW_CONSUMER, reason: 'slow consumer' });
    const received = eventsIn(client).length;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(appended);
  });

  it('terminates a client that stopped answering pings and keeps one that answers', async () => {
    const feed = await startFeed({ heartbeatMs: 100 });
    const dead = await TestClient.open(feed.url, { token: api.tokens.viewer, autoPong: false });
    const alive = await TestClient.open(feed.url, { token: api.tokens.viewer });
    await alive.expect('authenticated');

    const closed = await dead.closed;
    expect(closed.code).toBe(1006); // terminated: no close frame
    expect(dead.pings).toBeGreaterThanOrEqual(1);
    const pingsSoFar = alive.pings;
    await alive.untilPings(pingsSoFar + 3);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    alive.ws.close();
    await alive.closed;
  });

  it('closes a socket whose key is revoked (re-checked on the heartbeat)', async () => {
    const feed = await startFeed({
      heartbeatMs: 100,
      authenticator: new Authenticator(runtime.pool, 0),
    });
    const keys = new ApiKeyService(runtime.commands);
    const issued = await keys.issue('ws-doomed', 'trader', 'ws-test');
    expect(await runtime.projections.waitFor('api_keys', issued.result.position, 10_000)).toBe(
      true,
    );
    const client = await TestClient.open(feed.url, { token: issued.token });
    await client.expect('authenticated');
    await client.untilPings(2); // re-checked at least once while still valid
    expect(client.ws.readyState).toBe(WebSocket.OPEN);

    const revoked = await keys.revoke(issued.keyId, 'test', 'ws-test');
    expect(await runtime.projections.waitFor('api_keys', revoked.position, 10_000)).toBe(true);
    expect(await client.closed).toEqual({
      code: CLOSE.AUTHENTICATION_FAILED,
      reason: 'the API key was revoked or rotated',
    });
  });

  it('closes with 4429 after too many failed authentications from one address', async () => {
    const feed = await startFeed({ failuresPerMinute: 2 });
    for (let i = 0; i < 2; i++) {
      const client = await TestClient.open(feed.url, { token: 'qcat_wrong' });
      expect((await client.closed).code).toBe(CLOSE.AUTHENTICATION_FAILED);
    }
    // Even a good key is refused now, without being checked.
    const client = await TestClient.open(feed.url, { token: api.tokens.admin });
    expect((await client.closed).code).toBe(CLOSE.TOO_MANY_FAILED_AUTHENTICATIONS);
    expect(client.frames).toEqual([]);
  });

  it('limits subscriptions per socket and closes on an oversized message (1009)', async () => {
    const feed = await startFeed({ maxSubscriptions: 2, maxMessageBytes: 1024 });
    const client = await TestClient.open(feed.url, { token: api.tokens.viewer });
    await client.expect('authenticated');
    await client.subscribe('risk');
    await client.subscribe('positions');
    client.send({ type: 'subscribe', channel: 'category:order' });
    expect(await client.expect('error')).toMatchObject({ code: 'TOO_MANY_SUBSCRIPTIONS' });
    await client.subscribe('risk'); // again: already counted

    client.send({ type: 'subscribe', channel: `category:${'a'.repeat(2000)}` });
    expect((await client.closed).code).toBe(1009);
  });

  it('pipelines: auth and subscriptions sent at once are handled in order', async () => {
    const feed = await startFeed();
    const client = await TestClient.open(feed.url);
    const streams = Array.from({ length: 20 }, () => freshStream('order'));
    client.send({ type: 'auth', token: api.tokens.viewer });
    for (const streamId of streams)
      client.send({ type: 'subscribe', channel: `stream:${streamId}` });
    await client.expect('authenticated');
    for (const streamId of streams) {
      expect((await client.expect('subscribed'))['channel']).toBe(`stream:${streamId}`);
    }
  });

  it('on close, sends 1001 to every socket and cuts the ones that do not answer after the grace', async () => {
    const feed = await startFeed({ closeGraceMs: 300 });
    const before = await gauge(runtime);
    const polite = await TestClient.open(feed.url, { token: api.tokens.viewer });
    const deaf = await TestClient.open(feed.url, { token: api.tokens.viewer });
    const anonymous = await TestClient.open(feed.url);
    await polite.expect('authenticated');
    await deaf.expect('authenticated');
    deaf.ws.pause();

    const closing = Date.now();
    await feed.fastify.close();
    expect(Date.now() - closing).toBeLessThan(5000); // not ws's own 30 s close timeout
    expect(await polite.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await anonymous.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    deaf.ws.resume();
    expect((await deaf.closed).code).toBe(1001);
    expect(await gauge(runtime)).toBe(before);
  });
});
