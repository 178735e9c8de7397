import type { FastifyInstance } from 'fastify';
import type { EventStore } from '../core/eventstore/event-store.js';

export interface AppOptions {
  eventStore: EventStore;
  eventStoreKind: string;
}

/** The QCAT HTTP application as a Fastify plugin; `server.ts` owns the listening instance. */
export function app(fastify: FastifyInstance, options: AppOptions): Promise<void> {
  fastify.get('/health', async (_request, reply) => {
    try {
      const head = await options.eventStore.headPosition();
      return await reply.send({
        status: 'ok',
        eventStore: options.eventStoreKind,
        headPosition: head.toString(),
      });
    } catch (error) {
      fastify.log.error({ err: error }, 'health check: event store unreachable');
      return reply.code(503).type('application/problem+json').send({
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        code: 'EVENT_STORE_UNAVAILABLE',
        detail: 'the event store does not answer',
      });
    }
  });
  return Promise.resolve();
}
