import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { testRedisUrl } from './tools.js';

export interface TestRedis {
  url: string;
  redis: Redis;
  /** Unique per test file, so files never see each other's keys or channels. */
  prefix: string;
  cleanup(): Promise<void>;
}

/**
 * The Redis the tests use: TEST_REDIS_URL, else REDIS_URL, else the test setup's throw-away one.
 * Specs using it are declared with `describeNeeding(['redis'], …)`. Fails loudly when it does not
 * answer.
 */
export async function connectTestRedis(label = 'spec'): Promise<TestRedis> {
  const url = testRedisUrl();
  if (url === '') throw new Error('no Redis: set REDIS_URL or install redis-server');
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`Redis at ${url} does not answer (set TEST_REDIS_URL): ${String(error)}`, {
      cause: error,
    });
  }
  const prefix = `qcat-test:${label}:${randomBytes(4).toString('hex')}:`;
  return {
    url,
    redis,
    prefix,
    cleanup: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}
