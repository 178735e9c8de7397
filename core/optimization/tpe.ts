import { errorFunction } from 'simple-statistics';
import type { Random } from '../market/random.js';

/**
 * A multivariate tree-structured Parzen estimator (Bergstra et al. 2011; the formulas as Optuna's
 * TPESampler with `multivariate=True` uses them), over the unit cube the parameter space encodes
 * to. The observations are split into the best γ(n) = min(⌈n/10⌉, 25) ("below") and the rest
 * ("above"); each group becomes a mixture of product kernels, one per observation plus a wide
 * prior; candidates are drawn from the good mixture l(x) and the one with the largest
 * log l(x) − log g(x) is proposed.
 *
 * Dimensions are numeric (a truncated normal kernel on [0, 1]) or categorical (a set's k values;
 * the kernel keeps the observed value's weight plus an equal share of the prior's).
 */

export type Dimension = { type: 'numeric' } | { type: 'categorical'; choices: number };

/** One evaluated point: unit coordinates (a categorical one as (index + ½) / k) and its score. */
export interface UnitObservation {
  unit: readonly number[];
  /** Larger is better; null for an infeasible point (it counts as the worst). */
  score: number | null;
}

export const TPE_DEFAULTS = {
  /** Candidates drawn from l(x) per proposal (Optuna's n_ei_candidates). */
  candidates: 24,
  /** Kernel width factor: σ = 0.2 · n^(−1/(d+4)) on the unit range (Optuna's SIGMA0_MAGNITUDE). */
  sigma0: 0.2,
  /** Weight of the prior kernel (centre ½, σ 1) against 1 per observation. */
  priorWeight: 1,
} as const;

/** γ(n): how many of n observations form the good group. */
export const goodCount = (n: number): number => Math.max(1, Math.min(Math.ceil(0.1 * n), 25));

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const normalCdf = (z: number): number => 0.5 * (1 + errorFunction(z / Math.SQRT2));

interface Mixture {
  /** Component centres: observations' coordinates, then the prior (½ … / no category). */
  centres: (readonly number[] | null)[];
  logWeights: number[];
  sigma: number;
  /** log of the mass a N(centre, σ) keeps on [0, 1], per component and dimension. */
  logMass: number[][];
  priorLogMass: number;
}

function mixture(points: readonly (readonly number[])[], dims: readonly Dimension[]): Mixture {
  const n = points.length;
  const sigma = TPE_DEFAULTS.sigma0 * Math.max(n, 1) ** (-1 / (dims.length + 4));
  const total = n + TPE_DEFAULTS.priorWeight;
  const logWeights = [
    ...points.map(() => Math.log(1 / total)),
    Math.log(TPE_DEFAULTS.priorWeight / total),
  ];
  const mass = (centre: number, s: number): number =>
    Math.log(Math.max(1e-300, normalCdf((1 - centre) / s) - normalCdf(-centre / s)));
  return {
    centres: [...points, null],
    logWeights,
    sigma,
    logMass: points.map((p) => p.map((c) => mass(c, sigma))),
    priorLogMass: mass(0.5, 1),
  };
}

/** Index of a categorical coordinate. */
const category = (u: number, k: number): number => Math.min(k - 1, Math.max(0, Math.floor(u * k)));

function logKernel(
  m: Mixture,
  component: number,
  x: readonly number[],
  dims: readonly Dimension[],
): number {
  const centre = m.centres[component];
  let log = 0;
  for (let d = 0; d < dims.length; d++) {
    const dim = dims[d] as Dimension;
    const xd = x[d] ?? 0.5;
    if (dim.type === 'categorical') {
      const prior = TPE_DEFAULTS.priorWeight / dim.choices;
      const hit = centre && category(centre[d] ?? 0, dim.choices) === category(xd, dim.choices);
      log += Math.log(((hit ? 1 : 0) + prior) / (centre ? 1 + TPE_DEFAULTS.priorWeight : 1));
      continue;
    }
    const mu = centre ? (centre[d] ?? 0.5) : 0.5;
    const s = centre ? m.sigma : 1;
    const z = (xd - mu) / s;
    const mass = centre ? (m.logMass[component]?.[d] ?? 0) : m.priorLogMass;
    log += -0.5 * z * z - LOG_SQRT_2PI - Math.log(s) - mass;
  }
  return log;
}

function logDensity(m: Mixture, x: readonly number[], dims: readonly Dimension[]): number {
  const terms = m.logWeights.map((w, c) => w + logKernel(m, c, x, dims));
  const top = Math.max(...terms);
  if (top === -Infinity) return -Infinity;
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - top);
  return top + Math.log(sum);
}

/** A draw from N(mu, s) truncated to [0, 1] (rejection; the fallback clamps). */
function truncatedNormal(random: Random, mu: number, s: number): number {
  for (let i = 0; i < 64; i++) {
    const x = mu + s * random.normal();
    if (x >= 0 && x <= 1) return x;
  }
  return Math.min(1, Math.max(0, mu));
}

function sample(m: Mixture, random: Random, dims: readonly Dimension[]): number[] {
  let u = random.uniform();
  let component = m.logWeights.length - 1;
  for (let c = 0; c < m.logWeights.length; c++) {
    u -= Math.exp(m.logWeights[c] ?? -Infinity);
    if (u <= 0) {
      component = c;
      break;
    }
  }
  const centre = m.centres[component];
  return dims.map((dim, d) => {
    if (dim.type === 'categorical') {
      const keep = centre ? 1 / (1 + TPE_DEFAULTS.priorWeight) : 0;
      const index =
        centre && random.uniform() < keep
          ? category(centre[d] ?? 0, dim.choices)
          : Math.min(dim.choices - 1, Math.floor(random.uniform() * dim.choices));
      return (index + 0.5) / dim.choices;
    }
    return centre
      ? truncatedNormal(random, centre[d] ?? 0.5, m.sigma)
      : truncatedNormal(random, 0.5, 1);
  });
}

/**
 * The next point to try, given the observations so far (at least one). Deterministic in the
 * observations' order and the random source.
 */
export function proposeTpe(
  observations: readonly UnitObservation[],
  dims: readonly Dimension[],
  random: Random,
): number[] {
  const ranked = observations
    .map((o, i) => ({ o, i }))
    .sort((a, b) => {
      const sa = a.o.score ?? -Infinity;
      const sb = b.o.score ?? -Infinity;
      return sa === sb ? a.i - b.i : sb - sa;
    });
  const nGood = goodCount(ranked.length);
  const good = mixture(
    ranked.slice(0, nGood).map((r) => r.o.unit),
    dims,
  );
  const bad = mixture(
    ranked.slice(nGood).map((r) => r.o.unit),
    dims,
  );
  let best: number[] = [];
  let bestGain = -Infinity;
  for (let c = 0; c < TPE_DEFAULTS.candidates; c++) {
    const x = sample(good, random, dims);
    const gain = logDensity(good, x, dims) - logDensity(bad, x, dims);
    if (gain > bestGain || best.length === 0) {
      best = x;
      bestGain = gain;
    }
  }
  return best;
}
