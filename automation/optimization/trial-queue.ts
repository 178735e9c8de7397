import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import PgBoss from 'pg-boss';
import { v5 as uuidv5 } from 'uuid';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import type { TrialSetup } from '../../core/optimization/trial.js';

/**
 * The job queue that spreads an optimization's trials over machines (ADR 029): pg-boss on the
 * PostgreSQL QCAT already uses, one queue, one job per trial. A job's id derives from
 * (optimization, trial), so a trial enqueued again (the leader resumed the run) is the same job
 * and inserted once. A job stays `active` while a worker runs it; a worker killed mid-trial stops
 * completing it, the job expires after `expireInSeconds` and pg-boss's maintenance puts it back
 * (`retry`), where any worker takes it again.
 */

export const TRIAL_QUEUE = 'qcat-optimization-trials';

/** One trial to run: everything a worker needs but the candles, which it loads once per run. */
export interface TrialJob {
  optimizationId: string;
  trial: number;
  parameters: JsonObject;
  setup: TrialSetup;
}

export interface TrialQueueOptions {
  connectionString: string;
  /** A trial running longer than this is thought lost and run again elsewhere (default 120 s). */
  expireInSeconds?: number;
  /** How often pg-boss looks for expired jobs (default: half the expiry, 1–10 s); one process at a time does. */
  maintenanceIntervalSeconds?: number;
  /** Connections pg-boss may hold (default 2). */
  connections?: number;
  log?: (message: string) => void;
}

/** A fixed namespace for trial job ids (uuid v5). */
const JOB_NAMESPACE = '5b0c8a62-8f4e-4d0b-9d8e-0a6c3f2e7d11';

export const trialJobId = (optimizationId: string, trial: number): string =>
  uuidv5(`${optimizationId}:${trial}`, JOB_NAMESPACE);

/**
 * Processes that open the queue at the same moment on a database without it (workers started
 * together) each create it, and PostgreSQL aborts one creation as a deadlock victim: that one
 * tries again, and finds the queue made (`createQueue` leaves an existing queue as it is).
 */
const createQueueRetry = retry(
  handleWhen((error) => (error as { code?: unknown }).code === '40P01'),
  { maxAttempts: 5, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) },
);

/** Expiries retried before a trial's job is given up (then the leader runs it itself). */
const RETRY_LIMIT = 100;

export class TrialQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly expireInSeconds: number,
  ) {}

  /** Starts pg-boss (creating its schema `pgboss` the first time) and the queue. */
  static async open(options: TrialQueueOptions): Promise<TrialQueue> {
    const boss = new PgBoss({
      connectionString: options.connectionString,
      max: options.connections ?? 2,
      application_name: 'qcat-trial-queue',
      maintenanceIntervalSeconds:
        options.maintenanceIntervalSeconds ??
        Math.max(1, Math.min(10, Math.floor((options.expireInSeconds ?? 120) / 2))),
      // Nothing here reads pg-boss's queue-state events or cron schedules.
      monitorStateIntervalSeconds: 3600,
      schedule: false,
    });
    boss.on('error', (error) => options.log?.(`trial queue: ${error.message}`));
    await boss.start();
    await createQueueRetry.execute(() =>
      boss.createQueue(TRIAL_QUEUE, { name: TRIAL_QUEUE, policy: 'standard' }),
    );
    return new TrialQueue(boss, options.expireInSeconds ?? 120);
  }

  /** Enqueues trials; one already queued (same optimization and index) is left as it is. */
  async enqueue(jobs: readonly TrialJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.boss.insert(
      jobs.map((data) => ({
        id: trialJobId(data.optimizationId, data.trial),
        name: TRIAL_QUEUE,
        data,
        expireInSeconds: this.expireInSeconds,
        retryLimit: RETRY_LIMIT,
        retryDelay: 0,
      })),
    );
  }

  /** Takes up to `count` waiting trials (marks them active). */
  fetch(count: number): Promise<PgBoss.Job<TrialJob>[]> {
    return this.boss.fetch<TrialJob>(TRIAL_QUEUE, { batchSize: count });
  }

  async complete(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.boss.complete(TRIAL_QUEUE, [...ids]);
  }

  /** Drops the trials of a run that ended and are still waiting or running. */
  async cancel(optimizationId: string, trials: readonly number[]): Promise<void> {
    if (trials.length > 0)
      await this.boss.cancel(
        TRIAL_QUEUE,
        trials.map((trial) => trialJobId(optimizationId, trial)),
      );
  }

  /** Trials waiting for a worker (queue depth): created or back for a retry, not active. */
  depth(): Promise<number> {
    return this.boss.getQueueSize(TRIAL_QUEUE);
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true, timeout: 5000 });
  }
}
