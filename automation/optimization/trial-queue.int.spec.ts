import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { TrialQueue } from './trial-queue.js';

/**
 * `qcat worker` processes started together (a deployment scaling out, a restart of all) open the
 * queue at the same moment on a database that has none yet: pg-boss's queue creation then
 * deadlocks in PostgreSQL, which aborts one of them. Seen as a worker exiting with "deadlock
 * detected" at start in a CI run; each must open the queue.
 */
describe('the trial queue, opened by several processes at once', () => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.drop();
  });

  it('opens for every one of them on a fresh database, five times over', async () => {
    for (let round = 0; round < 5; round++) {
      const database = await createTestDatabase(`trial_queue_${String(round)}`);
      databases.push(database);
      const opened = await Promise.allSettled(
        Array.from({ length: 4 }, () =>
          TrialQueue.open({ connectionString: database.url, connections: 1 }),
        ),
      );
      const failures = opened.flatMap((result) =>
        result.status === 'rejected' ? [String(result.reason)] : [],
      );
      for (const result of opened) if (result.status === 'fulfilled') await result.value.close();
      expect(failures).toEqual([]);
    }
  });
});
