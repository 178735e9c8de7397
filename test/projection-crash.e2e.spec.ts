import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { auditTrail } from '../projections/audit-trail.js';
import { liveActivity } from '../projections/live-activity.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { RedisTarget } from '../projections/redis-target.js';
import { startQcat } from './support/qcat-process.js';
import { redisViewChecksum, tableChecksum } from './support/read-model-checksums.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { connectTestRedis, type TestRedis } from './support/test-redis.js';
import { describeNeeding } from './support/tools.js';

const CRASHES = 10;

describeNeeding(['redis'], 'crash safety of the projections', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase('crash');
    redis = await connectTestRedis('crash');
    store = await PostgresEventStore.connect({ connectionString: database.url });
  });
  afterAll(async () => {
    await store.close();
    await redis.cleanup();
    await database.drop();
  });

  it(`after ${CRASHES} kill -9 while events stream in, the read models equal a clean rebuild`, async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: redis.prefix,
    };
    const run = { writing: true };
    let written = 0;
    const writer = (async () => {
      const categories = ['order', 'fill', 'strategy', 'risk'];
      while (run.writing) {
        const size = 1 + Math.floor(Math.random() * 20);
        const category = categories[written % categories.length]!;
        await store.appendToStream(
          `${category}-${written % 7}`,
          Array.from({ length: size }, () => ({
            type: 'CrashProbe',
            data: { n: written },
            metadata: { actor: `actor-${written % 3}`, correlationId: randomUUID() },
          })),
        );
        written += size;
        // A steady stream (about 2,000 events/s), not as fast as the machine allows: a writer
        // flat out took a core from the processes under test and made each start 2x slower.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    for (let crash = 0; crash < CRASHES; crash++) {
      const qcat = await startQcat(env);
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 900));
      await qcat.crash();
    }
    run.writing = false;
    await writer;
    const head = await store.headPosition();
    expect(written).toBeGreaterThan(0);

    // One more start lets the projections finish; then a clean stop.
    const last = await startQcat(env);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await store.pool.query<{ checkpoint: string }>(
        "SELECT checkpoint FROM qcat_projections WHERE name IN ('audit_trail', 'live_activity')",
      );
      if (rows.length === 2 && rows.every((row) => BigInt(row.checkpoint) >= head)) break;
      if (Date.now() > deadline)
        throw new Error(`projections did not reach ${head}: ${JSON.stringify(rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await last.stop()).toBe(0);

    const live = await tableChecksum(store.pool, 'qcat_read.audit_trail', 'position');
    const liveRedis = await redisViewChecksum(redis.redis, redis.prefix, 'live_activity');
    expect(live.rows).toBe(Number(head));

    // The clean rebuild: both read models again from position 0.
    await new PostgresTarget(store.pool, auditTrail).rebuild(store);
    const redisTarget = new RedisTarget(
      redis.redis.duplicate(),
      redis.prefix,
      liveActivity(redis.prefix),
    );
    await redisTarget.rebuild(store);
    redisTarget.disconnect();

    expect(await tableChecksum(store.pool, 'qcat_read.audit_trail', 'position')).toEqual(live);
    expect(await redisViewChecksum(redis.redis, redis.prefix, 'live_activity')).toEqual(liveRedis);
  }, 600_000);
});
