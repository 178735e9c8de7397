import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { readProjectionStatus } from '../projections/projection-service.js';
import { allProjections } from '../projections/registry.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { connectTestRedis, type TestRedis } from './support/test-redis.js';
import { describeNeeding } from './support/tools.js';

describeNeeding(['redis'], 'projection leadership across two QCAT processes', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let store: PostgresEventStore;
  const processes: QcatProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('leadership');
    redis = await connectTestRedis('leadership');
    store = await PostgresEventStore.connect({ connectionString: database.url });
  });
  afterAll(async () => {
    for (const qcat of processes) await qcat.crash().catch(() => undefined);
    await store.close();
    await redis.cleanup();
    await database.drop();
  });

  const leaders = async (): Promise<(string | null)[]> =>
    (await readProjectionStatus(store.pool, store)).map((status) => status.leader);

  it('runs each projection in exactly one process, and the other takes over within seconds of a kill -9', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: redis.prefix,
    };
    const a = await startQcat(env);
    processes.push(a);
    const b = await startQcat(env);
    processes.push(b);
    const idOf = (qcat: QcatProcess): string => `:${qcat.pid}`;

    // A started first and leads every projection and process manager (ADR 010); B stands by.
    const initial = await readProjectionStatus(store.pool, store);
    expect(initial.filter((status) => status.kind !== 'process')).toHaveLength(
      allProjections('x').length,
    );
    expect(initial.some((status) => status.kind === 'process')).toBe(true);
    expect(initial.every((status) => status.leader?.endsWith(idOf(a)))).toBe(true);
    expect(a.output()).toContain('projections: leading audit_trail');
    expect(b.output()).not.toContain('projections: leading');

    await a.crash();
    const killedAt = Date.now();
    await vi.waitFor(
      async () => {
        const now = await leaders();
        if (!now.every((leader) => leader?.endsWith(idOf(b))))
          throw new Error(`no takeover: ${JSON.stringify(now)}`);
      },
      { timeout: 15_000, interval: 50 },
    );
    const takeoverMs = Date.now() - killedAt;
    console.log(`takeover after kill -9: ${takeoverMs} ms`);
    expect(takeoverMs).toBeLessThan(15_000);

    // B now projects new events.
    const { position } = await store.appendToStream('probe-1', [
      { type: 'LeadershipProbe', data: { n: 1 }, metadata: { actor: 't' } },
    ]);
    await vi.waitFor(
      async () => {
        const statuses = await readProjectionStatus(store.pool, store);
        if (statuses.some((status) => status.checkpoint < position))
          throw new Error('B did not project the new event');
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(await b.stop()).toBe(0);
  }, 180_000);
});
