import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../ops/config.js';
import { openRuntime, type Runtime } from '../ops/runtime.js';
import { app } from './app.js';

export interface RunningServer {
  fastify: FastifyInstance;
  runtime: Runtime;
  url: string;
  stop(): Promise<void>;
}

/** Starts QCAT: infrastructure, projections, then HTTP; `stop()` undoes them in reverse. */
export async function startServer(config: Config): Promise<RunningServer> {
  const fastify = Fastify({ logger: { level: config.LOG_LEVEL } });
  const log = {
    info: (message: string) => {
      fastify.log.info(message);
    },
    warn: (message: string) => {
      fastify.log.warn(message);
    },
  };
  const runtime = await openRuntime(config, log);
  try {
    await runtime.projections.start();
    await fastify.register(app, {
      eventStore: runtime.eventStore,
      eventStoreKind: config.EVENT_STORE,
    });
    const url = await fastify.listen({ port: config.PORT, host: config.HOST });
    return {
      fastify,
      runtime,
      url,
      stop: async () => {
        await fastify.close();
        await runtime.close();
      },
    };
  } catch (error) {
    await fastify.close();
    await runtime.close();
    throw error;
  }
}
