import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { PERIODS_PER_YEAR } from '../trading/statistics.js';

/**
 * Risk estimates of the member strategies from their daily returns (daily UTC mark-to-market, 365
 * periods a year, as docs/trading.md): annualized means, volatilities and a Ledoit–Wolf shrunk
 * covariance. The sample covariance of a few dozen days is noisy and often near-singular; shrinking
 * it towards a scaled identity (Ledoit & Wolf 2004, the estimator scikit-learn's `LedoitWolf` uses)
 * gives a well-conditioned matrix with the optimal intensity computed from the data itself.
 */

/** Fewer daily returns than this: no estimate (a recorded proposal failure). */
export const MIN_OBSERVATIONS = 3;

export type Estimate = {
  /** Daily returns used per strategy (all series have this length). */
  observations: number;
  /** Annualized mean return per strategy (in member order). */
  means: number[];
  /** Annualized volatility per strategy: √ of the shrunk covariance's diagonal. */
  volatilities: number[];
  /** Annualized Ledoit–Wolf covariance (p × p). */
  covariance: number[][];
  /** The shrinkage intensity δ ∈ [0, 1] (0 = sample covariance, 1 = scaled identity). */
  shrinkage: number;
};

/** A data problem: recorded as a proposal failure with this code and reason, never thrown at a client. */
export type EstimationFailure = { ok: false; code: EstimationFailureCode; reason: string };
export type EstimationFailureCode =
  'ESTIMATION_WINDOW_EMPTY' | 'RETURNS_MISALIGNED' | 'RETURNS_NOT_FINITE' | 'SINGULAR_COVARIANCE';

/**
 * Ledoit–Wolf shrinkage of the (maximum-likelihood) sample covariance of `x` (n × p, one row per
 * day), towards μ·I with μ = trace / p. Returns the shrunk matrix and δ.
 */
export function ledoitWolf(x: Matrix): { covariance: Matrix; shrinkage: number } {
  const n = x.rows;
  const p = x.columns;
  const centered = x.clone();
  for (let j = 0; j < p; j++) {
    const column = centered.getColumn(j);
    const mean = column.reduce((sum, value) => sum + value, 0) / n;
    for (let i = 0; i < n; i++) centered.set(i, j, (column[i] ?? 0) - mean);
  }
  const sample = centered.transpose().mmul(centered).div(n);
  const mu = sample.trace() / p;
  // π̂ (the sum of asymptotic variances of the entries) and d̂² (distance to the target).
  let pi = 0;
  for (let i = 0; i < n; i++) {
    const row = centered.getRow(i);
    for (let a = 0; a < p; a++)
      for (let b = 0; b < p; b++) {
        const product = (row[a] ?? 0) * (row[b] ?? 0) - sample.get(a, b);
        pi += product * product;
      }
  }
  pi /= n * n;
  let distance = 0;
  for (let a = 0; a < p; a++)
    for (let b = 0; b < p; b++) {
      const difference = sample.get(a, b) - (a === b ? mu : 0);
      distance += difference * difference;
    }
  const shrinkage = distance === 0 ? 0 : Math.min(1, Math.max(0, pi / distance));
  const covariance = sample.mul(1 - shrinkage);
  for (let a = 0; a < p; a++) covariance.set(a, a, covariance.get(a, a) + shrinkage * mu);
  return { covariance, shrinkage };
}

/** True when the symmetric matrix has a Cholesky factor with a clearly positive diagonal. */
export function isPositiveDefinite(matrix: Matrix): boolean {
  const cholesky = new CholeskyDecomposition(matrix);
  if (!cholesky.isPositiveDefinite()) return false;
  const factor = cholesky.lowerTriangularMatrix;
  const scale = Math.max(...matrix.diag().map(Math.abs), 0);
  for (let i = 0; i < matrix.rows; i++) if (!(factor.get(i, i) ** 2 > scale * 1e-12)) return false;
  return true;
}

/**
 * The estimate from aligned daily return series, one per strategy (in member order), or the data
 * problem that prevents one.
 */
export function estimate(
  returns: readonly (readonly number[])[],
): ({ ok: true } & Estimate) | EstimationFailure {
  const p = returns.length;
  const n = returns[0]?.length ?? 0;
  if (p === 0 || n < MIN_OBSERVATIONS)
    return {
      ok: false,
      code: 'ESTIMATION_WINDOW_EMPTY',
      reason: `the estimation window holds ${n} daily returns; at least ${MIN_OBSERVATIONS} are needed`,
    };
  if (returns.some((series) => series.length !== n))
    return {
      ok: false,
      code: 'RETURNS_MISALIGNED',
      reason: `the strategies' return series differ in length (${returns.map((s) => s.length).join(', ')})`,
    };
  if (returns.some((series) => series.some((value) => !Number.isFinite(value))))
    return {
      ok: false,
      code: 'RETURNS_NOT_FINITE',
      reason: 'a daily return is not a finite number',
    };
  const x = new Matrix(n, p);
  returns.forEach((series, j) => {
    series.forEach((value, i) => x.set(i, j, value));
  });
  const { covariance, shrinkage } = ledoitWolf(x);
  const annual = covariance.mul(PERIODS_PER_YEAR);
  if (!isPositiveDefinite(annual))
    return {
      ok: false,
      code: 'SINGULAR_COVARIANCE',
      reason:
        'the shrunk covariance is singular: a strategy without any variation in the window (flat, or no trades)?',
    };
  const volatilities = annual.diag().map(Math.sqrt);
  const zero = volatilities.findIndex((volatility) => !(volatility > 0));
  if (zero >= 0)
    return {
      ok: false,
      code: 'SINGULAR_COVARIANCE',
      reason: `strategy ${zero + 1} has no variance in the window`,
    };
  return {
    ok: true,
    observations: n,
    means: returns.map((series) => (series.reduce((s, v) => s + v, 0) / n) * PERIODS_PER_YEAR),
    volatilities,
    covariance: annual.to2DArray(),
    shrinkage,
  };
}
