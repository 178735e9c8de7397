import { Random } from '../market/random.js';
import {
  encode,
  gridPoint,
  parameterNames,
  pointAt,
  type ParameterRange,
  type ParameterSet,
  type ParameterSpace,
} from './space.js';
import { proposeTpe, type Dimension, type UnitObservation } from './tpe.js';

/**
 * The three search methods behind one function: given the trials so far, the next `count` points.
 * Trial i's random draws come from a stream keyed by (seed, method, i), so a run gives the same
 * points however its batches are cut and wherever they run.
 */

export const METHODS = ['grid', 'random', 'bayesian'] as const;
export type Method = (typeof METHODS)[number];

/** Trials the Bayesian method samples at random before it models anything (Optuna: 10). */
export const BAYESIAN_STARTUP_TRIALS = 10;

export interface Observation {
  point: ParameterSet;
  /** Larger is better; null when the trial had no score (too few trades, invalid parameters). */
  score: number | null;
}

const dimensions = (space: ParameterSpace): Dimension[] =>
  parameterNames(space).map((name) => {
    const range = space[name] as ParameterRange;
    return range.type === 'set'
      ? { type: 'categorical', choices: range.values.length }
      : { type: 'numeric' };
  });

const randomUnit = (random: Random, d: number): number[] =>
  Array.from({ length: d }, () => random.uniform());

export function propose(
  method: Method,
  space: ParameterSpace,
  seed: number,
  history: readonly Observation[],
  count: number,
): ParameterSet[] {
  const names = parameterNames(space);
  const first = history.length;
  const streamFor = (i: number) => new Random(`${seed.toString()}:${method}:${first + i}`);
  switch (method) {
    case 'grid':
      return Array.from({ length: count }, (_, i) => gridPoint(space, first + i));
    case 'random':
      return Array.from({ length: count }, (_, i) =>
        pointAt(space, randomUnit(streamFor(i), names.length)),
      );
    case 'bayesian': {
      if (first < BAYESIAN_STARTUP_TRIALS)
        return Array.from({ length: count }, (_, i) =>
          pointAt(space, randomUnit(streamFor(i), names.length)),
        );
      const dims = dimensions(space);
      const observations: UnitObservation[] = history.map((o) => ({
        unit: names.map((name) => encode(space[name] as ParameterRange, o.point[name] ?? 0)),
        score: o.score,
      }));
      return Array.from({ length: count }, (_, i) =>
        pointAt(space, proposeTpe(observations, dims, streamFor(i))),
      );
    }
  }
}
