import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

// Values no route accepts where a specific type is expected, and strings meant to break things.
const nasty: unknown[] = [
  null,
  true,
  -1,
  1e308,
  '',
  ' ',
  "' OR 1=1 --",
  '"; DROP TABLE qcat_events; --',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00',
  '\u0000',
  'ＡＢＣ𝔘𝔫𝔦𝔠𝔬𝔡𝔢🚀',
  '\u202e\u0301',
  // Lone UTF-16 surrogates: not Unicode, and refused by jsonb (22P02).
  'x\ud800',
  '\udc00y',
  '0000-01-01T00:00:00Z',
  '+010000-01-01T00:00:00.000Z',
  1e-320,
  5e-324,
  'x'.repeat(100_000),
  [],
  [1, 2, 3],
  {},
  { $gt: '' },
  { __proto__: { admin: true } },
];

const brokenBodies = [
  '{',
  '{"name":',
  'null',
  '[]',
  '"string"',
  '{"name":"a","role":"admin",}',
  '\u0000',
  'x'.repeat(2_000_000),
];
const queryNoise = [
  'limit=-5',
  'limit=abc',
  'limit=99999',
  'from=yesterday',
  'to=2026-13-45',
  'after=-1',
  'after=abc',
  'minPosition=1e5',
  'unknown=1',
  'actor=',
  'actor=%27%20OR%201%3D1',
  'limit=1&limit=2',
  'actor=a%00b',
  'streamId=x%00',
  // Above PostgreSQL's bigint, yet within the documented ^\d{1,19}$.
  'after=9999999999999999999',
  'after=9223372036854775808',
  'minPosition=9999999999999999999',
  'from=0000-01-01T00:00:00Z',
  'to=%2B010000-01-01T00:00:00.000Z',
  'asOf=0000-01-01T00:00:00Z',
  'actor=x%ED%A0%80',
];

describe('robustness: malformed requests across every route', () => {
  let api: TestServer;
  beforeAll(async () => {
    api = await startTestServer('robust');
  });
  afterAll(async () => {
    await api.stop();
  });

  it('answers at least 1,000 malformed requests without a 5xx, always as problem+json, and writes nothing', async () => {
    const head = await api.server.runtime.eventStore.headPosition();
    const routes = api.server.fastify.qcatRoutes.filter(
      (r) => r.permission !== 'public' && r.method !== 'OPTIONS',
    );
    const requests: {
      method: string;
      path: string;
      body?: unknown;
      headers?: Record<string, string>;
    }[] = [];
    for (const route of routes) {
      // Three values for the parameters the path has (one path when it has none of these).
      const paths = new Set([
        route.url.replace(':keyId', 'zzzzzzzzzzzzzzzz').replace(':name', 'no_such_projection'),
        route.url.replace(':keyId', "' OR 1=1 --").replace(':name', '<script>'),
        route.url.replace(':keyId', 'A'.repeat(5000)).replace(':name', '..%2F..%2Fetc'),
      ]);
      for (const path of paths) {
        for (const noise of queryNoise)
          requests.push({ method: route.method, path: `${path}?${noise}` });
        if (route.method === 'GET') continue;
        // Every body below is invalid for every command route (wrong role, wrong types, extra fields).
        for (const value of nasty) {
          requests.push({ method: route.method, path, body: { name: value, role: value } });
          requests.push({
            method: route.method,
            path,
            body: { name: 'ok', role: 'emperor', extra: value },
          });
          requests.push({ method: route.method, path, body: value === null ? 'null' : value });
        }
        // Nested deeper than any walk by recursion could go.
        requests.push({
          method: route.method,
          path,
          body: `{"name":"x","role":"viewer","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
          headers: { 'content-type': 'application/json' },
        });
        // Valid but for one NUL character (PostgreSQL cannot store U+0000).
        requests.push({ method: route.method, path, body: { name: 'a\u0000b', role: 'viewer' } });
        requests.push({ method: route.method, path, body: { ['a\u0000b']: 1 } });
        for (const raw of brokenBodies) {
          requests.push({
            method: route.method,
            path,
            body: raw,
            headers: { 'content-type': 'application/json' },
          });
        }
        for (const type of [
          'text/plain',
          'application/xml',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
        ]) {
          requests.push({
            method: route.method,
            path,
            body: 'name=a&role=admin',
            headers: { 'content-type': type },
          });
        }
      }
    }
    for (const noise of queryNoise)
      requests.push({ method: 'GET', path: `/api/v1/audit/events?${noise}&${noise}` });
    expect(requests.length).toBeGreaterThanOrEqual(1000);
    console.log(`${requests.length} malformed requests over ${routes.length} routes`);

    const failures: string[] = [];
    // In process (inject): the same routing, hooks and handlers as over a socket, several times
    // faster; what only Node's HTTP parser sees is tested over raw sockets below.
    for (const { method, path, body, headers } of requests) {
      const url = new URL(path, 'http://qcat'); // encoded as a client would send it
      const response = await api.server.fastify.inject({
        method: method as 'GET',
        url: `${url.pathname}${url.search}`,
        headers: {
          authorization: `Bearer ${api.tokens.admin}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined
          ? {}
          : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = response.body;
      const status = response.statusCode;
      const type = String(response.headers['content-type'] ?? '');
      const label = `${method} ${path.slice(0, 80)} ${body === undefined ? '' : JSON.stringify(body).slice(0, 60)}`;
      if (status >= 500) failures.push(`${label} → ${status} ${text.slice(0, 200)}`);
      else if (status >= 300 && !type.startsWith('application/problem+json'))
        failures.push(`${label} → ${status} as ${type}`);
      else if (status >= 400 && /\bat .+\.(ts|js):\d+/.test(text))
        failures.push(`${label} → a stack trace`);
    }
    expect(failures).toEqual([]);
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  }, 300_000);

  it('names the field of each input the issue found accepted or failing (400, problem+json), and writes nothing', async () => {
    const head = await api.server.runtime.eventStore.headPosition();
    const cases: { method: string; path: string; body?: unknown; field: string }[] = [
      {
        method: 'POST',
        path: '/api/v1/backtests',
        body: {
          kind: 'sma_crossover',
          symbol: 'BTCUSDT',
          timeframe: '1h',
          from: '0000-01-01T00:00:00Z',
          to: '0000-01-02T00:00:00Z',
        },
        field: 'body.from',
      },
      {
        method: 'POST',
        path: '/api/v1/strategies',
        body: {
          name: 'x\ud800',
          kind: 'sma_crossover',
          symbols: ['BTCUSDT'],
          timeframe: '1h',
          capitalRequest: 1000,
        },
        field: 'body.name',
      },
      {
        method: 'PATCH',
        path: '/api/v1/strategies/s-1',
        body: { name: 'x\ud800' },
        field: 'body.name',
      },
      {
        method: 'POST',
        path: '/api/v1/keys',
        body: { name: 'x\udc00', role: 'viewer' },
        field: 'body.name',
      },
      {
        method: 'PUT',
        path: '/api/v1/risk/exits/paper-1h/s-1/BTCUSDT',
        body: { takeProfit: 1e308 },
        field: 'body.takeProfit',
      },
      {
        method: 'POST',
        path: '/api/v1/orders',
        body: {
          strategyId: 's-1',
          symbol: 'BTCUSDT',
          side: 'buy',
          type: 'market',
          quantity: 1e-320,
        },
        field: 'body.quantity',
      },
      {
        method: 'PUT',
        path: '/api/v1/risk/limits/portfolio/paper-1h',
        body: 'null',
        field: 'body',
      },
      {
        method: 'GET',
        path: '/api/v1/strategies?after=9999999999999999999',
        field: 'querystring.after',
      },
      {
        method: 'GET',
        path: '/api/v1/audit/events?from=0000-01-01T00:00:00Z',
        field: 'querystring.from',
      },
    ];
    for (const { method, path, body, field } of cases) {
      const response = await api.request(method, path, {
        ...(body === undefined ? {} : { body }),
        ...(typeof body === 'string' ? { headers: { 'content-type': 'application/json' } } : {}),
      });
      const problem = (await response.json()) as { code: string; errors?: { path: string }[] };
      expect(response.status, `${method} ${path}`).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(problem.errors?.map((e) => e.path) ?? [], `${method} ${path}`).toContain(field);
    }
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('answers a minPosition far ahead with 202 PROJECTION_BEHIND as problem+json on every route that takes it', async () => {
    const ahead = ((await api.server.runtime.eventStore.headPosition()) + 100_000n).toString();
    const spec = (await (await api.request('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    const routes = Object.entries(spec.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) =>
          (operation.parameters ?? []).some((p) => p.in === 'query' && p.name === 'minPosition'),
        )
        .map(([method]) => ({
          method: method.toUpperCase(),
          path: path.replace(/\{\w+\}/g, 'zz'),
        })),
    );
    expect(routes.length).toBeGreaterThanOrEqual(10);
    expect(routes.map((r) => r.method)).toContain('DELETE');
    const answers = await Promise.all(
      routes.map(async ({ method, path }) => {
        const response = await api.request(method, `${path}?minPosition=${ahead}`);
        const body = (await response.json()) as { code?: string };
        return `${method} ${path} → ${response.status.toString()} ${body.code ?? ''} ${response.headers.get('content-type') ?? ''}`;
      }),
    );
    // A path parameter our placeholder does not fit may be refused first (400): a problem too.
    for (const answer of answers)
      expect(answer).toMatch(/→ (202 PROJECTION_BEHIND|4\d\d [A-Z_]+) application\/problem\+json/);
    const behind = answers.filter((answer) => answer.includes('→ 202 PROJECTION_BEHIND'));
    expect(behind.length).toBeGreaterThan(answers.length / 2);
    expect(behind.some((answer) => answer.startsWith('DELETE /api/v1/orders/'))).toBe(true);
  }, 60_000);

  it("answers what Node's HTTP parser refuses as problem+json, on every route", async () => {
    const url = new URL(api.server.url);
    /** One raw request on its own connection; the whole answer as text. */
    const raw = (text: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        let answer = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (answer += chunk));
        socket.on('end', () => {
          resolve(answer);
        });
        socket.on('error', reject);
        socket.write(text, 'latin1');
      });
    const auth = `Authorization: Bearer ${api.tokens.admin}\r\nHost: x\r\n`;
    const paths = [
      ...new Set(
        api.server.fastify.qcatRoutes.map((r) => r.url.replace(/:(\w+)/g, 'zz').replace(/\*$/, '')),
      ),
    ];
    const failures: string[] = [];
    for (const path of paths) {
      const requests = {
        431: `GET ${path}?q=${'x'.repeat(20_000)} HTTP/1.1\r\n${auth}\r\n`,
        400: [
          `G@T ${path} HTTP/1.1\r\n${auth}\r\n`,
          `GET ${path} HTTP/1.1\r\n${auth}X-Bad: a\u0001b\r\n\r\n`,
          `POST ${path} HTTP/1.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        ],
      };
      for (const [status, texts] of Object.entries(requests))
        for (const text of [texts].flat()) {
          const answer = await raw(text);
          const [head = '', body = ''] = answer.split('\r\n\r\n');
          const ok =
            head.startsWith(`HTTP/1.1 ${status} `) &&
            /content-type: application\/problem\+json/i.test(head) &&
            /"code":"[A-Z_]+"/.test(body);
          if (!ok) failures.push(`${text.slice(0, 40)}… → ${answer.slice(0, 200)}`);
        }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
