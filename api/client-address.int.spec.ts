import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

/**
 * Who the client is behind a reverse proxy: with TRUST_PROXY naming the proxy, the address in
 * X-Forwarded-For counts failed authentications (and the rate limit); without it, the header is
 * ignored and every client behind the proxy is one address. Requests come from 127.0.0.1 here.
 */
describe.each([
  { trust: '127.0.0.1', separate: true },
  { trust: '', separate: false },
])('client address with TRUST_PROXY=$trust', ({ trust, separate }) => {
  let qcat: TestServer;
  beforeAll(async () => {
    qcat = await startTestServer('client_address', {
      TRUST_PROXY: trust,
      AUTH_FAILURES_PER_MINUTE: '3',
    });
  });
  afterAll(async () => {
    await qcat.stop();
  });

  const attempt = async (forwardedFor: string): Promise<number> =>
    (
      await qcat.request('GET', '/api/v1/session', {
        token: 'qcat_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
        headers: { 'x-forwarded-for': forwardedFor },
      })
    ).status;

  it(
    separate
      ? 'blocks the client that failed, not the others behind the same proxy'
      : 'ignores X-Forwarded-For: the proxy is one client',
    async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push(await attempt('203.0.113.7'));
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(await attempt('198.51.100.9')).toBe(separate ? 401 : 429);
      // A client cannot unblock itself by naming another address in front of the proxy's.
      if (separate) expect(await attempt('198.51.100.9, 203.0.113.7')).toBe(429);
    },
  );
});
