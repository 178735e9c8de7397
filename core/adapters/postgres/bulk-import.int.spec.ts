import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { verifyLog, verifyOptionsFor } from '../../audit/verify.js';
import type { RecordedEvent } from '../../eventstore/event-store.js';
import { BulkImportError, bulkImportIntoEmptyStore } from './bulk-import.js';
import { migrate } from './migrations.js';
import { PostgresEventStore } from './postgres-event-store.js';

/** Every row of the log's tables as PostgreSQL prints it, and the log's indexes. */
async function snapshot(pool: pg.Pool): Promise<Record<string, unknown>> {
  const one = async (sql: string): Promise<unknown> =>
    (await pool.query<{ value: unknown }>(sql)).rows[0]?.value;
  return {
    events: await one(
      `SELECT coalesce(string_agg(e::text, E'\\n' ORDER BY position), '') AS value FROM qcat_events e`,
    ),
    streams: await one(
      `SELECT coalesce(string_agg(s::text, E'\\n' ORDER BY stream_id), '') AS value FROM qcat_streams s`,
    ),
    head: await one(`SELECT h::text AS value FROM qcat_log_head h`),
    indexes: await one(
      `SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY indexrelid::regclass::text) AS value
         FROM pg_index WHERE indrelid = 'qcat_events'::regclass`,
    ),
  };
}

async function* inBatches(
  events: readonly RecordedEvent[],
  size: number,
): AsyncGenerator<RecordedEvent[]> {
  for (let start = 0; start < events.length; start += size) yield events.slice(start, start + size);
}

describe('bulk import into an empty PostgreSQL log', () => {
  let source: TestDatabase;
  let target: TestDatabase;
  let store: PostgresEventStore;
  let sourcePool: pg.Pool;
  let targetPool: pg.Pool;
  let events: RecordedEvent[];

  beforeAll(async () => {
    [source, target] = await Promise.all([
      createTestDatabase('bulk_source'),
      createTestDatabase('bulk_target'),
    ]);
    store = await PostgresEventStore.connect({ connectionString: source.url });
    sourcePool = new pg.Pool({ connectionString: source.url, max: 1 });
    targetPool = new pg.Pool({ connectionString: target.url, max: 2 });
    targetPool.on('error', () => undefined);
    const tricky = [
      null,
      'just a string',
      [1, 'two', { three: 3.5 }],
      { s: 'tab\there, newline\nthere, cr\rthere, back\\slash, "quotes", é 😀' },
    ];
    for (let i = 0; i < 40; i++) {
      await store.appendToStream(`bulk-${i % 3}`, [
        {
          type: i % 2 === 0 ? 'Even' : 'Odd',
          data: tricky[i % tricky.length],
          metadata: { actor: `tester\t${i % 2}`, correlationId: randomUUID() },
        },
      ]);
    }
    events = await store.readAll({ after: 0n, maxCount: 1000 });
    expect(events).toHaveLength(40);
    await migrate(targetPool);
  });

  afterAll(async () => {
    await store.close();
    await sourcePool.end();
    await targetPool.end();
    await Promise.all([source.drop(), target.drop()]);
  });

  it('rolls back a failed import: no event, every index back', async () => {
    const before = await snapshot(targetPool);
    const gap = [...events.slice(0, 10), ...events.slice(11)];
    await expect(bulkImportIntoEmptyStore(targetPool, inBatches(gap, 7))).rejects.toThrow(
      new BulkImportError(`stream bulk-1: revision 4 where 3 was expected`),
    );
    expect(await snapshot(targetPool)).toEqual(before);
  });

  it('refuses a log whose recordedAt goes back in time, and leaves the target as it was', async () => {
    const before = await snapshot(targetPool);
    const third = events[2]!;
    const earlier = { ...third, recordedAt: new Date(events[1]!.recordedAt.getTime() - 1) };
    const backwards = [...events.slice(0, 2), earlier, ...events.slice(3)];
    await expect(bulkImportIntoEmptyStore(targetPool, inBatches(backwards, 7))).rejects.toThrow(
      /position 3 was recorded at .*, before position 2 .*recordedAt must not decrease/,
    );
    expect(await snapshot(targetPool)).toEqual(before);
  });

  it('writes the log as it was, field for field, JSON null and control characters included', async () => {
    const result = await bulkImportIntoEmptyStore(targetPool, inBatches(events, 7));
    expect(result).toMatchObject({ events: 40, streams: 3, lastPosition: 40n });
    expect(await snapshot(targetPool)).toEqual(await snapshot(sourcePool));
    const restored = await PostgresEventStore.connect({
      connectionString: target.url,
      migrate: false,
    });
    try {
      expect(await restored.readAll({ after: 0n, maxCount: 1000 })).toEqual(events);
      const chain = await verifyLog(restored, verifyOptionsFor('postgres'));
      expect(chain.firstBroken).toBeNull();
      expect(chain.eventsChecked).toBe(40);
      expect(chain.digest).toBe((await verifyLog(store, verifyOptionsFor('postgres'))).digest);
      // positionAt bisects on positions: every event's instant maps to the last event recorded by
      // then, as on the source.
      for (const event of events) {
        expect(await restored.positionAt(event.recordedAt)).toBe(
          await store.positionAt(event.recordedAt),
        );
      }
    } finally {
      await restored.close();
    }
  });

  it('refuses a log that holds events, and leaves it as it was', async () => {
    const before = await snapshot(targetPool);
    await expect(bulkImportIntoEmptyStore(targetPool, inBatches(events, 7))).rejects.toThrow(
      /the target event log is not empty \(head at position 40\)/,
    );
    expect(await snapshot(targetPool)).toEqual(before);
  });
});
