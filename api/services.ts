import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { ProcessManagerService } from '../automation/process-manager-service.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import type { Metrics } from '../monitoring/metrics.js';
import type { ProjectionService } from '../projections/projection-service.js';

/** The settings the HTTP application reads (ops/config.ts parses them). */
export interface ApiConfig {
  EVENT_STORE: 'postgres' | 'eventstoredb';
  CORS_ORIGINS: string[];
  AUTH_FAILURES_PER_MINUTE: number;
  RATE_LIMIT_PER_MINUTE: number;
  READ_CACHE_MB: number;
  READY_MAX_LAG: number;
  QCAT_REDIS_PREFIX: string;
  /** Where the backups and the scheduled jobs' records are (the backups read route). */
  QCAT_BACKUP_DIR?: string | undefined;
  QCAT_DATA_DIR: string;
  QCAT_RESTORE_DRILL_SCHEDULE: string;
  QCAT_RESTORE_DRILL_URL?: string | undefined;
  /** What automation reads as now (ADR 030). */
  AUTOMATION_CLOCK: 'wall' | 'market';
}

/**
 * What the HTTP application uses of the running system (ADR 027). The composition root
 * (ops/runtime.ts, ops/server.ts) builds it and hands it to `app`; nothing under api/ imports
 * ops/. Each route plugin takes `Pick<ApiServices, …>` of what it uses, so its signature says
 * which services it reaches.
 */
export interface ApiServices {
  config: ApiConfig;
  /** PostgreSQL for read models (the read-model change notices are heard on it). */
  databaseUrl: string;
  pool: pg.Pool;
  eventStore: EventStore;
  redis: Redis | undefined;
  commands: CommandHandler;
  projections: ProjectionService;
  /** Process managers: read-your-writes for their effects, and what holds the capabilities. */
  automation: Pick<ProcessManagerService, 'waitFor' | 'held' | 'managersOf' | 'ticked'>;
  metrics: Metrics;
}

/** What the strategy routes use (named here to keep their signature on one line). */
export type StrategyRouteServices = Pick<
  ApiServices,
  'automation' | 'commands' | 'config' | 'pool' | 'projections' | 'redis'
>;

/** What the optimization routes use. */
export type OptimizationServices = Pick<ApiServices, 'commands' | 'pool' | 'projections'>;
