import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectTestRedis, type TestRedis } from '../../test/support/test-redis.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { CLOSE } from '../ws/protocol.js';
import { FailureCounter } from './failure-counter.js';

/**
 * Failed authentications: one count per address for HTTP and WebSocket, shared by processes
 * through Redis (real), and keys that worked recently keep working from a locked-out address.
 */

const WRONG = `qcat_${'a'.repeat(16)}_${'b'.repeat(43)}`;

/** A WebSocket with a bearer header: the close code, or 'authenticated'. */
function wsOutcome(url: string, token: string): Promise<number | 'authenticated'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type?: string };
      if (message.type === 'authenticated') {
        resolve('authenticated');
        ws.close();
      }
    });
    ws.on('close', (code) => {
      resolve(code);
    });
    ws.on('error', reject);
  });
}

describe('failed authentications', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await connectTestRedis('authfail');
  });
  afterAll(async () => {
    await redis.cleanup();
  });

  it('are counted once for all processes sharing Redis', async () => {
    const shared = { redis: redis.redis, prefix: redis.prefix };
    const one = new FailureCounter(3, shared);
    const other = new FailureCounter(3, shared);
    await one.record('10.0.0.1');
    await other.record('10.0.0.1');
    expect(await one.refused('10.0.0.1', WRONG)).toBe(false);
    await one.record('10.0.0.1');
    // `other` counted one failure itself; Redis has all three.
    expect(await other.refused('10.0.0.1', WRONG)).toBe(true);
    expect(await other.refused('10.0.0.2', WRONG)).toBe(false);
  });

  it('do not lock out a key that worked recently, in any process', async () => {
    const shared = { redis: redis.redis, prefix: redis.prefix };
    const one = new FailureCounter(1, shared);
    const other = new FailureCounter(1, shared);
    await one.succeeded('qcat_good');
    await other.record('10.0.0.3');
    expect(await other.refused('10.0.0.3', 'qcat_good')).toBe(false);
    expect(await other.refused('10.0.0.3', 'qcat_never_worked')).toBe(true);
    expect(await other.refused('10.0.0.3', null)).toBe(true);
  });

  describe('through HTTP and the WebSocket feed of one server', () => {
    let api: TestServer;
    let wsUrl: string;
    beforeAll(async () => {
      api = await startTestServer('authfail_shared', {
        AUTH_FAILURES_PER_MINUTE: '3',
        REDIS_URL: redis.url,
        QCAT_REDIS_PREFIX: `${redis.prefix}server:`,
      });
      wsUrl = `${api.server.url.replace(/^http/, 'ws')}/ws`;
    }, 60_000);
    afterAll(async () => {
      await api.stop();
    });

    it('count HTTP and WebSocket failures together; a key that worked keeps working', async () => {
      // The trader's key works before the lockout; the auditor's has never been used.
      expect(
        (await api.request('GET', '/api/v1/session', { token: api.tokens.trader })).status,
      ).toBe(200);
      const wrong = async (): Promise<number> =>
        (await api.request('GET', '/api/v1/session', { token: WRONG })).status;
      expect([await wrong(), await wrong()]).toEqual([401, 401]);
      expect(await wsOutcome(wsUrl, WRONG)).toBe(CLOSE.AUTHENTICATION_FAILED);
      // Three failures from this address, two of them over HTTP: both sides are locked now.
      expect(await wrong()).toBe(429);
      expect(await wsOutcome(wsUrl, WRONG)).toBe(CLOSE.TOO_MANY_FAILED_AUTHENTICATIONS);
      expect(
        (await api.request('GET', '/api/v1/session', { token: api.tokens.auditor })).status,
      ).toBe(429);
      // The key that worked goes on, over HTTP and the feed.
      expect(
        (await api.request('GET', '/api/v1/session', { token: api.tokens.trader })).status,
      ).toBe(200);
      expect(await wsOutcome(wsUrl, api.tokens.trader)).toBe('authenticated');
    });
  });
});
