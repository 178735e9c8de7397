import { ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { strategyKind } from '../strategies/kinds.js';

/**
 * A parameter space: per strategy parameter an integer or real range (optionally on a step or on
 * a log scale) or a set of values. Samplers work in a unit cube: each range maps u ∈ [0, 1] to a
 * value and back, so grid, random and Bayesian search share one encoding. Names are always taken
 * in sorted order: events are stored as JSONB, which does not keep key order, and the same request
 * must give the same trials.
 */

export type ParameterValue = number | string | boolean;

export type ParameterRange =
  | { type: 'int'; low: number; high: number; step?: number; log?: boolean }
  | { type: 'real'; low: number; high: number; step?: number; log?: boolean }
  | { type: 'set'; values: ParameterValue[] };

export type ParameterSpace = Record<string, ParameterRange>;

/** One point of the space: a value per parameter. */
export type ParameterSet = Record<string, ParameterValue>;

/** Grids above this many points are refused whatever the budget (they would not fit an event). */
export const MAX_GRID_POINTS = 100_000;
export const MAX_SET_VALUES = 100;

const fail = (code: string, path: string, message: string): never => {
  throw new ValidationError(code, `${path} ${message}`, { errors: [{ path, message }] });
};

export const parameterNames = (space: ParameterSpace): string[] => Object.keys(space).sort();

/** Checks a space against a strategy kind; throws a ValidationError naming the field. */
export function checkSpace(kindName: string, space: ParameterSpace): void {
  const kind = strategyKind(kindName);
  if (!kind) return fail('UNKNOWN_STRATEGY_KIND', 'kind', `'${kindName}' is not a strategy kind`);
  const known = Object.keys(kind.parameters.shape);
  const names = parameterNames(space);
  if (names.length === 0) fail('EMPTY_SPACE', 'space', 'names no parameter to search');
  for (const name of names) {
    const path = `space.${name}`;
    if (!known.includes(name))
      fail('UNKNOWN_PARAMETER', path, `is not a parameter of ${kindName} (${known.join(', ')})`);
    const range = space[name] as ParameterRange;
    if (range.type === 'set') {
      if (range.values.length === 0) fail('EMPTY_RANGE', `${path}.values`, 'is empty');
      if (range.values.length > MAX_SET_VALUES)
        fail('INVALID_RANGE', `${path}.values`, `has more than ${MAX_SET_VALUES} values`);
      if (new Set(range.values).size !== range.values.length)
        fail('INVALID_RANGE', `${path}.values`, 'repeats a value');
      continue;
    }
    const { low, high, step, log } = range;
    if (!Number.isFinite(low) || !Number.isFinite(high))
      fail('INVALID_RANGE', path, 'needs finite low and high');
    if (low > high) fail('INVERTED_RANGE', `${path}.high`, `(${high}) is below low (${low})`);
    if (low === high)
      fail('EMPTY_RANGE', `${path}.high`, `equals low (${low}); use a set of one value instead`);
    if (range.type === 'int' && (!Number.isInteger(low) || !Number.isInteger(high)))
      fail('INVALID_RANGE', path, 'of type int needs integer low and high');
    if (step !== undefined) {
      if (!(step > 0) || !Number.isFinite(step))
        fail('INVALID_RANGE', `${path}.step`, 'must be > 0');
      if (range.type === 'int' && !Number.isInteger(step))
        fail('INVALID_RANGE', `${path}.step`, 'must be an integer for an int range');
      if (step > high - low) fail('EMPTY_RANGE', `${path}.step`, 'is wider than the range');
      if (log) fail('INVALID_RANGE', `${path}.log`, 'cannot be combined with a step');
    }
    if (log && !(low > 0)) fail('INVALID_RANGE', `${path}.low`, 'must be > 0 on a log scale');
  }
}

/** The largest k with low + k·step ≤ high (a tolerance for binary fractions such as 0.1). */
const lastStep = (low: number, high: number, step: number): number =>
  Math.floor((high - low) / step + 1e-9);

const onStep = (low: number, step: number, k: number): number => {
  const value = low + k * step;
  // 0.1 + 3 × 0.1 prints as 0.4000000000000001; keep the step's decimals.
  const decimals = Math.min(12, (step.toString().split('.')[1] ?? '').length);
  return Number(value.toFixed(decimals));
};

/** The value of one range at u ∈ [0, 1]. */
export function decode(range: ParameterRange, u: number): ParameterValue {
  const clamped = Math.min(1, Math.max(0, u));
  if (range.type === 'set') {
    const index = Math.min(range.values.length - 1, Math.floor(clamped * range.values.length));
    return range.values[index] as ParameterValue;
  }
  const { low, high, log } = range;
  const raw = log
    ? Math.exp(Math.log(low) + clamped * (Math.log(high) - Math.log(low)))
    : low + clamped * (high - low);
  const step = range.step ?? (range.type === 'int' ? 1 : undefined);
  if (step === undefined) return raw;
  if (range.type === 'int' && log) return Math.min(high, Math.max(low, Math.round(raw)));
  const k = Math.min(lastStep(low, high, step), Math.max(0, Math.round((raw - low) / step)));
  return onStep(low, step, k);
}

/** Where a value sits in [0, 1] (the inverse of `decode`, up to rounding to the step). */
export function encode(range: ParameterRange, value: ParameterValue): number {
  if (range.type === 'set') {
    const index = range.values.indexOf(value);
    return (Math.max(0, index) + 0.5) / range.values.length;
  }
  const x = typeof value === 'number' ? value : Number(value);
  const { low, high, log } = range;
  const u = log
    ? (Math.log(x) - Math.log(low)) / (Math.log(high) - Math.log(low))
    : (x - low) / (high - low);
  return Math.min(1, Math.max(0, u));
}

/** The values a grid search visits on one range; refuses a real range without a step. */
export function gridValues(name: string, range: ParameterRange): ParameterValue[] {
  if (range.type === 'set') return [...range.values];
  const step = range.step ?? (range.type === 'int' && !range.log ? 1 : undefined);
  if (step === undefined)
    return fail(
      'GRID_NEEDS_STEP',
      `space.${name}.step`,
      'is required for a grid search over a real or log-scale range',
    );
  const values: ParameterValue[] = [];
  const last = lastStep(range.low, range.high, step);
  for (let k = 0; k <= last; k++) values.push(onStep(range.low, step, k));
  return values;
}

/** Number of grid points, without building them (Infinity past MAX_GRID_POINTS). */
export function gridSize(space: ParameterSpace): number {
  let size = 1;
  for (const name of parameterNames(space)) {
    size *= gridValues(name, space[name] as ParameterRange).length;
    if (size > MAX_GRID_POINTS) return Infinity;
  }
  return size;
}

/** Grid point `index` in mixed radix over the sorted names (the last name varies fastest). */
export function gridPoint(space: ParameterSpace, index: number): ParameterSet {
  const names = parameterNames(space);
  const point: ParameterSet = {};
  let rest = index;
  for (let i = names.length - 1; i >= 0; i--) {
    const name = names[i] as string;
    const values = gridValues(name, space[name] as ParameterRange);
    point[name] = values[rest % values.length] as ParameterValue;
    rest = Math.floor(rest / values.length);
  }
  return point;
}

/** A point from a vector of unit coordinates, one per sorted name. */
export function pointAt(space: ParameterSpace, unit: readonly number[]): ParameterSet {
  const point: ParameterSet = {};
  parameterNames(space).forEach((name, i) => {
    point[name] = decode(space[name] as ParameterRange, unit[i] ?? 0.5);
  });
  return point;
}

/** A trial's full parameters: the base (the strategy's current ones) with the point over them. */
export const withPoint = (base: JsonObject, point: ParameterSet): JsonObject => ({
  ...base,
  ...point,
});
