import { verdictOf, type AdoptionGate } from './gate.js';
import type { OptimizationOutcome, OptimizationProgress } from './optimization.js';
import type { OptimizationSpec } from './request.js';
import { Search, type SearchSpec, type TrialRecord } from './search.js';
import { DAY_MS, windowDays, type TrialSetup } from './trial.js';
import { planFolds, type Fold } from './walk-forward.js';
import type { Instrument } from '../market/types.js';

/** Glue between the stored request and the pure search: plans, the batch event, the outcome. */

export const foldsOf = (spec: OptimizationSpec): Fold[] =>
  planFolds(spec.walkForward, windowDays(Date.parse(spec.from), Date.parse(spec.to)));

export const searchOf = (spec: OptimizationSpec): Search => {
  const searchSpec: SearchSpec = {
    kind: spec.kind,
    baseParameters: spec.baseParameters,
    space: spec.space,
    method: spec.method,
    objective: spec.objective,
    seed: spec.seed,
    trials: spec.budget.trials,
    batchSize: spec.batchSize,
    folds: foldsOf(spec),
    initialCash: spec.initialCash,
  };
  return new Search(searchSpec);
};

export const trialSetupOf = (spec: OptimizationSpec, instrument: Instrument): TrialSetup => ({
  kind: spec.kind,
  symbol: spec.symbol,
  timeframe: spec.timeframe,
  instrument,
  initialCash: spec.initialCash,
  costs: spec.costs,
  from: Date.parse(spec.from),
  to: Date.parse(spec.to),
});

export function progressOf(
  search: Search,
  batch: number,
  trials: TrialRecord[],
): OptimizationProgress {
  const best = search.best();
  return {
    batch,
    trials,
    trialsDone: search.trials.length,
    bestTrial: best?.trial ?? null,
    bestScore: best?.score ?? null,
  };
}

const dateOf = (from: string, day: number): string =>
  new Date((Math.floor(Date.parse(from) / DAY_MS) + day) * DAY_MS).toISOString().slice(0, 10);

export function outcomeOf(
  spec: OptimizationSpec,
  search: Search,
  gate: AdoptionGate,
  stoppedBy: OptimizationOutcome['stoppedBy'],
  durationMs: number,
): OptimizationOutcome {
  const result = search.result();
  return {
    trialsRun: result.trialsRun,
    stoppedBy,
    bestTrial: result.bestTrial,
    bestParameters: result.bestParameters,
    inSample: result.inSample,
    outOfSample: result.outOfSample,
    folds: result.folds,
    equity: result.equity.map((p) => ({ date: dateOf(spec.from, p.day), equity: p.equity })),
    deflatedSharpe: result.deflatedSharpe,
    pbo: result.pbo,
    verdict: verdictOf(result, gate),
    durationMs,
  };
}
