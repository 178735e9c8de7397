import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { verifyLog } from '../../audit/verify.js';
import { GENESIS_HASH, chainText } from '../../eventstore/event-hash.js';
import { eventLogMigrations, migrate } from './migrations.js';
import { PostgresEventStore } from './postgres-event-store.js';

const LOG_V4 = '../../../test/fixtures/legacy-schema/log-v4.sql';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('PostgreSQL hash chain (migration 5)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore | undefined;
  const streams = [`order-${randomUUID()}`, `order-${randomUUID()}`];

  beforeAll(async () => {
    database = await createTestDatabase('hashchain');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined); // ended by the database drop
  });
  afterAll(async () => {
    await store?.close();
    await pool.end();
    await database.drop();
  });

  it('hashes the events a log held before the chain existed, then keeps chaining', async () => {
    // A log as migration 4 left it (the code of then, test/fixtures/legacy-schema), written
    // through its own append function.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client
      .query(readFileSync(join(import.meta.dirname, LOG_V4), 'utf8'))
      .finally(() => client.end());
    const old = [
      { stream: streams[0]!, type: 'A', data: { z: 1, a: [1.5, 'x'] } },
      { stream: streams[1]!, type: 'B', data: { n: 1e21 } },
      { stream: streams[0]!, type: 'C', data: 'text' },
    ];
    for (const event of old) {
      await pool.query('SELECT * FROM qcat_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        [event.stream],
        ['any'],
        [1],
        [0],
        [randomUUID()],
        [event.type],
        JSON.stringify([event.data]),
        JSON.stringify([{ actor: 'before-v5', schemaVersion: 1 }]),
        false,
      ]);
    }

    // More events than one backfill batch (5,000), so the backfill crosses batches mid-stream.
    const many = 6_000;
    await pool.query('SELECT * FROM qcat_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      [streams[1]],
      ['any'],
      [many],
      [0],
      Array.from({ length: many }, () => randomUUID()),
      Array.from({ length: many }, () => 'Bulk'),
      JSON.stringify(Array.from({ length: many }, (_, i) => ({ i }))),
      JSON.stringify(Array.from({ length: many }, () => ({ actor: 'before-v5' }))),
      false,
    ]);

    expect(
      await migrate(
        pool,
        eventLogMigrations.filter((m) => m.version <= 5),
      ),
    ).toEqual([5]);
    const { rows: nullable } = await pool.query<{ is_nullable: string }>(
      `SELECT is_nullable FROM information_schema.columns
        WHERE table_name = 'qcat_events' AND column_name = 'hash'`,
    );
    expect(nullable[0]?.is_nullable).toBe('NO');

    store = await PostgresEventStore.connect({ connectionString: database.url });
    const backfilled = await store.readAll({ maxCount: 10_000 });
    expect(backfilled).toHaveLength(3 + many);
    expect(backfilled.every((e) => /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    expect((await verifyLog(store)).ok).toBe(true);

    // New appends chain onto the backfilled hashes: the second event of streams[0] onwards.
    await store.appendToStream(streams[0]!, [
      { type: 'D', data: { after: true }, metadata: { actor: 'after-v5' } },
    ]);
    const stream = await store.readStream(streams[0]!);
    expect(stream.map((e) => e.type)).toEqual(['A', 'C', 'D']);
    const report = await verifyLog(store);
    expect(report).toMatchObject({ ok: true, eventsChecked: 4 + many, streams: 2 });
  });

  it('chains events written by the per-append path (a group with a repeated id)', async () => {
    const stream = streams[0]!;
    const repeated = { eventId: randomUUID(), type: 'R', data: {}, metadata: { actor: 'a' } };
    await store!.appendToStream(stream, [repeated]);
    // One group: the repeat sends it through qcat_append, which must chain the new events too.
    const [again, fresh] = await Promise.all([
      store!.appendToStream(stream, [repeated]),
      store!.appendToStream(stream, [
        { eventId: randomUUID(), type: 'F1', data: { n: 1 }, metadata: { actor: 'a' } },
        { eventId: randomUUID(), type: 'F2', data: { n: 2 }, metadata: { actor: 'a' } },
      ]),
    ]);
    expect(fresh.nextExpectedRevision).toBe(again.nextExpectedRevision + 2n);
    const events = await store!.readStream(stream);
    expect(events.slice(-3).map((e) => e.type)).toEqual(['R', 'F1', 'F2']);
    expect((await verifyLog(store!)).ok).toBe(true);
  });

  it('computes in SQL exactly the link the ADR documents', async () => {
    const [first] = await store!.readStream(streams[1]!);
    const { rows } = await pool.query<{ hash: string }>(
      'SELECT qcat_event_hash($1, 0, $2, $3) AS hash',
      [GENESIS_HASH, String(first!.recordedAt.getTime()), 'd'.repeat(64)],
    );
    expect(rows[0]?.hash).toBe(
      sha256(chainText(GENESIS_HASH, 0n, String(first!.recordedAt.getTime()), 'd'.repeat(64))),
    );
  });

  it('verifies a copy re-inserted with its stored hashes and positions, with the same digest', async () => {
    const original = await verifyLog(store!);
    const copy = await createTestDatabase('hashcopy');
    const target = await PostgresEventStore.connect({ connectionString: copy.url });
    try {
      // What a restore does: every event with its position, time and hash, verbatim.
      const events = await store!.readAll({ maxCount: 10_000 });
      await target.pool.query(
        `INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[],
                              $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::text[])`,
        [
          events.map((e) => e.position.toString()),
          events.map((e) => e.streamId),
          events.map((e) => e.revision.toString()),
          events.map((e) => e.eventId),
          events.map((e) => e.type),
          events.map((e) => JSON.stringify(e.data)),
          events.map((e) => JSON.stringify(e.metadata)),
          events.map((e) => e.recordedAt.toISOString()),
          events.map((e) => e.hash),
        ],
      );
      const last = events.at(-1)!;
      await target.pool.query('UPDATE qcat_log_head SET position = $1, recorded_at = $2', [
        last.position.toString(),
        last.recordedAt,
      ]);
      const restored = await verifyLog(target);
      expect(restored).toMatchObject({ ok: true, eventsChecked: events.length });
      expect(restored.digest).toBe(original.digest);

      // Streams as a restore writes them: revision only, no cached hash. Appends then read the
      // last hash from the events, through both append paths, and the chain carries on.
      await target.pool.query(
        `INSERT INTO qcat_streams (stream_id, revision)
         SELECT stream_id, max(revision) FROM qcat_events GROUP BY stream_id`,
      );
      await target.appendToStream(streams[0]!, [
        { type: 'AfterRestore', data: {}, metadata: { actor: 'a' } },
      ]);
      await target.appendToStream(streams[1]!, [
        { eventId: randomUUID(), type: 'AfterRestore', data: {}, metadata: { actor: 'a' } },
      ]);
      const after = await verifyLog(target);
      expect(after).toMatchObject({ ok: true, eventsChecked: events.length + 2 });
    } finally {
      await target.close();
      await copy.drop();
    }
  });
});
