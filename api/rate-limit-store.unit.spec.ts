import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedRateLimitStore } from './rate-limit-store.js';

/**
 * The shared rate limit with Redis away: a real ioredis client aimed at a port nobody listens on,
 * configured as QCAT configures it (no offline queue), so each command fails at once.
 */
describe('sharedRateLimitStore', () => {
  const away = new Redis({
    host: '127.0.0.1',
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  away.on('error', () => undefined);
  afterAll(() => {
    away.disconnect();
  });

  it('counts in the process while Redis does not answer, and says so each time', async () => {
    const fallbacks: Error[] = [];
    const Store = sharedRateLimitStore(away, 'test:', (error) => fallbacks.push(error));
    const store = new Store({});
    const incr = (key: string) =>
      new Promise<{ current: number; ttl: number } | undefined>((resolve, reject) => {
        store.incr(
          key,
          (error, result) => {
            if (error) reject(error);
            else resolve(result);
          },
          60_000,
          2,
        );
      });
    expect((await incr('a'))?.current).toBe(1);
    expect((await incr('a'))?.current).toBe(2);
    expect((await incr('a'))?.current).toBe(3); // over the limit of 2: the plugin answers 429
    expect((await incr('b'))?.current).toBe(1);
    expect(fallbacks).toHaveLength(4);
  });
});
