/**
 * The cost of one optimization trial in CPU instructions, apart from the machine's load (ADR 029):
 * bench:optimize's grid search (SMA crossover, one year of 1-hour candles, 5-fold walk-forward)
 * run N trials one of three ways — `plain` (a loop calling the backtester), `pool` with 1 or with
 * 2 worker threads (the real search: sampler, trial pool, fold scoring). Wall-clock figures on a
 * shared machine measure the share the scheduler gave; instruction counts do not. Run it twice
 * under callgrind with two trial counts and divide the difference: instructions per trial, every
 * thread included, start-up and warm-up cancelled out.
 *
 *   node --import tsx bench/optimize-trial-cost.ts --mode=pool --threads=2 --trials=64
 *   valgrind --tool=callgrind --smc-check=all-non-file node <built>/bench/optimize-trial-cost.js …
 *
 * (Under valgrind use a JavaScript build, not tsx: every worker thread would compile the
 * TypeScript again.) Prints one JSON line.
 */
import { TrialPool } from '../automation/optimization/trial-pool.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import type { Instrument } from '../core/market/types.js';
import { Search, type SearchSpec } from '../core/optimization/search.js';
import { runTrial, windowDays, type TrialSetup } from '../core/optimization/trial.js';
import { planFolds } from '../core/optimization/walk-forward.js';
import { numberOption } from './support.js';

const mode = process.argv.find((a) => a.startsWith('--mode='))?.slice(7) ?? 'pool';
const threads = numberOption('threads', 1);
const trials = numberOption('trials', 64);
const warmUp = numberOption('warm-up', 4);
const DAY = 86_400_000;
const FROM = Date.UTC(2025, 0, 1);
const TO = FROM + 365 * DAY;
const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT') as Instrument;
const candles = [
  ...generateCandles({ seed: 42, from: FROM, to: TO, instruments: [instrument], timeframe: '1h' }),
];
const setup: TrialSetup = {
  kind: 'sma_crossover',
  symbol: instrument.symbol,
  timeframe: '1h',
  instrument,
  initialCash: 100_000,
  costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
  from: FROM,
  to: TO,
};
const spec: SearchSpec = {
  kind: 'sma_crossover',
  baseParameters: { fastPeriod: 10, slowPeriod: 200, positionFraction: 0.5 },
  space: {
    fastPeriod: { type: 'int', low: 4, high: 64, step: 4 },
    slowPeriod: { type: 'int', low: 80, high: 380, step: 20 },
  },
  method: 'grid',
  objective: { name: 'sharpe', minTrades: 1 },
  seed: 42,
  trials,
  batchSize: 32,
  folds: planFolds({ scheme: 'rolling', folds: 5, inSampleBlocks: 3 }, windowDays(FROM, TO)),
  initialCash: setup.initialCash,
};

const cpuBefore = process.cpuUsage();
const started = performance.now();
let serialMs = 0;
if (mode === 'plain') {
  for (let i = 0; i < warmUp; i++) runTrial(setup, spec.baseParameters, candles);
  const search = new Search(spec);
  while (!search.done) {
    const batch = search.nextBatch();
    for (const p of batch) if (p.parameters) runTrial(setup, p.parameters, candles);
    search.record(
      batch,
      batch.map(() => null),
    );
  }
} else {
  const pool = new TrialPool(setup, candles, threads);
  await pool.runAll(Array.from({ length: threads * warmUp }, () => spec.baseParameters));
  const search = new Search(spec);
  while (!search.done) {
    let at = performance.now();
    const batch = search.nextBatch();
    serialMs += performance.now() - at;
    const runs = await pool.runAll(batch.map((p) => p.parameters));
    at = performance.now();
    search.record(batch, runs);
    serialMs += performance.now() - at;
  }
  await pool.close();
}
const cpu = process.cpuUsage(cpuBefore);
console.log(
  JSON.stringify({
    mode,
    threads: mode === 'plain' ? 0 : threads,
    trials,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    serialMsPerTrial: serialMs / trials,
  }),
);
