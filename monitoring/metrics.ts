import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Observable } from 'rxjs';
import { QcatError } from '../core/errors.js';
import type {
  AppendResult,
  EventStore,
  Position,
  RecordedEvent,
} from '../core/eventstore/event-store.js';
import { AllocationMetrics } from './allocation-metrics.js';
import { BusinessMetrics } from './business-metrics.js';

/** The newest successful backup, as the backup gauges show it. */
export interface LastBackup {
  completedAt: Date;
  durationSeconds: number;
  bytes: number;
}

/**
 * Every metric QCAT exports, in one registry. Names and labels are documented in
 * docs/metrics.md; dashboards and alert rules rely on them, so renaming one is a breaking change.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly httpInFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being handled now',
    registers: [this.registry],
  });

  readonly automationOutcomes = new Counter({
    name: 'automation_outcomes_total',
    help: 'Commands decided by process managers (ADR 010), by manager and result: acted, refused by the aggregate, or repeated (already issued for the same cause)',
    labelNames: ['manager', 'result'] as const,
    registers: [this.registry],
  });

  readonly automationEvaluations = new Counter({
    name: 'automation_evaluations_total',
    help: 'Decisions taken by process managers (ADR 010): causes handled and scheduled ticks run, by manager',
    labelNames: ['manager'] as const,
    registers: [this.registry],
  });

  readonly optimizationTrials = new Counter({
    name: 'optimization_trials_total',
    help: 'Optimization trials run and recorded by this process (rate: trials per second)',
    registers: [this.registry],
  });

  readonly optimizationsRunning = new Gauge({
    name: 'optimizations_running',
    help: 'Optimizations this process is running now (the leader of the optimizer runs them)',
    registers: [this.registry],
  });

  readonly optimizationsWaiting = new Gauge({
    name: 'optimizations_waiting',
    help: 'Optimizations requested and not yet started (queue depth), as the optimizer last saw it',
    registers: [this.registry],
  });

  readonly optimizationTrialsQueued = new Gauge({
    name: 'optimization_trials_queued',
    help: 'Optimization trials waiting in the job queue for a `qcat worker` (ADR 029), as the leader last saw it; 0 when trials run on its own threads',
    registers: [this.registry],
  });

  readonly optimizationProgressAt = new Gauge({
    name: 'optimization_last_progress_timestamp_seconds',
    help: 'When this process last recorded a batch of optimization trials or started a run (Unix seconds; 0: never)',
    registers: [this.registry],
  });

  readonly readCacheLookups = new Counter({
    name: 'http_read_cache_lookups_total',
    help: 'Read-model answer cache look-ups (ADR 009): hit, shared (waited for another request reading the same answer), miss, or bypass (the change notices cannot be heard)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** What the read cache holds now; set by the cache (api/read-cache.ts). */
  readCacheSize: () => number = () => 0;

  readonly readCacheBytes = new Gauge({
    name: 'http_read_cache_bytes',
    help: 'Approximate memory held by cached read-model answers',
    registers: [this.registry],
    collect: () => {
      this.readCacheBytes.set(this.readCacheSize());
    },
  });

  readonly websocketConnections = new Gauge({
    name: 'websocket_connections',
    help: 'Open WebSocket connections',
    registers: [this.registry],
  });

  readonly appendDuration = new Histogram({
    name: 'eventstore_append_duration_seconds',
    help: 'Time to append to the event store, including the group commit wait',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly appendErrors = new Counter({
    name: 'eventstore_append_errors_total',
    help: 'Appends that failed, by error code (CONCURRENCY_CONFLICT, ..., or UNEXPECTED)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly projectionLag = new Gauge({
    name: 'projection_lag_events',
    help: 'Head position minus the projection checkpoint (positions behind the log)',
    labelNames: ['projection'] as const,
    registers: [this.registry],
  });

  readonly projectionParked = new Gauge({
    name: 'projection_parked_events',
    help: 'Events a projection could not apply and parked in qcat_projection_parked (ADR 011)',
    labelNames: ['projection'] as const,
    registers: [this.registry],
  });

  readonly projectionStopped = new Gauge({
    name: 'projection_stopped',
    help: '1 while a projection is stopped on a failing event, else 0',
    labelNames: ['projection'] as const,
    registers: [this.registry],
  });

  /**
   * Set by the backup service: the newest backup in the backup folder, read at each scrape, so
   * the gauges are right after a restart and in every process, not only the one that took it.
   */
  backupSource: (() => Promise<LastBackup | undefined>) | undefined;
  private backupRead: Promise<void> | undefined;

  readonly backupLastSuccess = new Gauge({
    name: 'backup_last_success_timestamp_seconds',
    help: 'Unix time the newest successful backup completed; 0 until one did',
    registers: [this.registry],
    collect: () => this.readBackup(),
  });

  readonly backupLastDuration = new Gauge({
    name: 'backup_last_duration_seconds',
    help: 'How long the newest successful backup took',
    registers: [this.registry],
    collect: () => this.readBackup(),
  });

  readonly backupLastSize = new Gauge({
    name: 'backup_last_size_bytes',
    help: 'Bytes of segment files the newest successful backup wrote',
    registers: [this.registry],
    collect: () => this.readBackup(),
  });

  readonly backupFailures = new Counter({
    name: 'backup_failures_total',
    help: 'Backups (scheduled or not) this process started that failed',
    registers: [this.registry],
  });

  /** Set by the read model's retention job in the process that leads it (ADR 032). */
  readonly readModelArchivedRows = new Counter({
    name: 'read_model_archived_rows_total',
    help: 'Rows the scheduled retention job of this process moved from the trading read model to its archive',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly readModelRetentionLastSuccess = new Gauge({
    name: 'read_model_retention_last_success_timestamp_seconds',
    help: 'Unix time the scheduled retention job of this process last completed; 0 until it did',
    registers: [this.registry],
  });

  /** Set by the paper engine of the process that leads it (ops/paper-trading.ts). */
  readonly engineLastTick = new Gauge({
    name: 'engine_last_tick_timestamp_seconds',
    help: 'Unix time the paper engine of a portfolio last completed a tick, in the process that leads it',
    labelNames: ['portfolio', 'timeframe'] as const,
    registers: [this.registry],
  });

  readonly engineBarOpen = new Gauge({
    name: 'engine_bar_open_timestamp_seconds',
    help: 'Open time (Unix seconds) of the newest bar the paper engine of a portfolio has processed',
    labelNames: ['portfolio', 'timeframe'] as const,
    registers: [this.registry],
  });

  /** Strategies, orders, PnL, ... read from the read models at each scrape (business-metrics.ts). */
  readonly business = new BusinessMetrics(this.registry);

  /** Target and actual weight, drift, volatility per portfolio (allocation-metrics.ts). */
  readonly allocation = new AllocationMetrics(this.registry, this.business);

  /** With `readModels`, the business metrics read that database's `qcat_read` views. */
  constructor(options: { readModels?: pg.Pool } = {}) {
    collectDefaultMetrics({ register: this.registry });
    if (options.readModels) this.business.attach(options.readModels);
  }

  /** Sets the three backup gauges from one backup. */
  setLastBackup(backup: LastBackup): void {
    this.backupLastSuccess.set(backup.completedAt.getTime() / 1000);
    this.backupLastDuration.set(backup.durationSeconds);
    this.backupLastSize.set(backup.bytes);
  }

  /** One read of the backup folder per scrape, shared by the three gauges. */
  private readBackup(): Promise<void> {
    const source = this.backupSource;
    if (!source) return Promise.resolve();
    this.backupRead ??= source()
      .then((backup) => {
        if (backup) this.setLastBackup(backup);
      })
      .catch(() => undefined) // an unreadable folder keeps the last values; failures count runs
      .finally(() => {
        this.backupRead = undefined;
      });
    return this.backupRead;
  }

  /** The same store, with every append timed and every failure counted. */
  instrument(store: EventStore): EventStore {
    return new InstrumentedEventStore(store, this);
  }
}

class InstrumentedEventStore implements EventStore {
  constructor(
    private readonly store: EventStore,
    private readonly metrics: Metrics,
  ) {}

  async appendToStream(...args: Parameters<EventStore['appendToStream']>): Promise<AppendResult> {
    const end = this.metrics.appendDuration.startTimer();
    try {
      return await this.store.appendToStream(...args);
    } catch (error) {
      const code = error instanceof QcatError ? error.code : 'UNEXPECTED';
      this.metrics.appendErrors.inc({ code });
      throw error;
    } finally {
      end();
    }
  }

  readStream(...args: Parameters<EventStore['readStream']>): Promise<RecordedEvent[]> {
    return this.store.readStream(...args);
  }

  readAll(...args: Parameters<EventStore['readAll']>): Promise<RecordedEvent[]> {
    return this.store.readAll(...args);
  }

  subscribeToAll(...args: Parameters<EventStore['subscribeToAll']>): Observable<RecordedEvent> {
    return this.store.subscribeToAll(...args);
  }

  headPosition(): Promise<Position> {
    return this.store.headPosition();
  }

  positionAt(instant: Date): Promise<Position> {
    return this.store.positionAt(instant);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
