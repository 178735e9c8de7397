import { InMemoryEventStore } from '../core/eventstore/in-memory-event-store.js';
import { eventStoreContract } from './eventstore.contract.js';

eventStoreContract('in-memory', () => {
  const store = new InMemoryEventStore();
  return Promise.resolve({
    store,
    connect: () => Promise.resolve(store.connect()),
    teardown: () => store.close(),
  });
});
