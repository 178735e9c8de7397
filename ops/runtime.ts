import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type pg from 'pg';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { createPool } from '../core/adapters/postgres/pool.js';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresEventIdIndex } from '../core/adapters/postgres/postgres-event-ids.js';
import { PostgresSnapshotStore } from '../core/adapters/postgres/postgres-snapshot-store.js';
import { snapshotSchemaOf } from '../core/snapshot-schemas.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import { registerMarketMetrics } from '../monitoring/market-metrics.js';
import { Metrics } from '../monitoring/metrics.js';
import { ProcessManagerService } from '../automation/process-manager-service.js';
import { automationGate } from '../automation/gate.js';
import type { ProcessManager } from '../automation/process-manager.js';
import { allProcessManagers } from '../automation/registry.js';
import { TrialQueue } from '../automation/optimization/trial-queue.js';
import { queuedTrials } from '../automation/optimization/trial-runners.js';
import { haltedPortfolios } from '../projections/automation.js';
import { ProjectionService } from '../projections/projection-service.js';
import { allProjections } from '../projections/registry.js';
import { backupDir, type BackupService } from '../backup/backup-service.js';
import type { BackupExtras } from '../backup/extras.js';
import { backupExtrasFor, backupServiceFor } from './backup-wiring.js';
import { BackupMaintenance, registerMaintenanceMetrics } from '../backup/maintenance.js';
import { isUnavailable } from '../core/adapters/unavailable.js';
import { verifyOptionsFor } from '../core/audit/verify.js';
import { ChainVerification, registerChainMetrics } from './chain-verification.js';
import { redact, type Config } from './config.js';
import { ReadModelRetention } from './read-model-retention.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** The infrastructure one QCAT process runs on. */
export interface Runtime {
  config: Config;
  /** PostgreSQL for read models (and the log, with the postgres event store). */
  databaseUrl: string;
  pool: pg.Pool;
  eventStore: EventStore;
  redis: Redis | undefined;
  commands: CommandHandler;
  projections: ProjectionService;
  /** Process managers (ADR 010): built here, started by `serve` after the projections. */
  automation: ProcessManagerService;
  metrics: Metrics;
  backups: BackupService;
  /** Scheduled verify and restore drill; `serve` starts them (leader only). */
  maintenance: BackupMaintenance;
  /** Market-data snapshots, the weekly configuration backup, the second copy (leader only). */
  backupExtras: BackupExtras;
  /** The scheduled incremental hash-chain verify; `serve` starts it (leader only). */
  chainVerification: ChainVerification;
  /** The trading read model's archive on a schedule (`serve` starts it; off unless configured). */
  readModelRetention: ReadModelRetention;
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

async function openEventStore(
  config: Config,
  databaseUrl: string,
  log: Logger,
): Promise<EventStore> {
  if (config.EVENT_STORE === 'eventstoredb' && config.EVENTSTORE_URL) {
    // Loaded only when chosen: the gRPC client is heavy and most deployments do not need it.
    const { EventStoreDBEventStore } =
      await import('../core/adapters/eventstoredb/eventstoredb-event-store.js');
    const store = await EventStoreDBEventStore.connect({ connectionString: config.EVENTSTORE_URL });
    log.info(`event store: EventStoreDB at ${redact(config.EVENTSTORE_URL)}`);
    return store;
  }
  const store = await PostgresEventStore.connect({
    connectionString: databaseUrl,
    poolSize: config.DATABASE_POOL_MAX,
  });
  log.info('event store: PostgreSQL');
  return store;
}

/**
 * Redis is optional (hot views, the shared rate limit): while it is away a command must fail at
 * once, so that its caller falls back, rather than wait in a queue. Reconnects forever, at least
 * once a second.
 */
const REDIS_OPTIONS = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 1000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
} satisfies RedisOptions;

async function openRedis(config: Config, log: Logger): Promise<Redis | undefined> {
  if (!config.REDIS_URL) {
    log.warn('Redis: REDIS_URL is not set; Redis views and pub/sub are off');
    return undefined;
  }
  const redis = new Redis(config.REDIS_URL, REDIS_OPTIONS);
  // Reported once per outage; the users of the connection each fall back on their own.
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) log.warn(`Redis: ${error.message}; degraded until it answers again`);
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info('Redis: answers again');
    down = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    // Not there (yet): start degraded, as if it had gone away later (ADR 017); ioredis goes on
    // reconnecting. Anything else (a refused password, say) is a configuration to fix: stop.
    if (!isUnavailable(error)) {
      redis.disconnect(); // no reconnecting in the background of a start that failed
      throw error;
    }
    down = true;
    log.warn(
      `Redis: ${redact(config.REDIS_URL)} does not answer at start-up; starting degraded, connecting when it answers`,
    );
  }
  if (!down)
    log.info(`Redis: ${redact(config.REDIS_URL)} (key prefix ${config.QCAT_REDIS_PREFIX})`);
  return redis;
}

/**
 * Connects to what the configuration names and says at start-up which of everything it uses,
 * never silently. Projections are built but not started: `serve` starts them, the CLI may not.
 */
export async function openRuntime(config: Config, log: Logger): Promise<Runtime> {
  const { url: databaseUrl, embedded } = await openDatabase(config, log);
  const closers: Closer[] = [async () => embedded?.stop()];
  const close = async (): Promise<void> => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
  };
  const building: Building = { config, log, databaseUrl, closers };
  try {
    const pool = await openPool(building);
    const metrics = new Metrics({ readModels: pool });
    registerMarketMetrics(metrics.registry, pool);
    const eventStore = metrics.instrument(await openEventStore(config, databaseUrl, log));
    closers.push(() => eventStore.close());
    const redis = await openRedis(config, log);
    if (redis)
      closers.push(async () => {
        await redis.quit().catch(() => {
          redis.disconnect();
        });
      });
    const commands = commandHandlerFor(config, eventStore, pool);
    const projections = projectionsFor(building, { pool, eventStore, redis });
    const automation = automationFor(building, { pool, eventStore, commands, metrics });
    const backupExtras = backupExtrasFor(config, { pool, databaseUrl, log });
    closers.push(() => backupExtras.stop());
    const backups = backupsFor(building, { pool, eventStore, metrics, backupExtras });
    const maintenance = maintenanceFor(building, metrics);
    const chainVerification = chainVerificationFor(building, eventStore, metrics);
    const readModelRetention = readModelRetentionFor(building, pool, metrics);
    return {
      config,
      databaseUrl,
      pool,
      eventStore,
      redis,
      commands,
      projections,
      automation,
      metrics,
      backups,
      maintenance,
      backupExtras,
      chainVerification,
      readModelRetention,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

type Closer = () => Promise<unknown>;

/**
 * What every step of `openRuntime` is given: the configuration, the start-up log, the database
 * and the closers so far. A step that opens something pushes its closer; `close` runs them in
 * reverse, so each part stops before what it was built on.
 */
interface Building {
  config: Config;
  log: Logger;
  databaseUrl: string;
  closers: Closer[];
}

/** The pool of the database, its schema brought up to date first. */
async function openPool({ config, log, databaseUrl, closers }: Building): Promise<pg.Pool> {
  const pool = createPool({ connectionString: databaseUrl, max: config.DATABASE_POOL_MAX });
  closers.push(() => pool.end());
  const applied = await migrate(pool);
  log.info(
    applied.length > 0
      ? `PostgreSQL: applied migrations ${applied.join(', ')}`
      : 'PostgreSQL: schema up to date',
  );
  await ensureMarketSchema(pool); // market data lives beside the log, not in it (ADR 007)
  return pool;
}

function commandHandlerFor(config: Config, eventStore: EventStore, pool: pg.Pool): CommandHandler {
  return new CommandHandler({
    eventStore,
    idempotency: new PostgresIdempotencyStore(pool, config.IDEMPOTENCY_LEASE_SECONDS),
    // A keyed command finds its earlier events by id, not by reading its stream (ADR 032).
    ...(config.EVENT_STORE === 'postgres' ? { eventIds: new PostgresEventIdIndex(pool) } : {}),
    ...(config.SNAPSHOT_EVERY > 0
      ? {
          snapshots: {
            store: new PostgresSnapshotStore(pool),
            every: config.SNAPSHOT_EVERY,
            schemaOf: snapshotSchemaOf,
          },
        }
      : {}),
  });
}

/** The read models, built but not started; those that need Redis are off without it, and said so. */
function projectionsFor(
  { config, log, databaseUrl, closers }: Building,
  { pool, eventStore, redis }: { pool: pg.Pool; eventStore: EventStore; redis: Redis | undefined },
): ProjectionService {
  const projections = new ProjectionService({
    pool,
    connectionString: databaseUrl,
    eventStore,
    projections: allProjections(config.QCAT_REDIS_PREFIX),
    ...(redis ? { redis } : {}),
    redisPrefix: config.QCAT_REDIS_PREFIX,
    // The PostgreSQL log lives in this database (wrapped for metrics): rebuilds may use SQL.
    logInDatabase: config.EVENT_STORE === 'postgres',
    instanceId: `${hostname()}:${process.pid}`,
    log: (message) => {
      log.info(message);
    },
  });
  closers.push(() => projections.stop());
  if (projections.skipped.length > 0)
    log.warn(`projections off without Redis: ${projections.skipped.join(', ')}`);
  return projections;
}

/** What the process managers act on. */
interface AutomationParts {
  pool: pg.Pool;
  eventStore: EventStore;
  commands: CommandHandler;
  metrics: Metrics;
}

/** The process managers (ADR 010), built but not started: `serve` starts them after the projections. */
function automationFor(building: Building, parts: AutomationParts): ProcessManagerService {
  const { config, log, databaseUrl, closers } = building;
  const { pool, eventStore, commands, metrics } = parts;
  const market = new MarketDataStore(pool);
  const automation = new ProcessManagerService({
    pool,
    connectionString: databaseUrl,
    eventStore,
    commands,
    managers: managersFor(building, parts, market),
    gate: automationGate(commands, () => haltedPortfolios(pool)),
    ...(config.AUTOMATION_CLOCK === 'market'
      ? {
          clock: async () => {
            const close = await market.latestCloseTime('1h');
            return close === undefined ? undefined : new Date(close);
          },
        }
      : {}),
    ...(config.AUTOMATION_TICK_MS ? { tickMs: config.AUTOMATION_TICK_MS } : {}),
    instanceId: `${hostname()}:${process.pid}`,
    onOutcome: (outcome) => {
      metrics.automationOutcomes.inc({ manager: outcome.manager, result: outcome.result });
    },
    onEvaluation: (manager) => {
      metrics.automationEvaluations.inc({ manager });
    },
    log: (message) => {
      log.info(message);
    },
  });
  closers.push(() => automation.stop());
  return automation;
}

/** Every process manager of the registry, with the optimizer's trials and figures wired in. */
function managersFor(
  building: Building,
  { pool, eventStore, commands, metrics }: AutomationParts,
  market: MarketDataStore,
): ProcessManager[] {
  const { log, closers } = building;
  let optimizationsRunning = 0;
  return allProcessManagers({
    commands,
    pool,
    market,
    eventStore,
    onStop: (stop) => closers.push(stop),
    optimizationTrials: queuedTrials({
      pool,
      queue: trialQueueOf(building),
      onQueueDepth: (depth) => {
        metrics.optimizationTrialsQueued.set(depth);
      },
      log: (message) => {
        log.info(message);
      },
    }),
    onOptimizationBatch: (trials) => {
      metrics.optimizationTrials.inc(trials);
      metrics.optimizationProgressAt.set(Date.now() / 1000);
    },
    onOptimizationLoad: (running, waiting) => {
      // A run that starts counts as progress: the stall alert measures from here.
      if (running > optimizationsRunning) metrics.optimizationProgressAt.set(Date.now() / 1000);
      optimizationsRunning = running;
      metrics.optimizationsRunning.set(running);
      metrics.optimizationsWaiting.set(waiting);
    },
    log: (message) => {
      log.info(message);
    },
  });
}

/**
 * Opens the trial queue on first use. Trials go through the job queue while a `qcat worker` is
 * alive (ADR 029); pg-boss starts on first use. Closed after the optimizer has stopped (closers
 * run in reverse).
 */
function trialQueueOf({ config, log, databaseUrl, closers }: Building): () => Promise<TrialQueue> {
  let trialQueue: Promise<TrialQueue> | null = null;
  closers.push(async () => {
    if (trialQueue) await (await trialQueue).close();
  });
  return () =>
    (trialQueue ??= TrialQueue.open({
      connectionString: databaseUrl,
      expireInSeconds: config.QCAT_TRIAL_EXPIRE_SECONDS,
      log: (message) => {
        log.warn(message);
      },
    }).catch((error: unknown) => {
      trialQueue = null;
      throw error;
    }));
}

/** Backups: `serve` starts the schedule (leader only); CLI commands run them one at a time. */
function backupsFor(
  { config, log, databaseUrl, closers }: Building,
  parts: { pool: pg.Pool; eventStore: EventStore; metrics: Metrics; backupExtras: BackupExtras },
): BackupService {
  const backups = backupServiceFor(config, {
    store: parts.eventStore,
    pool: parts.pool,
    databaseUrl,
    metrics: parts.metrics,
    log,
    afterScheduled: (backupId) => parts.backupExtras.afterScheduledBackup(backupId),
  });
  closers.push(() => backups.stop());
  return backups;
}

/** The scheduled verify and restore drill of the backups, with their metrics. */
function maintenanceFor(
  { config, log, databaseUrl, closers }: Building,
  metrics: Metrics,
): BackupMaintenance {
  const maintenance = new BackupMaintenance({
    dir: backupDir(config),
    connectionString: databaseUrl,
    verifySchedule: config.QCAT_BACKUP_VERIFY_SCHEDULE,
    drillSchedule: config.QCAT_RESTORE_DRILL_SCHEDULE,
    drillUrl: config.QCAT_RESTORE_DRILL_URL,
    copyDir: config.QCAT_BACKUP_COPY_DIR,
    redisPrefix: config.QCAT_REDIS_PREFIX,
    log,
  });
  registerMaintenanceMetrics(metrics.registry, backupDir(config));
  closers.push(() => maintenance.stop());
  return maintenance;
}

/** The scheduled incremental verify of the hash chain, with its metrics. */
function chainVerificationFor(
  { config, log, databaseUrl, closers }: Building,
  eventStore: EventStore,
  metrics: Metrics,
): ChainVerification {
  const chainVerification = new ChainVerification({
    dir: backupDir(config),
    store: eventStore,
    verify: verifyOptionsFor(config.EVENT_STORE),
    connectionString: databaseUrl,
    schedule: config.QCAT_AUDIT_VERIFY_SCHEDULE,
    log,
  });
  registerChainMetrics(metrics.registry, backupDir(config));
  closers.push(() => chainVerification.stop());
  return chainVerification;
}

function readModelRetentionFor(
  { config, log, databaseUrl, closers }: Building,
  pool: pg.Pool,
  metrics: Metrics,
): ReadModelRetention {
  const readModelRetention = new ReadModelRetention({
    pool,
    connectionString: databaseUrl,
    days: config.QCAT_READ_MODEL_RETENTION_DAYS,
    schedule: config.QCAT_READ_MODEL_RETENTION_SCHEDULE,
    log,
    metrics,
  });
  closers.push(() => readModelRetention.stop());
  return readModelRetention;
}
