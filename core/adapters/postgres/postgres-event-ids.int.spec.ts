import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { CommandHandler } from '../../commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../../commands/idempotency.js';
import { desk } from '../../engine/desk.js';
import { snapshotSchemaOf } from '../../snapshot-schemas.js';
import { PostgresEventIdIndex } from './postgres-event-ids.js';
import { PostgresEventStore } from './postgres-event-store.js';
import { PostgresSnapshotStore } from './postgres-snapshot-store.js';

const T = 1_700_000_000_000;
const cancel = (id: string) => ({
  type: 'RequestCancel' as const,
  clientOrderId: id,
  reason: 'user',
  requestedAt: T,
});

describe('PostgreSQL event id index (ADR 032)', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase('eventids');
    store = await PostgresEventStore.connect({ connectionString: database.url });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('finds events of one stream by id, and none of another stream', async () => {
    const a = crypto.randomUUID();
    const b = crypto.randomUUID();
    await store.appendToStream('ids-1', [
      { eventId: a, type: 'X', data: {}, metadata: { actor: 't' } },
    ]);
    const { position } = await store.appendToStream('ids-2', [
      { eventId: b, type: 'X', data: {}, metadata: { actor: 't' } },
    ]);
    const index = new PostgresEventIdIndex(store.pool);
    expect(await index.find('ids-2', [a, b, crypto.randomUUID()])).toEqual([
      { eventId: b, revision: 0n, position },
    ]);
    expect(await index.find('ids-2', [])).toEqual([]);
  });

  it('answers a keyed retry after a crash from the index, with snapshots on', async () => {
    const options = {
      eventStore: store,
      eventIds: new PostgresEventIdIndex(store.pool),
      snapshots: {
        store: new PostgresSnapshotStore(store.pool),
        every: 2,
        schemaOf: snapshotSchemaOf,
      },
    };
    const plain = new CommandHandler({ ...options, idempotency: new InMemoryIdempotencyStore() });
    for (let i = 0; i < 5; i++)
      await plain.handle(desk, 'desk-ids', cancel(`m-${i}`), { actor: 'a' });
    const dying = new InMemoryIdempotencyStore();
    dying.complete = () => Promise.reject(new Error('killed'));
    const context = { actor: 'a', idempotencyKey: 'key-crash-1' };
    await expect(
      new CommandHandler({ ...options, idempotency: dying }).handle(
        desk,
        'desk-ids',
        cancel('m-keyed'),
        context,
      ),
    ).rejects.toThrow('killed');
    for (let i = 5; i < 10; i++)
      await plain.handle(desk, 'desk-ids', cancel(`m-${i}`), { actor: 'a' });
    const retry = new CommandHandler({ ...options, idempotency: new InMemoryIdempotencyStore() });
    const again = await retry.handle(desk, 'desk-ids', cancel('m-keyed'), context);
    const written = await store.readStream('desk-ids');
    expect(written).toHaveLength(11);
    expect(again).toEqual({
      streamId: 'desk-ids',
      nextExpectedRevision: 5n,
      position: written[5]?.position,
      eventCount: 1,
      replayed: true,
    });
  });
});
