import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { eventStoreContract } from './eventstore.contract.js';
import { createTestDatabase } from './support/test-database.js';

/** How each field is edited in place: what someone with UPDATE on qcat_events could do. */
const EDITS = {
  data: `data = jsonb_build_object('tampered', true)`,
  metadata: `metadata = jsonb_set(metadata, '{actor}', '"mallory"')`,
  type: `type = type || 'Forged'`,
  hash: `hash = repeat('f', 64)`,
} as const;

eventStoreContract('PostgreSQL', async () => {
  const database = await createTestDatabase('eventstore');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  return {
    store,
    connect: () => PostgresEventStore.connect({ connectionString: database.url, poolSize: 2 }),
    teardown: async () => {
      await store.close();
      await database.drop();
    },
    tamper: async (position, field) => {
      const { rows } = await store.pool.query<{
        data: string;
        metadata: string;
        type: string;
        hash: string;
      }>('SELECT data::text, metadata::text, type, hash FROM qcat_events WHERE position = $1', [
        String(position),
      ]);
      const original = rows[0];
      if (!original) throw new Error(`no event at ${position.toString()}`);
      await store.pool.query(`UPDATE qcat_events SET ${EDITS[field]} WHERE position = $1`, [
        String(position),
      ]);
      return async () => {
        await store.pool.query(
          `UPDATE qcat_events SET data = $2::jsonb, metadata = $3::jsonb, type = $4, hash = $5
            WHERE position = $1`,
          [String(position), original.data, original.metadata, original.type, original.hash],
        );
      };
    },
  };
});
