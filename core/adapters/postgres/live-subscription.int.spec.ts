import { firstValueFrom, take, timeout, type Subscription } from 'rxjs';
import type { RecordedEvent } from '../../eventstore/event-store.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { PostgresEventStore } from './postgres-event-store.js';

/**
 * A caught-up subscriber sleeps until a commit's notification wakes it; its poll is only a safety
 * net of 15 s (LISTENING_POLL_MS). So a notification lost with the LISTEN connection must not cost
 * those 15 s: the subscriber re-reads as soon as the connection is back. Without that wake-up the
 * event below arrives after the safety-net poll, past the 8 s this spec waits.
 */
describe('a live subscription on PostgreSQL', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  beforeAll(async () => {
    database = await createTestDatabase('live_subscription');
    store = await PostgresEventStore.connect({ connectionString: database.url, poolSize: 2 });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  const listeners = async (): Promise<number[]> => {
    const { rows } = await store.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'qcat-listen:qcat_log'`,
    );
    return rows.map((row) => row.pid);
  };

  it('gets an event appended while its LISTEN connection was cut, once the connection is back', async () => {
    const head = await store.headPosition();
    const received = firstValueFrom(
      store.subscribeToAll({ after: head }).pipe(take(1), timeout(8_000)),
    );
    // Caught up and listening; past the 1 s poll of the moment before it listened, the subscriber
    // waits on the safety-net poll.
    await expect.poll(listeners, { timeout: 5_000 }).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const [pid] = await listeners();
    await store.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    await expect.poll(listeners, { timeout: 5_000 }).toHaveLength(0);
    // Its notification goes nowhere: nobody listens.
    await store.appendToStream('live-subscription-1', [
      { type: 'WhileDeaf', data: { n: 1 }, metadata: { actor: 'live-subscription-spec' } },
    ]);

    const event = await received;
    expect(event.type).toBe('WhileDeaf');
  });

  it('wakes ten caught-up subscribers with one commit and reads its events once for all of them', async () => {
    await expect.poll(listeners, { timeout: 5_000 }).toHaveLength(1);
    const head = await store.headPosition();
    const received: RecordedEvent[][] = Array.from({ length: 10 }, () => []);
    const subscriptions: Subscription[] = received.map((into) =>
      store.subscribeToAll({ after: head }).subscribe((event) => into.push(event)),
    );
    // Each subscriber's first read finds nothing and it sleeps; then count the log's reads.
    await new Promise((resolve) => setTimeout(resolve, 500));
    let reads = 0;
    const readAll = store.readAll.bind(store);
    store.readAll = (options) => {
      reads++;
      return readAll(options);
    };
    try {
      await store.appendToStream('live-subscription-2', [
        { type: 'ForEveryone', data: { n: 2 }, metadata: { actor: 'live-subscription-spec' } },
      ]);
      await expect.poll(() => received.every((events) => events.length === 1)).toBe(true);
      // One query, where each subscriber read on its own before (ten).
      expect(reads).toBe(1);
      const [first] = received[0]!;
      expect(received.every(([event]) => event === first)).toBe(true);
      expect(Object.isFrozen(first!.data)).toBe(true);
    } finally {
      store.readAll = readAll;
      for (const subscription of subscriptions) subscription.unsubscribe();
    }
  });
});
