import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import type { Candle } from '../../core/market/types.js';
import { packCandles, type TrialSetup } from '../../core/optimization/trial.js';
import type { TrialRun } from '../../core/optimization/walk-forward.js';

/**
 * Worker threads for the trials of one optimization (piscina). The candles are packed once into
 * a SharedArrayBuffer that every thread reads: no copy per trial, and none per thread but the
 * thread's own unpacking into candle objects. Under tsx (development, tests) the threads load the
 * TypeScript worker through tsx; built, they load the compiled JavaScript.
 */

const here = import.meta.url;
const typescript = here.endsWith('.ts');
const workerFile = new URL(`./trial-worker.${typescript ? 'ts' : 'js'}`, here);

/** Threads a pool uses by default: every core. */
export const defaultThreads = (): number => Math.max(1, availableParallelism());

export class TrialPool {
  private readonly pool: Piscina;

  constructor(setup: TrialSetup, candles: readonly Candle[], threads = defaultThreads()) {
    this.pool = new Piscina({
      filename: workerFile.href,
      minThreads: threads,
      maxThreads: threads,
      // The pool lives as long as its optimization; idle threads stay until it is closed.
      idleTimeout: Infinity,
      workerData: { setup, candles: packCandles(candles) },
      ...(typescript ? { execArgv: ['--import', 'tsx'] } : {}),
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** Runs one trial; `signal` takes it off the queue, or ends its thread if it runs already. */
  run(parameters: JsonObject, signal?: AbortSignal): Promise<TrialRun> {
    return this.pool.run(parameters, signal ? { signal } : {}) as Promise<TrialRun>;
  }

  /** Runs a batch; a trial without parameters (refused by the kind) is not run. */
  runAll(
    batch: readonly (JsonObject | null)[],
    signal?: AbortSignal,
  ): Promise<(TrialRun | null)[]> {
    // Every trial of the batch listens to the one signal: more than Node's default 10 is expected.
    if (signal) setMaxListeners(0, signal);
    return Promise.all(
      batch.map((parameters) =>
        parameters ? this.run(parameters, signal) : Promise.resolve(null),
      ),
    );
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
