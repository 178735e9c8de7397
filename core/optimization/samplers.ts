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

/** Trial i's own random stream. */
const streamOf = (seed: number, method: Method, trial: number): Random =>
  new Random(`${seed.toString()}:${method}:${trial}`);

/**
 * Whether a method's points depend only on the trial's index (grid, random), not on the results
 * so far: then a batch can be proposed before the results of the one before it are in. Bayesian
 * (TPE) models the results, so its next batch waits for them.
 */
export const proposesFromIndex = (method: Method): boolean => method !== 'bayesian';

/** Random points for trials first … first + count − 1, each from its own (seed, method, i) stream. */
const randomPoints = (
  method: Method,
  space: ParameterSpace,
  seed: number,
  first: number,
  count: number,
): ParameterSet[] => {
  const d = parameterNames(space).length;
  return Array.from({ length: count }, (_, i) =>
    pointAt(space, randomUnit(streamOf(seed, method, first + i), d)),
  );
};

/** The points of trials first … first + count − 1 of a method that proposes from the index alone. */
export function proposeAt(
  method: Method,
  space: ParameterSpace,
  seed: number,
  first: number,
  count: number,
): ParameterSet[] {
  if (!proposesFromIndex(method)) throw new Error(`${method} proposes from its results`);
  return method === 'grid'
    ? Array.from({ length: count }, (_, i) => gridPoint(space, first + i))
    : randomPoints(method, space, seed, first, count);
}

export function propose(
  method: Method,
  space: ParameterSpace,
  seed: number,
  history: readonly Observation[],
  count: number,
): ParameterSet[] {
  const first = history.length;
  if (proposesFromIndex(method)) return proposeAt(method, space, seed, first, count);
  if (first < BAYESIAN_STARTUP_TRIALS) return randomPoints(method, space, seed, first, count);
  const names = parameterNames(space);
  const dims = dimensions(space);
  const observations: UnitObservation[] = history.map((o) => ({
    unit: names.map((name) => encode(space[name] as ParameterRange, o.point[name] ?? 0)),
    score: o.score,
  }));
  return Array.from({ length: count }, (_, i) =>
    pointAt(space, proposeTpe(observations, dims, streamOf(seed, method, first + i))),
  );
}
