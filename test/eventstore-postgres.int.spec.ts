import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { eventStoreContract } from './eventstore.contract.js';
import { createTestDatabase } from './support/test-database.js';

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
  };
});
