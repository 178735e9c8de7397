import type pg from 'pg';
import { TrialResultStore } from '../../core/adapters/postgres/trial-result-store.js';
import type { Candle } from '../../core/market/types.js';
import type { PendingTrial } from '../../core/optimization/search.js';
import type { TrialSetup } from '../../core/optimization/trial.js';
import type { TrialRun } from '../../core/optimization/walk-forward.js';
import { TrialPool } from './trial-pool.js';
import type { TrialQueue } from './trial-queue.js';

/**
 * How the leader's executor gets a batch of trials run (ADR 013, ADR 029): on its own worker
 * threads (`LocalTrials`, the single-process path), or through the job queue by `qcat worker`
 * processes on any machine (`QueuedTrials`) — chosen batch by batch: while no worker is seen, a
 * batch runs here exactly as in a single process. Either way the answers come back in the batch's
 * order and the search records them the same way, so the result is the same bits.
 */
export interface TrialRunner {
  /**
   * The runs in the batch's order (null: not run); 'interrupted' when the run's signal aborted.
   * `discard` aborts when the batch is no longer wanted (one run ahead, then the search stopped):
   * the runner stops as soon as it can, and what it answers or throws then is dropped.
   */
  runBatch(
    batch: readonly PendingTrial[],
    discard?: AbortSignal,
  ): Promise<(TrialRun | null)[] | 'interrupted'>;
  /** `ended`: the optimization is over (completed, failed, cancelled), not merely interrupted. */
  close(ended: boolean): Promise<void>;
}

export type TrialRunnerFactory = (
  optimizationId: string,
  setup: TrialSetup,
  candles: readonly Candle[],
  threads: number | undefined,
  signal: AbortSignal | undefined,
) => TrialRunner;

/** The single-process path: a pool of worker threads sharing the candles. */
export class LocalTrials implements TrialRunner {
  private pool: TrialPool | null = null;

  constructor(
    private readonly setup: TrialSetup,
    private readonly candles: readonly Candle[],
    private readonly threads?: number,
  ) {}

  private threadPool(): TrialPool {
    this.pool ??= new TrialPool(this.setup, this.candles, this.threads);
    return this.pool;
  }

  runBatch(batch: readonly PendingTrial[], discard?: AbortSignal): Promise<(TrialRun | null)[]> {
    return this.threadPool().runAll(
      batch.map((p) => p.parameters),
      discard,
    );
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }
}

export const localTrials: TrialRunnerFactory = (_id, setup, candles, threads) =>
  new LocalTrials(setup, candles, threads);

export interface QueuedTrialsDeps {
  pool: pg.Pool;
  /** The queue, opened on first use and shared by every run of the process. */
  queue: () => Promise<TrialQueue>;
  /** A worker seen within this many seconds is alive (default 10; workers beat every 2). */
  liveWithinSeconds?: number;
  /** How often the leader looks for the results of a batch (default 200 ms). */
  pollMs?: number;
  /** Trials waiting in the queue, as the leader last saw (metrics). */
  onQueueDepth?: (depth: number) => void;
  log?: (message: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The leader's side of distributed trials: enqueue a batch, wait for its stored results. */
export class QueuedTrials implements TrialRunner {
  private readonly store: TrialResultStore;
  private readonly local: LocalTrials;
  /** Trials put on the queue by this run (cancelled when it ends). */
  private readonly enqueued = new Set<number>();

  constructor(
    private readonly deps: QueuedTrialsDeps,
    private readonly optimizationId: string,
    private readonly setup: TrialSetup,
    candles: readonly Candle[],
    threads: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.store = new TrialResultStore(deps.pool);
    this.local = new LocalTrials(setup, candles, threads);
  }

  private workersAlive(): Promise<number> {
    return this.store.liveWorkers(this.deps.liveWithinSeconds ?? 10);
  }

  async runBatch(
    batch: readonly PendingTrial[],
    discard?: AbortSignal,
  ): Promise<(TrialRun | null)[] | 'interrupted'> {
    const wanted = batch.filter((p) => p.parameters !== null);
    const trials = wanted.map((p) => p.trial);
    // A resumed run finds the results its workers stored before the leader changed.
    let stored = await this.store.has(this.optimizationId, trials);
    let missing = wanted.filter((p) => !stored.has(p.trial));
    if (missing.length === 0) return this.collect(batch, new Map());
    if ((await this.workersAlive()) === 0) {
      // No worker: the single-process path, nothing stored.
      if (stored.size === 0) return this.local.runBatch(batch, discard);
      const runs = await this.local.runBatch(missing, discard);
      return this.collect(batch, new Map(missing.map((p, i) => [p.trial, runs[i] ?? null])));
    }
    const queue = await this.deps.queue();
    await queue.enqueue(
      missing.map((p) => ({
        optimizationId: this.optimizationId,
        trial: p.trial,
        parameters: p.parameters ?? {},
        setup: { ...this.setup },
      })),
    );
    for (const p of missing) this.enqueued.add(p.trial);
    const here = new Map<number, TrialRun | null>();
    for (;;) {
      if (this.signal?.aborted || discard?.aborted) return 'interrupted';
      this.deps.onQueueDepth?.(await queue.depth());
      stored = await this.store.has(this.optimizationId, trials);
      missing = wanted.filter((p) => !stored.has(p.trial));
      if (missing.length === 0) break;
      if ((await this.workersAlive()) === 0) {
        // Every worker is gone: the leader runs what is left itself (a late worker's copy of a
        // trial would be the same bits, and is not used).
        this.deps.log?.(
          `optimizer: ${this.optimizationId}: no worker alive, running ${missing.length} trials here`,
        );
        const runs = await this.local.runBatch(missing, discard);
        missing.forEach((p, i) => here.set(p.trial, runs[i] ?? null));
        break;
      }
      await sleep(this.deps.pollMs ?? 200);
    }
    return this.collect(batch, here);
  }

  /** The batch's runs: those run here, the rest from the store; a stored error is thrown. */
  private async collect(
    batch: readonly PendingTrial[],
    here: ReadonlyMap<number, TrialRun | null>,
  ): Promise<(TrialRun | null)[]> {
    const fromStore = batch.filter((p) => p.parameters !== null && !here.has(p.trial));
    const results = await this.store.load(
      this.optimizationId,
      fromStore.map((p) => p.trial),
    );
    return batch.map((p) => {
      if (p.parameters === null) return null;
      if (here.has(p.trial)) return here.get(p.trial) ?? null;
      const result = results.get(p.trial);
      if (!result) throw new Error(`trial ${p.trial}: no stored result`);
      if ('error' in result)
        throw new Error(`trial ${p.trial} failed on a worker: ${result.error}`);
      return result.run;
    });
  }

  async close(ended: boolean): Promise<void> {
    await this.local.close();
    if (!ended) return; // interrupted: the next leader resumes with what is stored
    if (this.enqueued.size > 0) {
      const queue = await this.deps.queue();
      await queue.cancel(this.optimizationId, [...this.enqueued]);
      this.deps.onQueueDepth?.(await queue.depth());
    }
    await this.store.forget(this.optimizationId);
  }
}

/** Trials through the queue whenever a `qcat worker` is alive, else on the leader's threads. */
export const queuedTrials =
  (deps: QueuedTrialsDeps): TrialRunnerFactory =>
  (optimizationId, setup, candles, threads, signal) =>
    new QueuedTrials(deps, optimizationId, setup, candles, threads, signal);
