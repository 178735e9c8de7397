import { InMemoryEventStore } from '../core/eventstore/in-memory-event-store.js';
import type { Position } from '../core/eventstore/event-store.js';
import { eventStoreContract, type TamperedField } from './eventstore.contract.js';

eventStoreContract('in-memory', () => {
  const store = new InMemoryEventStore();
  return Promise.resolve({
    store,
    connect: () => Promise.resolve(store.connect()),
    teardown: () => store.close(),
    tamper: (position: Position, field: TamperedField) => {
      const undo = store.tamperForTests(position, (event) => {
        switch (field) {
          case 'data':
            return { ...event, data: { tampered: true } };
          case 'metadata':
            return { ...event, metadata: { ...event.metadata, actor: 'mallory' } };
          case 'type':
            return { ...event, type: `${event.type}Forged` };
          case 'hash':
            return { ...event, hash: 'f'.repeat(64) };
        }
      });
      return Promise.resolve(() => {
        undo();
        return Promise.resolve();
      });
    },
  });
});
