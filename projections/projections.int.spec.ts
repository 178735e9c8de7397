import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type {
  EventMetadata,
  EventStore,
  JsonValue,
  NewEvent,
  RecordedEvent,
} from '../core/eventstore/event-store.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { redisViewChecksum, tableChecksum } from '../test/support/read-model-checksums.js';
import { auditTrail } from './audit-trail.js';
import { liveActivity, readActivity } from './live-activity.js';
import { PostgresTarget } from './postgres-target.js';
import type { PostgresProjection } from './projection.js';
import { ProjectionService } from './projection-service.js';
import { RedisTarget } from './redis-target.js';
import { describeNeeding } from '../test/support/tools.js';

const event = (type: string, actor = 'trader-1'): NewEvent => ({
  type,
  data: { at: Date.now() },
  metadata: { actor, correlationId: randomUUID(), causationId: randomUUID() },
});

/** The same log behind a plain object: not a PostgresEventStore, so rebuilds go event by event. */
const wrapped = (inner: EventStore): EventStore => ({
  appendToStream: (streamId, events, options) => inner.appendToStream(streamId, events, options),
  readStream: (streamId, options) => inner.readStream(streamId, options),
  readAll: (options) => inner.readAll(options),
  subscribeToAll: (options) => inner.subscribeToAll(options),
  headPosition: () => inner.headPosition(),
  positionAt: (instant) => inner.positionAt(instant),
  close: () => inner.close(),
});

/** The index definitions of a generation's audit trail, with the schema name taken out. */
async function indexesOf(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ indexdef: string }>(
    `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'audit_trail'
      ORDER BY indexname`,
    [schema],
  );
  return rows.map((row) => row.indexdef.replaceAll(schema, 'S'));
}

async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

describeNeeding(['redis'], 'projection engine', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  let redis: TestRedis;
  const services: ProjectionService[] = [];

  const service = async (
    extra: PostgresProjection[] = [],
    retryDelayMs = 100,
  ): Promise<ProjectionService> => {
    const created = new ProjectionService({
      pool,
      connectionString: database.url,
      eventStore: store,
      projections: [auditTrail, liveActivity(redis.prefix), ...extra],
      redis: redis.redis,
      redisPrefix: redis.prefix,
      instanceId: `test-${services.length}`,
      leadershipIntervalMs: 200,
      retryDelayMs,
    });
    services.push(created);
    await created.start();
    return created;
  };

  beforeAll(async () => {
    database = await createTestDatabase('projections');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = store.pool;
    redis = await connectTestRedis('projections');
  });
  afterAll(async () => {
    for (const running of services) await running.stop();
    await store.close();
    await redis.cleanup();
    await database.drop();
  });

  it('projects every event into the audit trail and the live activity view; waitFor reads own writes', async () => {
    const projections = await service();
    const results = [];
    for (let i = 0; i < 30; i++) {
      results.push(
        await store.appendToStream(`order-${i % 3}`, [event('OrderSubmitted', `trader-${i % 2}`)]),
      );
    }
    const last = results.at(-1)!.position;
    expect(await projections.waitFor('audit_trail', last, 5000)).toBe(true);
    expect(await projections.waitFor('live_activity', last, 5000)).toBe(true);

    const { rows } = await pool.query<{ actor: string; n: string }>(
      'SELECT actor, count(*) AS n FROM qcat_read.audit_trail GROUP BY actor ORDER BY actor',
    );
    expect(rows).toEqual([
      { actor: 'trader-0', n: '15' },
      { actor: 'trader-1', n: '15' },
    ]);
    const [row] = (
      await pool.query<Record<string, unknown>>(
        'SELECT * FROM qcat_read.audit_trail WHERE position = $1',
        [last],
      )
    ).rows;
    const [recorded] = await store.readAll({ after: last - 1n, maxCount: 1 });
    expect(row).toMatchObject({
      stream_id: recorded!.streamId,
      category: 'order',
      type: 'OrderSubmitted',
      event_id: recorded!.eventId,
      actor: recorded!.metadata.actor,
      correlation_id: recorded!.metadata.correlationId,
      causation_id: recorded!.metadata.causationId,
    });

    const activity = await readActivity(redis.redis, redis.prefix, 'order');
    expect(activity).toHaveLength(30);
    expect(activity[0]).toMatchObject({ position: last.toString(), type: 'OrderSubmitted' });

    const status = await projections.status();
    expect(status.map((s) => [s.name, s.state, s.lag])).toEqual([
      ['audit_trail', 'running', 0n],
      ['live_activity', 'running', 0n],
    ]);
  });

  it('publishes one notification per applied batch', async () => {
    const subscriber = redis.redis.duplicate();
    const messages: string[] = [];
    await subscriber.subscribe(`${redis.prefix}activity`);
    subscriber.on('message', (_channel, message) => messages.push(message));
    const { position } = await store.appendToStream('fill-1', [
      event('OrderFilled'),
      event('OrderFilled'),
    ]);
    await until(
      () => Promise.resolve(messages.some((m) => m.includes(`"to":"${position}"`))),
      5000,
      'a notification',
    );
    const last = JSON.parse(messages.at(-1)!) as { categories: string[]; count: number };
    expect(last.categories).toContain('fill');
    await subscriber.quit();
  });

  it('changes nothing when an already-applied batch is replayed (PostgreSQL and Redis)', async () => {
    const events: RecordedEvent[] = await store.readAll({ maxCount: 10_000 });
    // Everything read is already applied: the replay below is a pure repeat.
    const head = events.at(-1)!.position;
    expect(await services[0]!.waitFor('audit_trail', head, 5000)).toBe(true);
    expect(await services[0]!.waitFor('live_activity', head, 5000)).toBe(true);
    const before = await tableChecksum(pool, 'qcat_read.audit_trail', 'position');
    const redisBefore = await redisViewChecksum(redis.redis, redis.prefix, 'live_activity');
    const pgTarget = new PostgresTarget(pool, auditTrail);
    const redisTarget = new RedisTarget(
      redis.redis.duplicate(),
      redis.prefix,
      liveActivity(redis.prefix),
    );
    const checkpoint = await pgTarget.checkpoint();
    expect(await pgTarget.apply(events)).toBe(checkpoint);
    expect(await redisTarget.apply(events)).toBe(await redisTarget.checkpoint());
    redisTarget.disconnect();
    expect(await tableChecksum(pool, 'qcat_read.audit_trail', 'position')).toEqual(before);
    expect(await redisViewChecksum(redis.redis, redis.prefix, 'live_activity')).toEqual(
      redisBefore,
    );
  });

  it('stops only the failing projection at the failing event, without a hot loop, and resumes after a fix', async () => {
    let fixed = false;
    let attempts = 0;
    const fragile: PostgresProjection = {
      kind: 'postgres',
      name: 'fragile',
      version: 1,
      tables: ['fragile_seen'],
      setup: async (client, schema) => {
        await client.query(`CREATE TABLE ${schema}.fragile_seen (position bigint PRIMARY KEY)`);
      },
      apply: async (client, schema, events) => {
        for (const e of events) {
          if (e.type === 'Poison') {
            attempts++;
            if (!fixed) throw new Error('cannot digest Poison');
          }
          await client.query(`INSERT INTO ${schema}.fragile_seen VALUES ($1)`, [e.position]);
        }
      },
    };
    const projections = await service([fragile], 200);
    const good = await store.appendToStream('lab-1', [event('Fine')]);
    const poison = await store.appendToStream('lab-1', [event('Poison')]);
    const after = await store.appendToStream('lab-1', [event('Fine')]);

    await until(
      async () =>
        (await projections.status()).find((s) => s.name === 'fragile')?.state === 'stopped',
      5000,
      'fragile to stop',
    );
    expect(await projections.waitFor('audit_trail', after.position, 5000)).toBe(true);
    const stopped = (await projections.status()).find((s) => s.name === 'fragile')!;
    expect(stopped.error).toMatchObject({
      position: poison.position,
      message: 'cannot digest Poison',
    });
    expect(stopped.checkpoint).toBeGreaterThanOrEqual(good.position);
    expect(stopped.checkpoint).toBeLessThan(poison.position);
    const { rows } = await pool.query(
      'SELECT error_position, error_message FROM qcat_projections WHERE name = $1',
      ['fragile'],
    );
    expect(rows[0]).toEqual({
      error_position: poison.position.toString(),
      error_message: 'cannot digest Poison',
    });

    const attemptsBefore = attempts;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Pauses of 200 ms, doubling: at most 3 more rounds in a second (each round tries the batch,
    // then the failing event alone), never hundreds.
    expect(attempts - attemptsBefore).toBeLessThanOrEqual(6);

    fixed = true;
    expect(await projections.waitFor('fragile', after.position, 10_000)).toBe(true);
    const resumed = (await projections.status()).find((s) => s.name === 'fragile')!;
    expect(resumed.error).toBeNull();
    const seen = await pool.query<{ position: string }>(
      'SELECT position FROM qcat_read.fragile_seen ORDER BY position',
    );
    expect(seen.rows.map((r) => BigInt(r.position))).toContain(poison.position);
    await projections.stop();
    services.splice(services.indexOf(projections), 1);
  });

  it.each([
    ['sql', 2],
    ['events', 3],
  ] as const)(
    'rebuilds into a shadow copy while the live one serves, then switches atomically (via %s)',
    async (path, generation) => {
      const projections = services[0]!;
      for (let i = 0; i < 20; i++)
        await store.appendToStream(
          `order-r${i}`,
          Array.from({ length: 50 }, () => event('OrderSubmitted')),
        );
      const head = await store.headPosition();
      expect(await projections.waitFor('audit_trail', head, 10_000)).toBe(true);
      const before = await tableChecksum(pool, 'qcat_read.audit_trail', 'position');

      // Readers keep querying and writers keep appending while the rebuild runs.
      const run = { reading: true, writing: true };
      const counts: number[] = [];
      const reader = (async () => {
        while (run.reading) {
          const { rows } = await pool.query<{ n: string }>(
            'SELECT count(*) AS n FROM qcat_read.audit_trail',
          );
          counts.push(Number(rows[0]!.n));
        }
      })();
      const writer = (async () => {
        while (run.writing) await store.appendToStream('order-during', [event('OrderAmended')]);
      })();
      const target = projections.target('audit_trail') as PostgresTarget;
      const source = path === 'sql' ? store : wrapped(store);
      const result = await target.rebuild(source, { batchSize: 100, sqlChunk: 300 });
      run.writing = false;
      await writer;
      run.reading = false;
      await reader;

      expect(result.via).toBe(path);
      expect(result.generation).toBe(generation);
      expect(counts.length).toBeGreaterThan(0);
      expect(Math.min(...counts)).toBeGreaterThanOrEqual(before.rows); // never empty, never partial
      for (let i = 1; i < counts.length; i++)
        expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);

      const finalHead = await store.headPosition();
      expect(await projections.waitFor('audit_trail', finalHead, 10_000)).toBe(true);
      const { rows } = await pool.query<{ n: string; max: string }>(
        'SELECT count(*) AS n, max(position) AS max FROM qcat_read.audit_trail',
      );
      expect(rows[0]).toEqual({ n: String(finalHead), max: String(finalHead) });
      const schemas = await pool.query<{ nspname: string }>(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'qcat_p_audit_trail_%'",
      );
      expect(schemas.rows.map((r) => r.nspname)).toEqual([`qcat_p_audit_trail_${generation}`]);
      expect(await indexesOf(pool, `qcat_p_audit_trail_${generation}`)).toHaveLength(7);
    },
  );

  it('rebuilds the Redis view into a new generation with the same contents', async () => {
    const projections = services[0]!;
    const head = await store.headPosition();
    expect(await projections.waitFor('live_activity', head, 10_000)).toBe(true);
    const before = await redisViewChecksum(redis.redis, redis.prefix, 'live_activity');
    const target = projections.target('live_activity') as RedisTarget;
    const result = await target.rebuild(store, { batchSize: 100 });
    expect(result.generation).toBe(2);
    expect(await redisViewChecksum(redis.redis, redis.prefix, 'live_activity')).toEqual(before);
    expect(await redis.redis.keys(`${redis.prefix}live_activity:g1:*`)).toEqual([]);
  });

  it('lets exactly one of two services lead each projection, and the other take over', async () => {
    const first = services[0]!;
    const second = await service();
    const states = async (s: ProjectionService) =>
      (await s.status()).filter((x) => x.name !== 'fragile').map((x) => x.state);
    expect(await states(first)).toEqual(['running', 'running']);
    expect(await states(second)).toEqual(['led_elsewhere', 'led_elsewhere']);
    await first.stop();
    await until(
      async () => (await states(second)).every((s) => s === 'running'),
      10_000,
      'takeover',
    );
    const { position } = await store.appendToStream('order-after', [event('OrderSubmitted')]);
    expect(await second.waitFor('audit_trail', position, 5000)).toBe(true);
  });
});

describe('audit trail rebuild in SQL', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  const checksum = (): Promise<{ rows: number; md5: string }> =>
    tableChecksum(pool, 'qcat_read.audit_trail', 'position');
  const generation = async (): Promise<number> =>
    (
      await pool.query<{ generation: number }>(
        "SELECT generation FROM qcat_projections WHERE name = 'audit_trail'",
      )
    ).rows[0]!.generation;

  beforeAll(async () => {
    database = await createTestDatabase('audit_sql');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = store.pool;
    // Varied events: categories and ids with dashes, actors that need quoting in a pg array,
    // correlation and causation ids that are strings, absent, null or not strings at all.
    const odd: JsonValue[] = [42, true, { id: 'x' }, ['a'], null, 1.5];
    const actors = [
      'trader-1',
      'he said "hi", {x}',
      'back\\slash',
      'NULL',
      ' ünï cødé ✓ ',
      "o'brien",
    ];
    const streams = ['order-1', 'strategy-a_b-c', 'risk-a.b:c@d=e+f-g', 'x-1', 'account-7'];
    let n = 0;
    for (let append = 0; append < 40; append++) {
      const size = 1 + (append % 7);
      const events: NewEvent[] = Array.from({ length: size }, () => {
        n++;
        const metadata: Record<string, JsonValue> = {
          actor: actors[n % actors.length]!,
          schemaVersion: 1,
        };
        if (n % 3 !== 0)
          metadata['correlationId'] = n % 5 === 0 ? odd[n % odd.length]! : randomUUID();
        if (n % 4 !== 0)
          metadata['causationId'] = n % 7 === 0 ? odd[n % odd.length]! : `cause-${n}`;
        return {
          type: n % 2 ? 'OrderSubmitted' : 'LimitChanged',
          data: { n },
          metadata: metadata as EventMetadata,
        };
      });
      await store.appendToStream(streams[append % streams.length]!, events);
      if (append % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
    }
    // Sub-millisecond commit times (as an imported log could hold): both paths round them alike.
    await pool.query(
      `UPDATE qcat_events SET recorded_at = recorded_at + (position % 1000) * interval '1 microsecond'
        WHERE position % 3 = 0`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('fills a rebuild in SQL equal to the event-by-event build, indexes included', async () => {
    const target = new PostgresTarget(pool, auditTrail);
    await target.ensure();
    const first = await indexesOf(pool, 'qcat_p_audit_trail_1');
    expect(first).toHaveLength(7); // a first start creates the secondary indexes too

    // The live path: batches through target.apply.
    const head = await store.headPosition();
    for (let after = 0n; after < head;) {
      const events = await store.readAll({ after, maxCount: 17 });
      after = await target.apply(events);
    }
    const live = await checksum();
    expect(live.rows).toBe(Number(head));

    const byEvents = await target.rebuild(wrapped(store), { batchSize: 13 });
    expect(byEvents).toMatchObject({ via: 'events', generation: 2, checkpoint: head });
    expect(await checksum()).toEqual(live);

    const bySql = await target.rebuild(store, { batchSize: 13, sqlChunk: 7 });
    expect(bySql).toMatchObject({
      via: 'sql',
      generation: 3,
      checkpoint: head,
      events: Number(head),
    });
    expect(await checksum()).toEqual(live);
    expect(await indexesOf(pool, 'qcat_p_audit_trail_3')).toEqual(first);

    // A store vouched for by the option takes the SQL path through a wrapper, too.
    const vouched = new PostgresTarget(pool, auditTrail, { logInDatabase: true });
    expect(await vouched.rebuild(wrapped(store), { sqlChunk: 1000 })).toMatchObject({ via: 'sql' });
    expect(await checksum()).toEqual(live);
  });

  it('goes event by event when the log it is given is not the one in this database', async () => {
    const elsewhere = await createTestDatabase('audit_sql_other');
    const other = await PostgresEventStore.connect({ connectionString: elsewhere.url });
    try {
      await other.appendToStream('order-elsewhere', [event('OrderSubmitted')]);
      const otherPool = new PostgresTarget(other.pool, auditTrail);
      await otherPool.ensure();
      // The target's database holds a log (with a position 1) but not the store's.
      expect(await otherPool.rebuild(store)).toMatchObject({ via: 'events' });
      const vouched = new PostgresTarget(other.pool, auditTrail, { logInDatabase: true });
      expect(await vouched.rebuild(store)).toMatchObject({ via: 'events' });
      expect(await tableChecksum(other.pool, 'qcat_read.audit_trail', 'position')).toEqual(
        await checksum(),
      );
    } finally {
      await other.close();
      await elsewhere.drop();
    }
  });

  it('leaves the live copy untouched when a rebuild fails, and drops the half-built one', async () => {
    const before = await checksum();
    const live = await generation();
    const broken: PostgresProjection = {
      ...auditTrail,
      indexes: () => Promise.reject(new Error('index build failed')),
    };
    await expect(new PostgresTarget(pool, broken).rebuild(store)).rejects.toThrow(
      'index build failed',
    );
    const failing: EventStore = {
      ...wrapped(store),
      readAll: (options) =>
        (options?.after ?? 0n) > 20n
          ? Promise.reject(new Error('log unreachable'))
          : store.readAll(options),
    };
    await expect(
      new PostgresTarget(pool, auditTrail).rebuild(failing, { batchSize: 10 }),
    ).rejects.toThrow('log unreachable');

    expect(await generation()).toBe(live);
    expect(await checksum()).toEqual(before);
    const schemas = await pool.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'qcat_p_audit_trail_%'",
    );
    expect(schemas.rows.map((r) => r.nspname)).toEqual([`qcat_p_audit_trail_${live}`]);
    expect(await new PostgresTarget(pool, auditTrail).rebuild(store)).toMatchObject({
      via: 'sql',
      generation: live + 1,
    });
    expect(await checksum()).toEqual(before);
  });
});
