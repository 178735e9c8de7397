import type pg from 'pg';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { QcatError } from '../../core/errors.js';
import type { EventStore } from '../../core/eventstore/event-store.js';
import type { Candle } from '../../core/market/types.js';
import { DEFAULT_GATE, type AdoptionGate } from '../../core/optimization/gate.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationCommand,
  type OptimizationOutcome,
  type OptimizationRun,
} from '../../core/optimization/optimization.js';
import { outcomeOf, progressOf, searchOf, trialSetupOf } from '../../core/optimization/outcome.js';
import { reason } from '../../core/trading/orders.js';
import { automationActor } from '../process-manager.js';
import { runSearch } from './run-search.js';
import { localTrials, type TrialRunnerFactory } from './trial-runners.js';

/** Who runs optimizations in the log. */
export const OPTIMIZER = 'optimizer';

export interface ExecutorDeps {
  pool: pg.Pool;
  eventStore: EventStore;
  commands: CommandHandler;
  /** The adoption gate in force (the policy's, or the defaults). */
  gate?: () => Promise<AdoptionGate>;
  threads?: number;
  /** Stops between batches when aborted (shutdown); the next leader resumes the run. */
  signal?: AbortSignal;
  /** After each recorded batch: its trials, and the seconds since the batch before was recorded. */
  onBatch?: (trials: number, seconds: number) => void;
  /** How batches run: on this process's threads (the default) or through the queue (ADR 029). */
  trials?: TrialRunnerFactory;
}

export type ExecutionResult = 'completed' | 'failed' | 'cancelled' | 'skipped' | 'interrupted';

const finished = (status: string): boolean =>
  status === 'completed' || status === 'failed' || status === 'cancelled';

/**
 * Runs one optimization to its end: loads its candles once, runs its trials batch by batch on a
 * pool of worker threads (grid and random one batch ahead, run-search.ts), records each batch
 * (`OptimizationProgressed`) and then the outcome with the gate's verdict. Run again after a crash
 * it repeats the same trials (the search is deterministic) and the batches already recorded write
 * nothing; a cancellation is seen at the next batch, whose recording the aggregate refuses.
 */
export async function executeOptimization(
  deps: ExecutorDeps,
  optimizationId: string,
): Promise<ExecutionResult> {
  const streamId = optimizationStream(optimizationId);
  const { state } = await deps.commands.load(optimizations, streamId);
  if (state.status === 'none' || finished(state.status)) return 'skipped';
  const [request] = await deps.eventStore.readStream(streamId, { maxCount: 1 });
  const context = {
    actor: automationActor(OPTIMIZER),
    correlationId: request?.metadata.correlationId ?? optimizationId,
    causationId: request?.eventId ?? optimizationId,
  };
  const issue = async (command: OptimizationCommand): Promise<boolean> => {
    try {
      await deps.commands.handle(optimizations, streamId, command, context);
      return true;
    } catch (error) {
      if (error instanceof QcatError && error.code === 'OPTIMIZATION_FINISHED') return false;
      throw error;
    }
  };
  const market = new MarketDataStore(deps.pool);
  const instrument = await market.getInstrument(state.symbol);
  if (!instrument) {
    const failed = reason('INSTRUMENT_NOT_FOUND', { symbol: state.symbol });
    return (await issue({ type: 'FailOptimization', optimizationId, reason: failed }))
      ? 'failed'
      : 'cancelled';
  }
  const candles: Candle[] = [];
  for await (const candle of market.readCandles({
    symbol: state.symbol,
    timeframe: state.timeframe,
    from: Date.parse(state.from),
    to: Date.parse(state.to),
  }))
    candles.push(candle);
  if (candles.length === 0) {
    const failed = reason('NO_MARKET_DATA', { symbol: state.symbol, from: state.from });
    return (await issue({ type: 'FailOptimization', optimizationId, reason: failed }))
      ? 'failed'
      : 'cancelled';
  }
  return search(deps, state, candles, instrument, issue);
}

async function search(
  deps: ExecutorDeps,
  spec: OptimizationRun,
  candles: Candle[],
  instrument: NonNullable<Awaited<ReturnType<MarketDataStore['getInstrument']>>>,
  issue: (command: OptimizationCommand) => Promise<boolean>,
): Promise<ExecutionResult> {
  const { optimizationId } = spec;
  const started = performance.now();
  const search = searchOf(spec);
  const trials = (deps.trials ?? localTrials)(
    optimizationId,
    trialSetupOf(spec, instrument),
    candles,
    deps.threads,
    deps.signal,
  );
  // Checked before each batch, shutdown first: an interrupted run is resumed, a timed-out one ends.
  const stop = (): 'interrupted' | 'wallTime' | null => {
    if (deps.signal?.aborted) return 'interrupted';
    return performance.now() - started > spec.budget.wallSeconds * 1000 ? 'wallTime' : null;
  };
  let ended = true;
  try {
    const end = await runSearch(search, (batch, signal) => trials.runBatch(batch, signal), {
      stop,
      record: (batch, records) =>
        issue({
          type: 'RecordOptimizationProgress',
          optimizationId,
          ...progressOf(search, batch, records),
        }),
      onBatch: ({ records, seconds }) => deps.onBatch?.(records.length, seconds),
    });
    if (end === 'interrupted') {
      ended = false;
      return 'interrupted';
    }
    if (end === 'cancelled') return 'cancelled';
    let stoppedBy: OptimizationOutcome['stoppedBy'] = end === 'wallTime' ? 'wallTime' : 'budget';
    if (stoppedBy === 'budget' && search.trials.length < spec.budget.trials) stoppedBy = 'grid';
    const gate = deps.gate ? await deps.gate() : DEFAULT_GATE;
    const outcome = outcomeOf(
      spec,
      search,
      gate,
      stoppedBy,
      Math.round(performance.now() - started),
    );
    return (await issue({ type: 'CompleteOptimization', optimizationId, outcome }))
      ? 'completed'
      : 'cancelled';
  } catch (error) {
    if (!(error instanceof QcatError)) throw error;
    const failed = reason(error.code, { detail: error.message.replaceAll(',', ';') });
    return (await issue({ type: 'FailOptimization', optimizationId, reason: failed }))
      ? 'failed'
      : 'cancelled';
  } finally {
    await trials.close(ended);
  }
}
