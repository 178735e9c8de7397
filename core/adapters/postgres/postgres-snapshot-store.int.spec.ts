import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { StateSnapshot } from '../../commands/snapshots.js';
import { migrate } from './migrations.js';
import { PostgresSnapshotStore } from './postgres-snapshot-store.js';

const snapshot = (revision: bigint, schema = 'desk/1'): StateSnapshot => ({
  schema,
  revision,
  eventId: '0190a5b4-0000-7000-8000-000000000001',
  position: revision + 10n,
  // Key order as folded (not sorted), a large and a fractional number.
  state: { zeta: 1, alpha: [1.5, 1e300], nested: { b: null, a: 'é😀' } },
});

describe('PostgreSQL snapshot store', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresSnapshotStore;

  beforeAll(async () => {
    database = await createTestDatabase('snapshots');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    await migrate(pool);
    store = new PostgresSnapshotStore(pool);
  });

  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it('returns the state exactly as saved, key order included', async () => {
    await store.save('desk-a', snapshot(5n));
    const loaded = await store.load('desk-a');
    expect(loaded).toEqual(snapshot(5n));
    expect(JSON.stringify(loaded?.state)).toBe(JSON.stringify(snapshot(5n).state));
    expect(await store.load('desk-none')).toBeUndefined();
  });

  it('keeps a later revision of the same schema; another schema or replace overwrites', async () => {
    await store.save('desk-b', snapshot(9n));
    await store.save('desk-b', snapshot(4n));
    expect((await store.load('desk-b'))?.revision).toBe(9n);
    await store.save('desk-b', snapshot(4n, 'desk/2'));
    expect(await store.load('desk-b')).toMatchObject({ revision: 4n, schema: 'desk/2' });
    await store.save('desk-b', snapshot(2n, 'desk/2'), true);
    expect((await store.load('desk-b'))?.revision).toBe(2n);
  });
});
