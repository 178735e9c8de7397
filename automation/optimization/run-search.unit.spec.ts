import { describe, expect, it } from 'vitest';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import type { Candle, Instrument } from '../../core/market/types.js';
import { DEFAULT_GATE } from '../../core/optimization/gate.js';
import { optimizations, type OptimizationProgress } from '../../core/optimization/optimization.js';
import { outcomeOf, progressOf, searchOf, trialSetupOf } from '../../core/optimization/outcome.js';
import type { OptimizationSpec } from '../../core/optimization/request.js';
import type { PendingTrial, Search } from '../../core/optimization/search.js';
import { runTrial } from '../../core/optimization/trial.js';
import { runSearch, type BatchRunner, type SearchHooks } from './run-search.js';

const DAY = 86_400_000;
const FROM = Date.UTC(2025, 0, 1);
const TO = FROM + 120 * DAY;
const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT') as Instrument;
const candles: Candle[] = [
  ...generateCandles({ seed: 3, from: FROM, to: TO, instruments: [instrument], timeframe: '1h' }),
];
type Method = 'grid' | 'random' | 'bayesian';

/** A stored request: 16 trials in batches of 4 over 120 days of 1-hour candles. */
function specOf(method: Method): OptimizationSpec {
  const [event] = optimizations.decide(
    {
      type: 'RequestOptimization',
      optimizationId: 'o1',
      requestedBy: { id: 'apikey:a1', role: 'analyst' },
      kind: 'sma_crossover',
      symbol: 'BTCUSDT',
      timeframe: '1h',
      from: new Date(FROM).toISOString(),
      to: new Date(TO).toISOString(),
      space: {
        fastPeriod: { type: 'int', low: 5, high: 20, step: 5 },
        slowPeriod: { type: 'int', low: 30, high: 90, step: 20 },
      },
      method,
      objective: { name: 'sharpe', minTrades: 1 },
      walkForward: { scheme: 'rolling', folds: 3, inSampleBlocks: 2 },
      budget: { trials: 16 },
      seed: 7,
      batchSize: 4,
      candlesInWindow: candles.length,
    },
    optimizations.initialState(),
  );
  return event?.data as OptimizationSpec;
}

const runsOf = (spec: OptimizationSpec, batch: readonly PendingTrial[]) =>
  batch.map((p) =>
    p.parameters ? runTrial(trialSetupOf(spec, instrument), p.parameters, candles) : null,
  );

/** The loop before pipelining: propose, run, record, one batch after the other. */
function batchByBatch(method: Method) {
  const spec = specOf(method);
  const search = searchOf(spec);
  const progress: OptimizationProgress[] = [];
  for (let batch = 0; !search.done; batch++) {
    const pending = search.nextBatch();
    progress.push(progressOf(search, batch, search.record(pending, runsOf(spec, pending))));
  }
  return { progress, outcome: outcomeOf(spec, search, DEFAULT_GATE, 'budget', 0) };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A runner that answers after a while (the later batches sooner, so a batch run ahead finishes
 * before the one before it) and logs what happens; `hold(first)` keeps a batch until aborted.
 */
function loggingRunner(spec: OptimizationSpec, log: string[], hold = (_first: number) => false) {
  const runner: BatchRunner = async (batch, signal) => {
    const first = batch[0]?.trial ?? -1;
    log.push(`start ${first}`);
    if (hold(first)) {
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
      });
      log.push(`aborted ${first}`);
      throw new Error(`batch ${first} aborted`);
    }
    await tick(first % 8 === 0 ? 8 : 1);
    return runsOf(spec, batch);
  };
  return runner;
}

async function pipelined(method: Method, log: string[] = []) {
  const spec = specOf(method);
  const search = searchOf(spec);
  const progress: OptimizationProgress[] = [];
  const end = await runSearch(search, loggingRunner(spec, log), {
    record: (batch, records) => {
      log.push(`record ${batch}`);
      progress.push(progressOf(search, batch, records));
      return Promise.resolve(true);
    },
  });
  return { end, progress, outcome: outcomeOf(spec, search, DEFAULT_GATE, 'budget', 0) };
}

describe('runSearch', () => {
  it.each(['grid', 'random', 'bayesian'] as const)(
    'records the same trials, batches and outcome as batch by batch, bit for bit (%s)',
    async (method) => {
      const { end, ...result } = await pipelined(method);
      expect(end).toBe('done');
      expect(JSON.stringify(result)).toBe(JSON.stringify(batchByBatch(method)));
      expect(result.progress.map((p) => p.batch)).toEqual([0, 1, 2, 3]);
    },
    30_000,
  );

  it('runs the next grid or random batch while the current one runs and is recorded, at most one ahead', async () => {
    for (const method of ['grid', 'random'] as const) {
      const log: string[] = [];
      await pipelined(method, log);
      expect(log).toEqual([
        'start 0',
        'start 4',
        'record 0',
        'start 8',
        'record 1',
        'start 12',
        'record 2',
        'record 3',
      ]);
    }
  });

  it('waits for each Bayesian batch to be recorded before proposing the next', async () => {
    const log: string[] = [];
    await pipelined('bayesian', log);
    expect(log).toEqual([
      'start 0',
      'record 0',
      'start 4',
      'record 1',
      'start 8',
      'record 2',
      'start 12',
      'record 3',
    ]);
  });

  /** A grid search whose batch from trial 8 is held until aborted; the hooks decide the end. */
  async function stopped(hooks: (search: Search) => SearchHooks) {
    const spec = specOf('grid');
    const search = searchOf(spec);
    const log: string[] = [];
    const end = await runSearch(
      search,
      loggingRunner(spec, log, (first) => first === 8),
      hooks(search),
    );
    log.push(`end ${end}`);
    return { search, log };
  }
  const recorder = (log: string[]) => (batch: number) => {
    log.push(`record ${batch}`);
    return Promise.resolve(true);
  };

  it('discards the batch run ahead when a recording is refused (cancelled): aborted, awaited, never recorded', async () => {
    const { search, log } = await stopped(() => ({
      record: (batch) => Promise.resolve(batch === 0),
    }));
    expect(log).toEqual(['start 0', 'start 4', 'start 8', 'aborted 8', 'end cancelled']);
    expect(search.trials.map((t) => t.trial)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it.each(['wallTime', 'interrupted'] as const)(
    'discards the batch run ahead when stopped before taking it up (%s)',
    async (reason) => {
      let recorded = 0;
      const log: string[] = [];
      const result = await stopped(() => ({
        stop: () => (recorded === 2 ? reason : null),
        record: (batch) => {
          recorded++;
          return recorder(log)(batch);
        },
      }));
      expect(result.log).toEqual(['start 0', 'start 4', 'start 8', 'aborted 8', `end ${reason}`]);
      expect(log).toEqual(['record 0', 'record 1']);
      expect(result.search.trials).toHaveLength(8);
    },
  );

  it('reports a failed batch run ahead in its turn, after the batches before it are recorded', async () => {
    const spec = specOf('grid');
    const search = searchOf(spec);
    const log: string[] = [];
    const run = loggingRunner(spec, log);
    const failing: BatchRunner = (batch, signal) =>
      batch[0]?.trial === 4 ? Promise.reject(new Error('trial 4 failed')) : run(batch, signal);
    await expect(runSearch(search, failing, { record: recorder(log) })).rejects.toThrow(
      'trial 4 failed',
    );
    expect(log).toEqual(['start 0', 'record 0', 'start 8']);
    expect(search.trials).toHaveLength(4);
  });

  it('discards the batch run ahead when the current one fails', async () => {
    const spec = specOf('grid');
    const search = searchOf(spec);
    const log: string[] = [];
    const run = loggingRunner(spec, log, (first) => first === 4);
    const failing: BatchRunner = (batch, signal) =>
      batch[0]?.trial === 0 ? Promise.reject(new Error('trial 0 failed')) : run(batch, signal);
    await expect(runSearch(search, failing)).rejects.toThrow('trial 0 failed');
    expect(log).toEqual(['start 4', 'aborted 4']);
    expect(search.trials).toHaveLength(0);
  });
});
