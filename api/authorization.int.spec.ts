import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, allows } from '../core/access/roles.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { auth } from './auth/plugin.js';
import { Authenticator } from './auth/authenticator.js';
import pg from 'pg';

/** A concrete path for a route pattern: parameters get a harmless sample value. */
const concrete = (url: string): string =>
  url
    .replace(':keyId', 'zzzzzzzzzzzzzzzz')
    .replace(':name', 'no_such_projection')
    .replace('*', 'index.html');

describe('authorization: every route × every role', () => {
  let api: TestServer;
  beforeAll(async () => {
    // The matrix sends a revoked and a garbage key to every route: far more failed
    // authentications than the limiter allows (it has its own test below).
    api = await startTestServer('authz', { AUTH_FAILURES_PER_MINUTE: '100000' });
  });
  afterAll(async () => {
    await api.stop();
  });

  it('answers each route as the permission matrix says, for each role, no key and a revoked key', async () => {
    const routes = api.server.fastify.qcatRoutes.filter((route) => route.method !== 'OPTIONS');
    expect(routes.length).toBeGreaterThan(10);
    const head = await api.server.runtime.eventStore.headPosition();
    const failures: string[] = [];
    let checked = 0;
    for (const route of routes) {
      const path = concrete(route.url);
      const callers: [string, string | null][] = [
        ...ROLES.map((role): [string, string] => [role, api.tokens[role]]),
        ['no key', null],
        ['revoked key', api.tokens.revoked],
        ['garbage key', 'qcat_not_a_key'],
      ];
      for (const [who, token] of callers) {
        const response = await api.request(route.method, path, {
          token,
          ...(route.method === 'POST' ? { body: {} } : {}),
        });
        await response.arrayBuffer();
        checked++;
        let expected: 'pass' | 401 | 403;
        if (route.permission === 'public') expected = 'pass';
        else if (token === null || who === 'revoked key' || who === 'garbage key') expected = 401;
        else
          expected = ROLES.some((role) => role === who && allows(role, route.permission as never))
            ? 'pass'
            : 403;
        const ok =
          expected === 'pass'
            ? ![401, 403].includes(response.status) && response.status < 500
            : response.status === expected;
        if (!ok)
          failures.push(
            `${route.method} ${route.url} as ${who}: got ${response.status}, expected ${expected}`,
          );
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe(routes.length * (ROLES.length + 3));
    // Nothing above was a valid command: the log is unchanged.
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('refuses to start a route that declares no permission', async () => {
    const fastify = Fastify();
    await fastify.register(auth, {
      authenticator: new Authenticator(new pg.Pool()), // never asked: no request is made
      failuresPerMinute: 5,
      publicPrefixes: [],
    });
    expect(() => fastify.get('/undeclared', () => 'oops')).toThrow(
      /GET \/undeclared declares no permission/,
    );
    await fastify.close();
  });

  it('rate-limits an address after repeated failed authentications', async () => {
    const fresh = await startTestServer('authfail', { AUTH_FAILURES_PER_MINUTE: '3' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await fresh.request('GET', '/api/v1/session', {
          token: `qcat_${'a'.repeat(16)}_${'b'.repeat(43)}`,
        });
        statuses.push(response.status);
        await response.arrayBuffer();
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // Even a good key from that address waits out the minute.
      expect((await fresh.request('GET', '/api/v1/session')).status).toBe(429);
    } finally {
      await fresh.stop();
    }
  });

  it('issues, uses, rotates and revokes a key, each change in the audit trail', async () => {
    const created = await api.request('POST', '/api/v1/keys', {
      body: { name: 'desk-7', role: 'trader' },
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as {
      keyId: string;
      token: string;
      position: string;
      revision: string;
    };
    expect(created.headers.get('etag')).toBe(`"${key.revision}"`);
    const asTrader = await api.request('GET', '/api/v1/session', { token: key.token });
    expect(await asTrader.json()).toEqual({ keyId: key.keyId, name: 'desk-7', role: 'trader' });
    expect((await api.request('GET', '/api/v1/keys', { token: key.token })).status).toBe(403);

    const rotated = await api.request('POST', `/api/v1/keys/${key.keyId}/rotate`, { body: {} });
    const { token: newToken } = (await rotated.json()) as { token: string };
    expect((await api.request('GET', '/api/v1/session', { token: key.token })).status).toBe(401);
    expect((await api.request('GET', '/api/v1/session', { token: newToken })).status).toBe(200);

    const revoked = await api.request(
      'DELETE',
      `/api/v1/keys/${key.keyId}?reason=left%20the%20desk`,
    );
    expect(revoked.status).toBe(200);
    const { position } = (await revoked.json()) as { position: string };
    expect((await api.request('GET', '/api/v1/session', { token: newToken })).status).toBe(401);

    const audit = await api.request(
      'GET',
      `/api/v1/audit/events?streamId=apikey-${key.keyId}&minPosition=${position}`,
      {
        token: api.tokens.auditor,
      },
    );
    const { events } = (await audit.json()) as { events: { type: string; actor: string }[] };
    expect(events.map((e) => e.type)).toEqual(['ApiKeyIssued', 'ApiKeyRotated', 'ApiKeyRevoked']);
    expect(events[0]?.actor).toMatch(/^apikey:/);
  });
});
