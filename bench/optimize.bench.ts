/**
 * Optimization throughput. Two searches, each run three ways in the same process:
 *   - plain: a loop in the main thread calling the backtester (runTrial) for each parameter set,
 *     nothing else — the reference;
 *   - one worker thread: the real search on a pool of one thread — `runSearch`
 *     (automation/optimization/run-search.ts), the loop the executor runs: the sampler, fold
 *     scoring, grid and random batches run one ahead, the trial pool with its candles in a
 *     SharedArrayBuffer;
 *   - all cores: the same on a pool of every core (os.availableParallelism()).
 * Searches: a 256-trial grid of the SMA crossover over one year of 1-hour candles with a 5-fold
 * rolling walk-forward, and a 64-trial random search over one year of 1-minute candles.
 *
 *   npm run bench:optimize
 *   npm run bench:optimize -- --grid-trials=256 --random-trials=64 --seed=42
 *   npm run bench:optimize -- --min-seconds=3 --repetitions=5 --batch-by-batch
 *
 * Rounds: the grid lasts about half a second, too short for one run to be a measurement (V8's
 * compiler and GC threads, the machine's other work), and the speed of this VM's CPU second drifts
 * over tens of seconds. So the three ways run in rounds in the same process — plain, one thread,
 * all cores, again — with both pools warmed and kept: one round unmeasured, then rounds until the
 * one-thread runs add up to `--min-seconds` (3) or `--repetitions` (5) rounds are done. Trials/s
 * are each way's median run; a ratio is the median of each round's ratio (runs seconds apart);
 * every run's trials/s is printed. `--batch-by-batch` also
 * runs both pools with the old barrier (each batch waits for the one before to be recorded), to
 * show what running a batch ahead changes in the same run.
 *
 * Peak memory is the process RSS (worker threads included) sampled every 50 ms; "memory per
 * trial" is the RSS growth from the first quarter of a search's trials to its end, divided by the
 * trials in between (flat ≈ 0). The end of a search (choice per fold, stitching, DSR, PBO over
 * C(16, 8) splits) runs once per optimization and is timed apart ("result s"). Targets: one thread
 * ≥ 90 % of the plain loop's trials/s; all cores ≥ 1.7 × one thread (on 2 cores). The machine is
 * shared: the load average is printed. The last line is one JSON object. Each run also prints the
 * cores it really got (its CPU time over its wall time): on a busy shared machine the kernel's
 * autogroup scheduling gives one session one share whatever its thread count, and the speedup
 * then measures the share (ADR 022).
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import type { Candle, Instrument } from '../core/market/types.js';
import { Search, type SearchSpec } from '../core/optimization/search.js';
import {
  BatchByBatch,
  interleaved,
  repeated,
  roundRatio,
  searchOnce,
  warmPool,
  type Measured,
  type Plain,
  type Repeated,
} from './optimize-runs.js';
import { runTrial, windowDays, type TrialSetup } from '../core/optimization/trial.js';
import { planFolds } from '../core/optimization/walk-forward.js';
import type { Timeframe } from '../core/strategies/kinds.js';
import {
  checkTarget,
  formatInt,
  formatRatio,
  numberOption,
  printTable,
  printTargets,
  round,
  type Target,
} from './support.js';

const gridTrials = numberOption('grid-trials', 256);
const randomTrials = numberOption('random-trials', 64);
const seed = numberOption('seed', 42);
const minSeconds = numberOption('min-seconds', 3);
const maxRepetitions = numberOption('repetitions', 5);
const repetitions = { minSeconds, maxRepetitions };
const batchByBatch = process.argv.includes('--batch-by-batch');
const cores = availableParallelism();
/**
 * Trials each worker thread (and the plain loop) runs before the clock starts: each thread is an
 * isolate that compiles and tiers up the backtester on its own. Measured with
 * bench/optimize-trial-cost.ts (ADR 029): after 4 one-year 1-hour trials a second thread still
 * spent ~45% more CPU per trial than the first (its JIT and heap still settling); after 40, the
 * same within noise. So the default is enough trials for ~400,000 bars per thread, at least 4;
 * `--warm-up=N` sets it.
 */
const warmUpTrials = (bars: number): number =>
  process.argv.some((a) => a.startsWith('--warm-up='))
    ? numberOption('warm-up', 4)
    : Math.max(4, Math.ceil(400_000 / Math.max(1, bars)));

const DAY = 86_400_000;
const FROM = Date.UTC(2025, 0, 1);
const TO = FROM + 365 * DAY;
const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT') as Instrument;

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);
sampler.unref();
const mb = (bytes: number): number => bytes / 1024 / 1024;

interface Scenario {
  name: string;
  timeframe: Timeframe;
  spec: Omit<SearchSpec, 'folds' | 'initialCash' | 'kind' | 'baseParameters'>;
}

const SCENARIOS: Scenario[] = [
  {
    name: `grid ${gridTrials} × 1h, 5-fold walk-forward`,
    timeframe: '1h',
    spec: {
      space: {
        fastPeriod: { type: 'int', low: 4, high: 64, step: 4 },
        slowPeriod: { type: 'int', low: 80, high: 380, step: 20 },
      },
      method: 'grid',
      objective: { name: 'sharpe', minTrades: 1 },
      seed,
      trials: gridTrials,
      batchSize: 32,
    },
  },
  {
    name: `random ${randomTrials} × 1m, 5-fold walk-forward`,
    timeframe: '1m',
    spec: {
      space: {
        fastPeriod: { type: 'int', low: 5, high: 120 },
        slowPeriod: { type: 'int', low: 150, high: 1500 },
      },
      method: 'random',
      objective: { name: 'sharpe', minTrades: 1 },
      seed,
      trials: randomTrials,
      batchSize: 8,
    },
  },
];

/** The old loop (`--batch-by-batch`): each batch waits for the one before to be recorded. */
async function batchByBatchOn(
  spec: SearchSpec,
  setup: TrialSetup,
  candles: Candle[],
  threads: number,
): Promise<Repeated<Measured>> {
  const pool = await warmPool(spec, setup, candles, threads, warmUpTrials(candles.length));
  const runs = await repeated(() => searchOnce(pool, new BatchByBatch(spec)), repetitions);
  await pool.close();
  return runs;
}

/** The parameter sets the search will run (from a dry search), for the plain loop. */
function parameterSets(spec: SearchSpec): (JsonObject | null)[] {
  const dry = new Search(spec);
  const sets: (JsonObject | null)[] = [];
  while (!dry.done) {
    const batch = dry.nextBatch();
    sets.push(...batch.map((p) => p.parameters));
    dry.record(
      batch,
      batch.map(() => null),
    );
  }
  return sets;
}

/** Choosing per fold, stitching, DSR and PBO happen once per optimization: timed apart. */
function resultSeconds(search: Search): number {
  const started = performance.now();
  search.result();
  return (performance.now() - started) / 1000;
}

async function scenario(s: Scenario) {
  const candles = [
    ...generateCandles({
      seed,
      from: FROM,
      to: TO,
      instruments: [instrument],
      timeframe: s.timeframe,
    }),
  ];
  const setup: TrialSetup = {
    kind: 'sma_crossover',
    symbol: instrument.symbol,
    timeframe: s.timeframe,
    instrument,
    initialCash: 100_000,
    costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
    from: FROM,
    to: TO,
  };
  const spec: SearchSpec = {
    ...s.spec,
    kind: 'sma_crossover',
    baseParameters: { fastPeriod: 10, slowPeriod: 200, positionFraction: 0.5 },
    folds: planFolds({ scheme: 'rolling', folds: 5, inSampleBlocks: 3 }, windowDays(FROM, TO)),
    initialCash: setup.initialCash,
  };
  const sets = parameterSets(spec);
  for (let i = 0; i < warmUpTrials(candles.length); i++)
    runTrial(setup, spec.baseParameters, candles); // warm-up
  const plainOnce = (): Promise<Plain> => {
    const started = performance.now();
    for (const parameters of sets) if (parameters) runTrial(setup, parameters, candles);
    const seconds = (performance.now() - started) / 1000;
    return Promise.resolve({ seconds, trialsPerSec: sets.length / seconds });
  };
  const [onePool, allPool] = await Promise.all([
    warmPool(spec, setup, candles, 1, warmUpTrials(candles.length)),
    warmPool(spec, setup, candles, cores, warmUpTrials(candles.length)),
  ]);
  const { plain, one, all } = await interleaved(plainOnce, onePool, allPool, spec, repetitions);
  await Promise.all([onePool.close(), allPool.close()]);
  const barrier = batchByBatch
    ? {
        one: await batchByBatchOn(spec, setup, candles, 1),
        all: await batchByBatchOn(spec, setup, candles, cores),
      }
    : null;
  return {
    name: s.name,
    bars: candles.length,
    trials: sets.length,
    plain,
    one,
    all,
    barrier,
    resultSeconds: resultSeconds(one.median.search),
  };
}

type Result = Awaited<ReturnType<typeof scenario>>;

const rates = (r: Repeated<{ trialsPerSec: number }>): string =>
  `(${r.unmeasured.trialsPerSec.toFixed(1)}) ${r.runs.map((run) => run.trialsPerSec.toFixed(1)).join(' ')}`;

/** The old loop's runs (`--batch-by-batch`), measured the same way. */
function barrierLine(barrier: NonNullable<Result['barrier']>, plainRate: number): string {
  const [one, all] = [barrier.one.median, barrier.all.median];
  const threads = `${cores} threads ${rates(barrier.all)}`;
  return [
    `batch by batch: 1 thread ${rates(barrier.one)} (${formatRatio(one.trialsPerSec / plainRate)} plain);`,
    `${threads} (${formatRatio(all.trialsPerSec / one.trialsPerSec)} its 1 thread);`,
    `cores used ${one.coresUsed.toFixed(2)} / ${all.coresUsed.toFixed(2)}`,
  ].join(' ');
}

function printResults(results: readonly Result[]): void {
  printTable(
    [
      'search',
      'bars',
      'trials',
      'plain trials/s',
      '1 thread',
      'vs plain',
      `${cores} threads`,
      'vs 1 thread',
      'efficiency',
      'cores used 1 / all',
      'main thread 1 / all',
      'KB/trial',
      'result s',
    ],
    results.map((r) => {
      const [one, all] = [r.one.median, r.all.median];
      return [
        r.name,
        formatInt(r.bars),
        String(r.trials),
        r.plain.median.trialsPerSec.toFixed(2),
        one.trialsPerSec.toFixed(2),
        formatRatio(roundRatio(r.one, r.plain)),
        all.trialsPerSec.toFixed(2),
        formatRatio(roundRatio(r.all, r.one)),
        `${((roundRatio(r.all, r.one) / cores) * 100).toFixed(0)}%`,
        `${one.coresUsed.toFixed(2)} / ${all.coresUsed.toFixed(2)}`,
        `${(one.serialShare * 100).toFixed(1)}% / ${(all.serialShare * 100).toFixed(1)}%`,
        Math.max(one.memoryPerTrialKb, all.memoryPerTrialKb).toFixed(1),
        r.resultSeconds.toFixed(2),
      ];
    }),
  );
  console.log(
    "\n  Trials/s: medians of the rounds; ratios: the median of each round's ratio. Every round's trials/s in order (the first, unmeasured):",
  );
  for (const r of results) {
    console.log(
      `  ${r.name}: plain ${rates(r.plain)}; 1 thread ${rates(r.one)}; ${cores} threads ${rates(r.all)}`,
    );
    if (r.barrier) console.log(`    ${barrierLine(r.barrier, r.plain.median.trialsPerSec)}`);
  }
}

const perCpuSecond = (r: Result): number =>
  r.all.median.trialsPerSec /
  r.all.median.coresUsed /
  (r.one.median.trialsPerSec / r.one.median.coresUsed);

const summaryOf = (r: Result) => {
  const [plain, one, all] = [r.plain.median, r.one.median, r.all.median];
  return {
    name: r.name,
    bars: r.bars,
    trials: r.trials,
    warmUpTrialsPerThread: warmUpTrials(r.bars),
    rounds: r.one.runs.length,
    plainTrialsPerSec: round(plain.trialsPerSec, 3),
    oneThreadTrialsPerSec: round(one.trialsPerSec, 3),
    allCoresTrialsPerSec: round(all.trialsPerSec, 3),
    runsTrialsPerSec: {
      plain: r.plain.runs.map((run) => round(run.trialsPerSec, 2)),
      one: r.one.runs.map((run) => round(run.trialsPerSec, 2)),
      all: r.all.runs.map((run) => round(run.trialsPerSec, 2)),
      unmeasured: [r.plain, r.one, r.all].map((x) => round(x.unmeasured.trialsPerSec, 2)),
    },
    oneThreadVsPlain: round(roundRatio(r.one, r.plain), 3),
    speedup: round(roundRatio(r.all, r.one), 3),
    parallelEfficiency: round(roundRatio(r.all, r.one) / cores, 3),
    coresUsed: { one: round(one.coresUsed, 2), all: round(all.coresUsed, 2) },
    serialShare: { one: round(one.serialShare, 3), all: round(all.serialShare, 3) },
    trialsPerCpuSecondAllVsOne: round(perCpuSecond(r), 3),
    memoryPerTrialKb: round(Math.max(one.memoryPerTrialKb, all.memoryPerTrialKb), 1),
    resultSeconds: round(r.resultSeconds, 3),
    ...(r.barrier
      ? {
          batchByBatch: {
            oneThreadTrialsPerSec: round(r.barrier.one.median.trialsPerSec, 3),
            allCoresTrialsPerSec: round(r.barrier.all.median.trialsPerSec, 3),
            coresUsed: {
              one: round(r.barrier.one.median.coresUsed, 2),
              all: round(r.barrier.all.median.coresUsed, 2),
            },
          },
        }
      : {}),
  };
};

async function main() {
  const loadBefore = loadavg()[0] ?? 0;
  console.log(
    `Optimization throughput: ${cores} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, load ${loadBefore.toFixed(2)}; the three ways in rounds until ${minSeconds} s or ${maxRepetitions} rounds, medians reported\n`,
  );
  const results: Result[] = [];
  for (const s of SCENARIOS) results.push(await scenario(s));
  printResults(results);
  const loadAfter = loadavg()[0] ?? 0;
  console.log(
    `\n  peak RSS ${mb(peakRss).toFixed(0)} MB; load average (1 min) before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)}`,
  );
  const targets: Target[] = results.flatMap((r) => [
    {
      label: `${r.name}: 1 thread / plain`,
      actual: roundRatio(r.one, r.plain),
      min: 0.9,
      format: formatRatio,
    },
    {
      label: `${r.name}: ${cores} threads / 1 thread`,
      actual: roundRatio(r.all, r.one),
      min: cores >= 2 ? 1.7 : 1,
      format: formatRatio,
    },
  ]);
  // The speedup can only show when the machine gives this process the cores: with the kernel's
  // autogroup scheduling, a busy shared machine gives each session one share whatever its threads.
  const starved = results.filter((r) => r.all.median.coresUsed < cores * 0.9);
  if (starved.length > 0)
    console.log(
      `\n  NOTE: the all-cores runs got ${starved.map((r) => r.all.median.coresUsed.toFixed(2)).join(' and ')} cores of ${cores} (CPU time / wall time): the machine is shared, so the speedup below measures the share, not the code. Trials per CPU second, all threads / 1 thread: ${starved.map((r) => formatRatio(perCpuSecond(r))).join(' and ')} (1× = the threads cost nothing extra).`,
    );
  console.log('\nTargets');
  printTargets(targets);
  return {
    benchmark: 'optimize',
    node: process.version,
    cpus: cores,
    loadAverage: [round(loadBefore, 2), round(loadAfter, 2)],
    seed,
    repeat: { minSeconds, maxRepetitions, reported: 'median' },
    peakRssMb: round(mb(peakRss), 0),
    searches: results.map(summaryOf),
    targets: targets.map(checkTarget),
    met: targets.every((t) => t.actual >= t.min),
  };
}

let summary: Record<string, unknown> | undefined;
try {
  summary = await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
if (summary) console.log(`\n${JSON.stringify(summary)}`);
