import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { startServer, type RunningServer } from '../../ops/server.js';
import { loadConfig } from '../config.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { describeNeeding } from '../../test/support/tools.js';
import { startNginxEdge, type NginxEdge } from '../../test/support/nginx-edge.js';

/**
 * The nginx configuration of ops/nginx, served by Debian's nginx (the test setup installs it) with
 * a throw-away self-signed certificate, in front of two real QCAT replicas over one database.
 * Only the addresses change: listen ports, the replicas' addresses, temp folders. Without nginx or
 * openssl they are skipped saying so (a failure in CI).
 */

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** How often each header (lower case) was sent. */
  counts: Map<string, number>;
  body: string;
}

function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {},
): Promise<Answer> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        hostname: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        agent: false,
        ...(target.protocol === 'https:' ? { ca: options.ca, servername: 'localhost' } : {}),
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => {
          const counts = new Map<string, number>();
          for (let i = 0; i < response.rawHeaders.length; i += 2) {
            const name = response.rawHeaders[i]!.toLowerCase();
            counts.set(name, (counts.get(name) ?? 0) + 1);
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, counts, body });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

const SECURITY_HEADERS: Record<string, string> = {
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function expectSecurityHeaders(answer: Answer): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    expect(answer.headers[name], name).toBe(value);
    expect(answer.counts.get(name), `${name} sent once`).toBe(1);
  }
  const csp = answer.headers['content-security-policy'];
  expect(answer.counts.get('content-security-policy')).toBe(1);
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(answer.headers['permissions-policy']).toContain('camera=()');
  // No version for scanners to match against.
  expect(answer.headers['server']).toBe('nginx');
}

/** `http_requests_total` of one route, read from a replica directly (not through nginx). */
async function requestsServed(server: RunningServer, route: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('http_requests_total{') && line.includes(`route="${route}"`))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describeNeeding(['nginx', 'openssl'], 'nginx in front of two QCAT replicas', () => {
  let api: TestServer | undefined;
  let second: RunningServer | undefined;
  let edge: NginxEdge | undefined;
  const prefix = mkdtempSync(join(tmpdir(), 'qcat-nginx-'));
  let accessLog = '';
  let certificate = '';
  let https = '';
  let http = '';

  const replicas = (): { api: TestServer; second: RunningServer } => {
    if (!api || !second) throw new Error('beforeAll did not finish');
    return { api, second };
  };

  beforeAll(async () => {
    api = await startTestServer('nginx');
    second = await startServer(
      loadConfig({
        DATABASE_URL: api.database.url,
        PORT: '0',
        LOG_LEVEL: 'silent',
        RATE_LIMIT_PER_MINUTE: '100000',
        DATABASE_POOL_MAX: '5', // as test servers (ADR 020)
      }),
      { announce: () => undefined },
    );
    const address = (server: RunningServer): string => `127.0.0.1:${new URL(server.url).port}`;
    // The committed files; only addresses, temp folders and the certificate change.
    edge = await startNginxEdge(prefix, [address(api.server), address(second)]);
    ({ http, https, certificate, accessLog } = edge);
  });

  afterAll(async () => {
    await edge?.stop();
    await second?.stop();
    await api?.stop();
    rmSync(prefix, { recursive: true, force: true });
  });

  it('redirects HTTP to the same URL over HTTPS', async () => {
    const answer = await send(`${http}/api/v1/session?x=1`, {
      headers: { host: 'qcat.example.com' },
    });
    expect(answer.status).toBe(301);
    expect(answer.headers['location']).toBe('https://qcat.example.com/api/v1/session?x=1');
  });

  it('proxies an API call over TLS, with the security headers set once by nginx', async () => {
    const { api } = replicas();
    const answer = await send(`${https}/api/v1/session`, {
      ca: certificate,
      headers: { authorization: `Bearer ${api.tokens.trader}`, 'x-request-id': 'nginx-test-1' },
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ role: 'trader', name: 'test-trader' });
    expectSecurityHeaders(answer);
    // The request id crosses the proxy both ways.
    expect(answer.headers['x-request-id']).toBe('nginx-test-1');
  });

  it('gives every request an id QCAT logs, when the client sends none', async () => {
    const answer = await send(`${https}/health/live`, { ca: certificate });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    // nginx writes the line when the response is done: wait for it, up to a limit.
    const line = `"request_id":"${String(answer.headers['x-request-id'])}"`;
    const deadline = Date.now() + 5000;
    while (!readFileSync(accessLog, 'utf8').includes(line) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = readFileSync(accessLog, 'utf8')
      .split('\n')
      .find((entry) => entry.includes(line));
    expect(logged).toBeDefined();
    expect(JSON.parse(logged!)).toMatchObject({ method: 'GET', uri: '/health/live', status: 200 });
  });

  it('sets the security headers on errors too, and hides /metrics from the internet', async () => {
    const { api } = replicas();
    const denied = await send(`${https}/api/v1/session`, { ca: certificate });
    expect(denied.status).toBe(401);
    expect(denied.headers['content-type']).toContain('application/problem+json');
    expectSecurityHeaders(denied);

    const metrics = await send(`${https}/metrics`, { ca: certificate });
    expect(metrics.status).toBe(404);
    expectSecurityHeaders(metrics);
    expect((await fetch(`${api.server.url}/metrics`)).status).toBe(200);
  });

  it('lets QCAT answer an oversized body itself, as problem+json', async () => {
    const { api } = replicas();
    const answer = await send(`${https}/api/v1/keys`, {
      method: 'POST',
      ca: certificate,
      headers: { authorization: `Bearer ${api.tokens.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(1_500_000), role: 'viewer' }),
    });
    expect(answer.status).toBe(413);
    expect(answer.headers['content-type']).toContain('application/problem+json');
  });

  it('spreads requests over both replicas', async () => {
    const { api, second } = replicas();
    const before = [
      await requestsServed(api.server, '/health/live'),
      await requestsServed(second, '/health/live'),
    ];
    for (let i = 0; i < 10; i++)
      expect((await send(`${https}/health/live`, { ca: certificate })).status).toBe(200);
    const after = [
      await requestsServed(api.server, '/health/live'),
      await requestsServed(second, '/health/live'),
    ];
    const served = after.map((count, i) => count - before[i]!);
    expect(served[0]! + served[1]!).toBe(10);
    expect(served[0]).toBeGreaterThan(0);
    expect(served[1]).toBeGreaterThan(0);
  });

  it('upgrades /ws to a WebSocket and carries the live feed both ways', async () => {
    const { api } = replicas();
    const frame = z.looseObject({ type: z.string() });
    const frames: z.infer<typeof frame>[] = [];
    let wake: (() => void) | undefined;
    const ws = new WebSocket(`wss://localhost:${new URL(https).port}/ws`, {
      ca: certificate,
      headers: { authorization: `Bearer ${api.tokens.trader}` },
    });
    const upgraded = new Promise<number>((resolve, reject) => {
      ws.once('upgrade', (response) => {
        resolve(response.statusCode ?? 0);
      });
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer) => {
      frames.push(frame.parse(JSON.parse(data.toString('utf8'))));
      wake?.();
    });
    const next = async (type: string): Promise<z.infer<typeof frame>> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const index = frames.findIndex((f) => f.type === type);
        if (index >= 0) return frames.splice(index, 1)[0]!;
        if (Date.now() > deadline)
          throw new Error(`no '${type}' frame; got ${JSON.stringify(frames)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 250);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    try {
      expect(await upgraded).toBe(101);
      expect(await next('authenticated')).toMatchObject({ role: 'trader' });
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'category:nginxtest' }));
      await next('subscribed');
      const streamId = `nginxtest-${randomUUID()}`;
      await api.server.runtime.eventStore.appendToStream(streamId, [
        { type: 'NginxTested', data: { through: 'nginx' }, metadata: { actor: 'nginx-test' } },
      ]);
      const event = await next('event');
      expect(event).toMatchObject({
        channel: 'category:nginxtest',
        event: { streamId, type: 'NginxTested', data: { through: 'nginx' } },
      });
    } finally {
      ws.close();
    }
  });
});
