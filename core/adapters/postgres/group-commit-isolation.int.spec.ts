import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { NewEvent } from '../../eventstore/event-store.js';
import { PostgresEventStore } from './postgres-event-store.js';

const event = (type: string, n: number): NewEvent => ({
  type,
  data: { n },
  metadata: { actor: 'isolation-test' },
});

/**
 * Group commit writes many callers' appends in one transaction. An append that the database
 * refuses for a reason validation cannot see (here a CHECK constraint, standing in for any value
 * PostgreSQL rejects) must fail alone: the others of its group are written.
 */
describe('PostgreSQL group commit isolates a failing append', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase('isolation');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    await store.pool.query(
      `ALTER TABLE qcat_events ADD CONSTRAINT poison_refused CHECK (type <> 'Poison')`,
    );
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('writes all 300 valid appends queued beside one poisoned append', async () => {
    const head = await store.headPosition();
    // Queued on one turn of the event loop: they share the coming group commit. Every tenth
    // stream gets a second append that expects the first one's revision, to show the order of
    // appends to one stream survives the retries.
    const valid: Promise<unknown>[] = [];
    let poisoned: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < 270; i++) {
      const stream = `isolation-s${i}`;
      valid.push(
        store.appendToStream(stream, [event('Valid', i)], { expectedRevision: 'no_stream' }),
      );
      if (i % 9 === 0) {
        valid.push(store.appendToStream(stream, [event('Valid', i)], { expectedRevision: 0n }));
      }
      if (i === 135) {
        poisoned = store.appendToStream('isolation-poison', [event('Poison', i)]).then(
          () => null,
          (error: unknown) => error,
        );
      }
    }
    expect(valid).toHaveLength(300);
    const results = await Promise.allSettled(valid);
    const failed = results.filter((result) => result.status === 'rejected');
    expect(failed).toEqual([]);
    expect(await poisoned).toMatchObject({ constraint: 'poison_refused' });

    // Every valid event is in the log, gap-free, and nothing of the poisoned append is.
    const written = await store.readAll({ after: head, maxCount: 1000 });
    expect(written).toHaveLength(300);
    expect(written.map((e) => e.position)).toEqual(
      Array.from({ length: 300 }, (_, i) => head + BigInt(i + 1)),
    );
    expect(written.some((e) => e.type === 'Poison')).toBe(false);
    expect(await store.readStream('isolation-s9')).toHaveLength(2);
  });
});
