import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import { redact, type Config } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** The infrastructure one QCAT process runs on: its PostgreSQL and its event store. */
export interface Runtime {
  config: Config;
  /** PostgreSQL for read models (and the log, with the postgres event store). */
  databaseUrl: string;
  eventStore: EventStore;
  close(): Promise<void>;
}

/** DATABASE_URL, or the embedded PostgreSQL when it is not given. */
async function openDatabase(
  config: Config,
  log: Logger,
): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (config.DATABASE_URL) {
    log.info(`PostgreSQL: ${redact(config.DATABASE_URL)}`);
    return { url: config.DATABASE_URL };
  }
  log.info(
    `PostgreSQL: DATABASE_URL is not set; starting the embedded server in ${config.QCAT_DATA_DIR}`,
  );
  const embedded = await startEmbeddedPostgres({ dataDir: config.QCAT_DATA_DIR, persistent: true });
  log.info(`PostgreSQL: embedded server ready at ${redact(embedded.url)}`);
  return { url: embedded.url, embedded };
}

/**
 * Connects to what the configuration names. Says at start-up which of everything it uses, never
 * silently.
 */
export async function openRuntime(config: Config, log: Logger): Promise<Runtime> {
  const { url: databaseUrl, embedded } = await openDatabase(config, log);
  try {
    let eventStore: EventStore;
    if (config.EVENT_STORE === 'eventstoredb' && config.EVENTSTORE_URL) {
      // Loaded only when chosen: the gRPC client is heavy and most deployments do not need it.
      const { EventStoreDBEventStore } =
        await import('../core/adapters/eventstoredb/eventstoredb-event-store.js');
      eventStore = await EventStoreDBEventStore.connect({
        connectionString: config.EVENTSTORE_URL,
      });
      log.info(`event store: EventStoreDB at ${redact(config.EVENTSTORE_URL)}`);
    } else {
      eventStore = await PostgresEventStore.connect({ connectionString: databaseUrl });
      log.info('event store: PostgreSQL (migrations applied)');
    }
    if (config.REDIS_URL) log.info(`Redis: ${redact(config.REDIS_URL)}`);
    else log.warn('Redis: REDIS_URL is not set; Redis views and pub/sub are off');
    return {
      config,
      databaseUrl,
      eventStore,
      close: async () => {
        await eventStore.close();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}
