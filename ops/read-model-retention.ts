/**
 * The trading read model's retention on a schedule (issue 22, ADR 032): what
 * `qcat projections archive --older-than-days N` does by hand, run by itself when the operator
 * sets `QCAT_READ_MODEL_RETENTION_DAYS`. Off by default: archived rows leave the default answers
 * of the API (they stay behind `history=true`), so a deployment opts in. Only the process holding
 * the schedule's advisory lock runs it (BackupScheduler), as the other scheduled jobs.
 */
import type pg from 'pg';
import { BackupScheduler } from '../backup/schedule.js';
import type { Metrics } from '../monitoring/metrics.js';
import {
  ARCHIVED_TABLES,
  archiveTrading,
  type ArchiveResult,
} from '../projections/retention-queries.js';

const DAY_MS = 86_400_000;

/** What a run moved, in the words of the job's log and of the CLI command. */
export const describeArchive = (result: ArchiveResult, days: number): string =>
  `trading: archived ${result.moved.orders} orders, ${result.moved.fills} fills and ${result.moved.portfolio_equity} valuations older than ${days} days`;

export interface ReadModelRetentionOptions {
  pool: pg.Pool;
  /** The schedule's lock connection. */
  connectionString: string;
  /** The horizon; undefined: the job is off. */
  days: number | undefined;
  schedule: string;
  log: { info(message: string): void; warn(message: string): void };
  metrics: Pick<Metrics, 'readModelArchivedRows' | 'readModelRetentionLastSuccess'>;
  now?: () => Date;
}

export class ReadModelRetention {
  private scheduler: BackupScheduler | undefined;

  constructor(private readonly options: ReadModelRetentionOptions) {}

  /** Whether a schedule runs in this process (led here or elsewhere). */
  get scheduled(): boolean {
    return this.scheduler !== undefined;
  }

  /** One run: moves what is older than the horizon, logs and counts it. */
  async run(days: number): Promise<ArchiveResult> {
    const { log, metrics } = this.options;
    const now = (this.options.now ?? (() => new Date()))();
    const started = Date.now();
    const result = await archiveTrading(this.options.pool, new Date(now.getTime() - days * DAY_MS));
    for (const table of ARCHIVED_TABLES)
      metrics.readModelArchivedRows.labels(table).inc(result.moved[table]);
    metrics.readModelRetentionLastSuccess.set(Date.now() / 1000);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    log.info(`read model retention: ${describeArchive(result, days)} in ${seconds} s`);
    return result;
  }

  /** Starts the schedule when a horizon is set; says at start-up which it is. */
  async start(): Promise<void> {
    if (this.scheduler) return;
    const { days, log } = this.options;
    if (days === undefined) {
      log.info(
        'read model retention: off (QCAT_READ_MODEL_RETENTION_DAYS unset); `qcat projections archive` archives by hand',
      );
      return;
    }
    this.scheduler = new BackupScheduler({
      expression: this.options.schedule,
      connectionString: this.options.connectionString,
      lockKey: 'qcat.read_model.retention',
      log: (message) => {
        log.info(message.replace(/^backups:/, `read model retention (older than ${days} days):`));
      },
      run: async () => {
        await this.run(days).catch((error: unknown) => {
          log.warn(
            `read model retention: the scheduled archive failed: ${(error as Error).message}`,
          );
        });
      },
    });
    await this.scheduler.start();
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    this.scheduler = undefined;
  }
}
