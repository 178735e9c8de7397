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
      const paths = [
        route.url.replace(':keyId', 'zzzzzzzzzzzzzzzz').replace(':name', 'no_such_projection'),
        route.url.replace(':keyId', "' OR 1=1 --").replace(':name', '<script>'),
        route.url.replace(':keyId', 'A'.repeat(5000)).replace(':name', '..%2F..%2Fetc'),
      ];
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
    for (const { method, path, body, headers } of requests) {
      const response = await api.request(method, path, {
        ...(body === undefined ? {} : { body }),
        ...(headers ? { headers } : {}),
      });
      const text = await response.text();
      const type = response.headers.get('content-type') ?? '';
      const label = `${method} ${path.slice(0, 80)} ${body === undefined ? '' : JSON.stringify(body).slice(0, 60)}`;
      if (response.status >= 500)
        failures.push(`${label} → ${response.status} ${text.slice(0, 200)}`);
      else if (response.status >= 300 && !type.startsWith('application/problem+json'))
        failures.push(`${label} → ${response.status} as ${type}`);
      else if (response.status >= 400 && /\bat .+\.(ts|js):\d+/.test(text))
        failures.push(`${label} → a stack trace`);
    }
    expect(failures).toEqual([]);
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  }, 300_000);
});
