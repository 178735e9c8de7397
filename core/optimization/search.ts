import type { JsonObject } from '../eventstore/event-store.js';
import { computeStatistics, type Statistics } from '../trading/statistics.js';
import { validateParameters } from '../strategies/kinds.js';
import { QcatError } from '../errors.js';
import { scoreOf, type Objective } from './objectives.js';
import {
  deflatedSharpe,
  periodSharpe,
  probabilityOfOverfitting,
  type DeflatedSharpe,
  type Pbo,
} from './overfitting.js';
import {
  propose,
  proposeAt,
  proposesFromIndex,
  type Method,
  type Observation,
} from './samplers.js';
import { gridSize, withPoint, type ParameterSet, type ParameterSpace } from './space.js';
import {
  returnsOver,
  statisticsOver,
  stitchedEquity,
  type Fold,
  type TrialRun,
} from './walk-forward.js';

/**
 * One optimization as a loop with the work cut out: `nextBatch()` says which parameter sets to
 * run, the caller runs each over the window (anywhere: a worker thread, another machine) and hands
 * the runs to `record()`, which scores them fold by fold; `result()` chooses per fold, stitches the
 * out-of-sample equity and computes the overfitting statistics. Pure: no clock, no I/O. When the
 * search `proposesAhead` (grid, random), `nextBatchAfter()` gives the batch after one not yet
 * recorded, so the caller can run it while it records the one before.
 *
 * A trial's search score (what the sampler maximizes and what trials are ranked by) is the mean of
 * its in-sample scores over the folds; each fold picks its own best in-sample, and the
 * parameters proposed for adoption are the last fold's choice (the most recent data).
 */

export interface SearchSpec {
  kind: string;
  baseParameters: JsonObject;
  space: ParameterSpace;
  method: Method;
  objective: Objective;
  seed: number;
  trials: number;
  batchSize: number;
  folds: readonly Fold[];
  initialCash: number;
}

export interface TrialRecord extends JsonObject {
  trial: number;
  parameters: ParameterSet;
  /** Mean in-sample score over the folds; null if a fold had none. */
  score: number | null;
  inSample: (number | null)[];
  outOfSample: (number | null)[];
  /** Closed trades over the whole window. */
  trades: number;
  /** Why the trial has no score, when it was not run (invalid parameters). */
  note: string | null;
}

/** A trial to run: its index, the point searched and the strategy's full parameters. */
export interface PendingTrial {
  trial: number;
  point: ParameterSet;
  /** Null when the point breaks the kind's rules (e.g. fastPeriod ≥ slowPeriod). */
  parameters: JsonObject | null;
  note: string | null;
}

export interface FoldResult extends JsonObject {
  fold: number;
  inSample: { from: number; to: number };
  outOfSample: { from: number; to: number };
  /** The trial chosen in-sample, its scores, and its out-of-sample statistics; null: none scored. */
  trial: number | null;
  parameters: ParameterSet | null;
  inSampleScore: number | null;
  outOfSampleScore: number | null;
  outOfSampleSharpe: number | null;
  outOfSampleTrades: number;
}

export interface SearchResult {
  trialsRun: number;
  bestTrial: number | null;
  bestParameters: JsonObject | null;
  inSample: Statistics | null;
  outOfSample: Statistics | null;
  folds: FoldResult[];
  /** Stitched out-of-sample equity: window day index and equity. */
  equity: { day: number; equity: number }[];
  deflatedSharpe: DeflatedSharpe | null;
  pbo: Pbo | null;
}

/** The mean of the values, or null if any is null. */
const meanOrNull = (values: readonly (number | null)[]): number | null => {
  let sum = 0;
  for (const value of values) {
    if (value === null) return null;
    sum += value;
  }
  return values.length === 0 ? null : sum / values.length;
};

export class Search {
  private readonly records: TrialRecord[] = [];
  private readonly runs: (TrialRun | null)[] = [];
  private readonly limit: number;

  constructor(readonly spec: SearchSpec) {
    this.limit = spec.method === 'grid' ? Math.min(spec.trials, gridSize(spec.space)) : spec.trials;
  }

  get trials(): readonly TrialRecord[] {
    return this.records;
  }

  get done(): boolean {
    return this.records.length >= this.limit;
  }

  /**
   * Whether the batch after one can be proposed before that one is recorded: grid and random
   * points depend only on the trial's index, Bayesian ones on the results so far.
   */
  get proposesAhead(): boolean {
    return proposesFromIndex(this.spec.method);
  }

  /** The next trials to run (at most batchSize, never past the budget). */
  nextBatch(): PendingTrial[] {
    const first = this.records.length;
    const count = Math.min(this.spec.batchSize, this.limit - first);
    if (count <= 0) return [];
    const history: Observation[] = this.records.map((r) => ({
      point: r.parameters,
      score: r.score,
    }));
    const { method, space, seed } = this.spec;
    return this.pendingFrom(first, propose(method, space, seed, history, count));
  }

  /**
   * The batch that follows `batch` (proposed but not yet recorded), the same trials `nextBatch()`
   * gives once it is recorded; only when the search `proposesAhead`.
   */
  nextBatchAfter(batch: readonly PendingTrial[]): PendingTrial[] {
    const first = (batch.at(-1)?.trial ?? this.records.length - 1) + 1;
    const count = Math.min(this.spec.batchSize, this.limit - first);
    if (count <= 0) return [];
    const { method, space, seed } = this.spec;
    return this.pendingFrom(first, proposeAt(method, space, seed, first, count));
  }

  /** Trials first, first + 1, … at the points given, with the kind's full parameters. */
  private pendingFrom(first: number, points: readonly ParameterSet[]): PendingTrial[] {
    return points.map((point, i) => {
      try {
        const parameters = validateParameters(
          this.spec.kind,
          withPoint(this.spec.baseParameters, point),
        );
        return { trial: first + i, point, parameters, note: null };
      } catch (error) {
        if (!(error instanceof QcatError)) throw error;
        return { trial: first + i, point, parameters: null, note: error.message };
      }
    });
  }

  /** Scores a batch (runs in the batch's order; null for a trial not run) and keeps it. */
  record(batch: readonly PendingTrial[], runs: readonly (TrialRun | null)[]): TrialRecord[] {
    const { objective, folds } = this.spec;
    return batch.map((pending, i) => {
      if (pending.trial !== this.records.length)
        throw new Error(`trial ${pending.trial} recorded out of order`);
      const run = runs[i] ?? null;
      const score = (range: Fold['inSample']) =>
        run ? scoreOf(objective, statisticsOver(run, range)) : null;
      const inSample = folds.map((fold) => score(fold.inSample));
      let trades = 0;
      if (run) trades = run.tradeDays.length;
      const record: TrialRecord = {
        trial: pending.trial,
        parameters: pending.point,
        score: meanOrNull(inSample),
        inSample,
        outOfSample: folds.map((fold) => score(fold.outOfSample)),
        trades,
        note: run ? null : (pending.note ?? 'not run'),
      };
      this.records.push(record);
      this.runs.push(run);
      return record;
    });
  }

  /** The best trial so far by search score (the first of equals). */
  best(): TrialRecord | null {
    let best: TrialRecord | null = null;
    for (const record of this.records)
      if (record.score !== null && (best?.score == null || record.score > best.score))
        best = record;
    return best;
  }

  result(): SearchResult {
    const { folds, initialCash } = this.spec;
    const chosen: (number | null)[] = folds.map((_, f) => {
      let best: number | null = null;
      let bestScore = -Infinity;
      this.records.forEach((record, i) => {
        const value = record.inSample[f] ?? null;
        if (value !== null && value > bestScore) {
          bestScore = value;
          best = i;
        }
      });
      return best;
    });
    const runOf = (i: number | null): TrialRun | null =>
      i === null ? null : (this.runs[i] ?? null);
    const equity = stitchedEquity(folds, chosen.map(runOf), initialCash);
    const oosTrades: number[] = [];
    const foldResults: FoldResult[] = folds.map((fold, f) => {
      const index = chosen[f] ?? null;
      const run = runOf(index);
      const record = index === null ? null : (this.records[index] ?? null);
      const stats = run ? statisticsOver(run, fold.outOfSample) : null;
      if (run)
        for (let t = 0; t < run.tradeDays.length; t++) {
          const day = run.tradeDays[t] ?? -1;
          if (day >= fold.outOfSample.from && day < fold.outOfSample.to)
            oosTrades.push(run.tradePnl[t] ?? 0);
        }
      return {
        fold: f,
        inSample: { ...fold.inSample },
        outOfSample: { ...fold.outOfSample },
        trial: index,
        parameters: record?.parameters ?? null,
        inSampleScore: record?.inSample[f] ?? null,
        outOfSampleScore: record?.outOfSample[f] ?? null,
        outOfSampleSharpe: stats?.sharpe ?? null,
        outOfSampleTrades: stats?.trades ?? 0,
      };
    });
    const outOfSample =
      equity.length === 0
        ? null
        : computeStatistics({
            equity: [initialCash, ...equity.map((p) => p.equity)],
            tradePnl: oosTrades,
            bars: 0,
            barsInPosition: 0,
          });
    const lastFold = folds.at(-1);
    const bestTrial = chosen.at(-1) ?? null;
    const bestRun = runOf(bestTrial);
    const scored = this.runs.filter((run): run is TrialRun => run !== null);
    const lastDay = lastFold?.outOfSample.to ?? 0;
    const pboBlocks = Math.min(16, 2 * Math.floor(lastDay / 10));
    return {
      trialsRun: this.records.length,
      bestTrial,
      bestParameters:
        bestTrial === null
          ? null
          : withPoint(this.spec.baseParameters, this.records[bestTrial]?.parameters ?? {}),
      inSample: bestRun && lastFold ? statisticsOver(bestRun, lastFold.inSample) : null,
      outOfSample,
      folds: foldResults,
      equity,
      deflatedSharpe:
        bestRun && lastFold
          ? deflatedSharpe(
              returnsOver(bestRun, lastFold.inSample),
              scored.map((run) => periodSharpe(returnsOver(run, lastFold.inSample))),
            )
          : null,
      pbo: probabilityOfOverfitting(
        scored.map((run) => returnsOver(run, { from: 0, to: lastDay })),
        pboBlocks,
      ),
    };
  }
}
