import { hostname } from 'node:os';
import type pg from 'pg';
import type PgBoss from 'pg-boss';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import {
  TrialResultStore,
  type StoredTrial,
} from '../../core/adapters/postgres/trial-result-store.js';
import { toError } from '../../core/errors.js';
import type { Candle } from '../../core/market/types.js';
import type { TrialSetup } from '../../core/optimization/trial.js';
import { defaultThreads, TrialPool } from './trial-pool.js';
import type { TrialJob, TrialQueue } from './trial-queue.js';

/**
 * What `qcat worker` runs (ADR 029): takes trials from the queue, as many at a time as it has
 * threads, runs them on a pool of worker threads holding the optimization's candles (loaded once
 * per optimization from PostgreSQL, shared by the threads), writes each result keyed by
 * (optimization, trial) and completes the job. A trial whose result is stored already (it ran
 * elsewhere) is completed without running. It says it is alive every `beatSeconds`.
 */

export interface TrialConsumerDeps {
  pool: pg.Pool;
  queue: TrialQueue;
  threads?: number;
  /** Idle wait between two looks at an empty queue (default 250 ms). */
  pollMs?: number;
  beatSeconds?: number;
  workerId?: string;
  log?: (message: string) => void;
}

/** Candles of one window as the leader loads them (executor.ts): the same rows, the same order. */
export async function windowCandles(market: MarketDataStore, setup: TrialSetup): Promise<Candle[]> {
  const candles: Candle[] = [];
  for await (const candle of market.readCandles({
    symbol: setup.symbol,
    timeframe: setup.timeframe,
    from: setup.from,
    to: setup.to,
  }))
    candles.push(candle);
  return candles;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class TrialConsumer {
  readonly workerId: string;
  private readonly store: TrialResultStore;
  private readonly market: MarketDataStore;
  private readonly threads: number;
  private current: { optimizationId: string; pool: TrialPool } | null = null;
  /** Trials this worker ran and stored (a result written by another first does not count). */
  trialsRun = 0;

  constructor(private readonly deps: TrialConsumerDeps) {
    this.threads = deps.threads ?? defaultThreads();
    this.workerId = deps.workerId ?? `${hostname()}:${process.pid}`;
    this.store = new TrialResultStore(deps.pool);
    this.market = new MarketDataStore(deps.pool);
  }

  /** Runs until `signal` aborts; then finishes the trials in hand and leaves. */
  async run(signal: AbortSignal): Promise<void> {
    const seen = {
      worker: this.workerId,
      host: hostname(),
      pid: process.pid,
      threads: this.threads,
    };
    await this.store.beat(seen);
    const beat = setInterval(
      () => {
        this.store.beat(seen).catch((error: unknown) => {
          this.deps.log?.(`worker: heartbeat failed: ${toError(error).message}`);
        });
      },
      (this.deps.beatSeconds ?? 2) * 1000,
    );
    try {
      while (!signal.aborted) {
        let jobs: PgBoss.Job<TrialJob>[] = [];
        try {
          jobs = await this.deps.queue.fetch(this.threads);
        } catch (error) {
          this.deps.log?.(`worker: fetching trials failed: ${toError(error).message}`);
        }
        if (jobs.length === 0) {
          await sleep(this.deps.pollMs ?? 250, signal);
          continue;
        }
        await this.runJobs(jobs);
      }
    } finally {
      clearInterval(beat);
      await this.current?.pool.close();
      this.current = null;
      await this.store.leave(this.workerId).catch(() => undefined);
    }
  }

  private async poolFor(job: TrialJob): Promise<TrialPool> {
    if (this.current?.optimizationId === job.optimizationId) return this.current.pool;
    await this.current?.pool.close();
    this.current = null;
    const candles = await windowCandles(this.market, job.setup);
    const pool = new TrialPool(job.setup, candles, this.threads);
    this.current = { optimizationId: job.optimizationId, pool };
    this.deps.log?.(
      `worker: optimization ${job.optimizationId}: ${candles.length} candles loaded for ${this.threads} threads`,
    );
    return pool;
  }

  private async runJobs(jobs: readonly PgBoss.Job<TrialJob>[]): Promise<void> {
    // One optimization at a time in the pool (the leader runs one at a time anyway).
    const runs = new Map<string, PgBoss.Job<TrialJob>[]>();
    for (const job of jobs)
      runs.set(job.data.optimizationId, [...(runs.get(job.data.optimizationId) ?? []), job]);
    for (const [optimizationId, mine] of runs) {
      const done = await this.store.has(
        optimizationId,
        mine.map((job) => job.data.trial),
      );
      const pool = await this.poolFor(mine[0]?.data as TrialJob);
      await Promise.all(mine.map((job) => this.runJob(pool, job, done.has(job.data.trial))));
    }
  }

  private async runJob(pool: TrialPool, job: PgBoss.Job<TrialJob>, done: boolean): Promise<void> {
    const { optimizationId, trial } = job.data;
    if (!done) {
      this.deps.log?.(`worker: trial ${optimizationId}#${trial} started`);
      let result: StoredTrial;
      try {
        result = { run: await pool.run(job.data.parameters) };
      } catch (error) {
        result = { error: toError(error).message };
      }
      if (await this.store.save(optimizationId, trial, result, this.workerId)) this.trialsRun++;
      this.deps.log?.(`worker: trial ${optimizationId}#${trial} stored`);
    }
    await this.deps.queue.complete([job.id]);
  }
}
