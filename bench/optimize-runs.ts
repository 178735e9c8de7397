/**
 * How bench:optimize runs and times its searches: a search through `runSearch` (the executor's
 * loop), repeated runs of one way, and rounds of the three ways (plain loop, one thread, all cores)
 * with each round's ratios. See optimize.bench.ts for what is measured and why.
 */
import { runSearch } from '../automation/optimization/run-search.js';
import { TrialPool } from '../automation/optimization/trial-pool.js';
import type { Candle } from '../core/market/types.js';
import { Search, type SearchSpec } from '../core/optimization/search.js';
import type { TrialSetup } from '../core/optimization/trial.js';

/** When a way's runs (or the rounds) stop: once they add up to `minSeconds` or number `maxRepetitions`. */
export interface Repetitions {
  minSeconds: number;
  maxRepetitions: number;
}

export interface Measured {
  seconds: number;
  /** CPU the process got while searching (every thread), over the wall time: cores it really had. */
  coresUsed: number;
  /** Share of the wall time the main thread spent proposing and scoring (beside the trials when a
   * batch runs ahead, between them batch by batch). */
  serialShare: number;
  trialsPerSec: number;
  memoryPerTrialKb: number;
  /** The search, recorded: its result is timed apart. */
  search: Search;
}

/** Runs of one way, and the median one. */
export interface Repeated<T> {
  median: T;
  runs: T[];
  /** The first run, not counted. */
  unmeasured: T;
}

/**
 * Runs `once` unmeasured, then until the runs add up to `--min-seconds` or `--repetitions` are
 * done; the median run by trials/s (the upper middle of an even count). The first run does not
 * count: after the warm-up on the base parameters alone, the first search over the real parameter
 * sets still ran at 47-82 % of the later ones, in every configuration, the plain loop included
 * (V8 compiling the code paths the other parameters take, the main thread's scoring).
 */
export async function repeated<T extends { seconds: number; trialsPerSec: number }>(
  once: () => Promise<T>,
  { minSeconds, maxRepetitions }: Repetitions,
): Promise<Repeated<T>> {
  const unmeasured = await once();
  const runs: T[] = [];
  let total = 0;
  while (runs.length < maxRepetitions && total < minSeconds) {
    const run = await once();
    runs.push(run);
    total += run.seconds;
  }
  const sorted = [...runs].sort((a, b) => a.trialsPerSec - b.trialsPerSec);
  return { median: sorted[Math.floor(sorted.length / 2)] as T, runs, unmeasured };
}

/** A search that waits for each batch to be recorded before it proposes the next (the old loop). */
export class BatchByBatch extends Search {
  override get proposesAhead(): boolean {
    return false;
  }
}

/** One search on the pool through `runSearch`, the executor's loop. */
export async function searchOnce(pool: TrialPool, search: Search): Promise<Measured> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let rssAtQuarter: { rss: number; trials: number } | null = null;
  let serialMs = 0;
  await runSearch(
    search,
    (batch, signal) =>
      pool.runAll(
        batch.map((p) => p.parameters),
        signal,
      ),
    {
      onBatch: (done) => {
        serialMs += done.serialMs;
        if (!rssAtQuarter && search.trials.length >= search.spec.trials / 4)
          rssAtQuarter = { rss: process.memoryUsage().rss, trials: search.trials.length };
      },
    },
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const quarter = rssAtQuarter as { rss: number; trials: number } | null;
  const grown = quarter
    ? (process.memoryUsage().rss - quarter.rss) / Math.max(1, search.trials.length - quarter.trials)
    : 0;
  return {
    seconds,
    coresUsed: (cpu.user + cpu.system) / 1e6 / seconds,
    serialShare: serialMs / 1000 / seconds,
    trialsPerSec: search.trials.length / seconds,
    memoryPerTrialKb: grown / 1024,
    search,
  };
}

/** A pool whose threads have started, unpacked their candles and warmed their JIT (ADR 022). */
export async function warmPool(
  spec: SearchSpec,
  setup: TrialSetup,
  candles: Candle[],
  threads: number,
  warmUpTrials: number,
): Promise<TrialPool> {
  const pool = new TrialPool(setup, candles, threads);
  await pool.runAll(Array.from({ length: threads * warmUpTrials }, () => spec.baseParameters));
  return pool;
}

export interface Plain {
  seconds: number;
  trialsPerSec: number;
}

/**
 * The three ways in rounds — plain, one thread, all cores, plain, … — rather than each way's runs
 * one after another: the speed of this machine's CPU second drifts over tens of seconds (the plain
 * grid ran at 331-699 trials/s within one process), and a ratio of two ways measured a minute
 * apart measured the drift. Each round's ratios are taken from runs seconds apart; the targets use
 * the median of the rounds' ratios. The first round is not counted (see `repeated`).
 */
export async function interleaved(
  plainOnce: () => Promise<Plain>,
  onePool: TrialPool,
  allPool: TrialPool,
  spec: SearchSpec,
  { minSeconds, maxRepetitions }: Repetitions,
): Promise<{ plain: Repeated<Plain>; one: Repeated<Measured>; all: Repeated<Measured> }> {
  const round = async () => ({
    plain: await plainOnce(),
    one: await searchOnce(onePool, new Search(spec)),
    all: await searchOnce(allPool, new Search(spec)),
  });
  const first = await round();
  const rounds: Awaited<ReturnType<typeof round>>[] = [];
  let total = 0;
  while (rounds.length < maxRepetitions && total < minSeconds) {
    const next = await round();
    rounds.push(next);
    total += next.one.seconds;
  }
  const of = <K extends 'plain' | 'one' | 'all'>(way: K) => {
    const runs = rounds.map((r) => r[way]);
    const sorted = [...runs].sort((a, b) => a.trialsPerSec - b.trialsPerSec);
    return {
      median: sorted[Math.floor(sorted.length / 2)],
      runs,
      unmeasured: first[way],
    } as Repeated<(typeof runs)[number]>;
  };
  return { plain: of('plain'), one: of('one'), all: of('all') };
}

/** The median over rounds of a ratio of two ways' trials/s in the same round. */
export const roundRatio = (
  numerator: Repeated<{ trialsPerSec: number }>,
  denominator: Repeated<{ trialsPerSec: number }>,
): number => {
  const ratios = numerator.runs
    .map((run, i) => run.trialsPerSec / (denominator.runs[i]?.trialsPerSec ?? Number.NaN))
    .sort((a, b) => a - b);
  return ratios[Math.floor(ratios.length / 2)] ?? Number.NaN;
};
