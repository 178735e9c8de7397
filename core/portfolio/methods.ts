import { Matrix, solve } from 'ml-matrix';

/**
 * The allocation methods as pure functions of the estimates. Each answers raw weights (long only,
 * ≥ 0) in member order and the share of equity it wants invested in total; core/portfolio/
 * allocate.ts fits them to the policy's constraints. Formulas and references: docs/portfolio.md.
 */

export const ALLOCATION_METHODS = [
  'equal_weight',
  'inverse_volatility',
  'volatility_target',
  'risk_parity',
  'kelly',
  'minimum_variance',
] as const;
export type AllocationMethod = (typeof ALLOCATION_METHODS)[number];

/** A quarter Kelly: the most of the Kelly bet the policy may ask for (DESIGN: ¼–½, we cap at ¼). */
export const KELLY_CAP = 0.25;

const normalize = (weights: readonly number[]): number[] => {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  return weights.map((weight) => weight / total);
};

/** Σw (a vector). */
export const covarianceTimes = (covariance: readonly (readonly number[])[], w: readonly number[]) =>
  covariance.map((row) => row.reduce((sum, value, j) => sum + value * (w[j] ?? 0), 0));

/** √(wᵀΣw), annualized like Σ. */
export function portfolioVolatility(
  covariance: readonly (readonly number[])[],
  w: readonly number[],
): number {
  const sigmaW = covarianceTimes(covariance, w);
  return Math.sqrt(
    Math.max(
      0,
      w.reduce((sum, weight, i) => sum + weight * (sigmaW[i] ?? 0), 0),
    ),
  );
}

/**
 * Each strategy's share of the portfolio's variance: w_i (Σw)_i / wᵀΣw (they add up to 1; all zero
 * for an empty portfolio).
 */
export function riskContributions(
  covariance: readonly (readonly number[])[],
  w: readonly number[],
): number[] {
  const sigmaW = covarianceTimes(covariance, w);
  const variance = w.reduce((sum, weight, i) => sum + weight * (sigmaW[i] ?? 0), 0);
  return w.map((weight, i) => (variance > 0 ? (weight * (sigmaW[i] ?? 0)) / variance : 0));
}

export const equalWeight = (members: number): number[] =>
  new Array<number>(members).fill(1 / members);

export const inverseVolatility = (volatilities: readonly number[]): number[] =>
  normalize(volatilities.map((volatility) => 1 / volatility));

/**
 * Equal risk contribution (risk parity), by Newton's method on Spinu's convex formulation:
 * minimize ½ yᵀΣy − Σ b_i ln y_i (b_i = 1/n) over y > 0; at its minimum y_i (Σy)_i = b_i, so the
 * normalized w = y / Σy has equal risk contributions. Σ positive definite → a unique minimum and
 * quadratic convergence; a backtracking step keeps y > 0.
 */
export function riskParity(covariance: readonly (readonly number[])[]): number[] {
  const n = covariance.length;
  const sigma = new Matrix(covariance.map((row) => [...row]));
  const b = 1 / n;
  let y = covariance.map((row, i) => 1 / Math.sqrt(row[i] ?? 1));
  const objective = (v: readonly number[]): number => {
    const sv = covarianceTimes(covariance, v);
    return v.reduce((s, vi, i) => s + 0.5 * vi * (sv[i] ?? 0) - b * Math.log(vi), 0);
  };
  for (let iteration = 0; iteration < 100; iteration++) {
    const sy = covarianceTimes(covariance, y);
    const gradient = y.map((yi, i) => (sy[i] ?? 0) - b / yi);
    const hessian = sigma.clone();
    y.forEach((yi, i) => hessian.set(i, i, hessian.get(i, i) + b / (yi * yi)));
    const step = solve(hessian, Matrix.columnVector(gradient)).getColumn(0);
    const decrement = gradient.reduce((s, g, i) => s + g * (step[i] ?? 0), 0);
    if (decrement < 1e-22) break;
    let t = 1;
    const before = objective(y);
    for (let k = 0; k < 60; k++) {
      const next = y.map((yi, i) => yi - t * (step[i] ?? 0));
      if (next.every((v) => v > 0) && objective(next) <= before - 0.25 * t * decrement) {
        y = next;
        break;
      }
      t /= 2;
    }
  }
  return normalize(y);
}

/**
 * Long-only minimum variance: w ∝ Σ_S⁻¹1 on the set S of strategies kept; a strategy whose weight
 * comes out negative is dropped and the rest solved again (an active-set pass; it ends within n
 * rounds). With every weight positive in the first round this is the exact global minimum.
 */
export function minimumVariance(covariance: readonly (readonly number[])[]): number[] {
  let kept = covariance.map((_, i) => i);
  for (;;) {
    const sub = new Matrix(kept.map((i) => kept.map((j) => covariance[i]?.[j] ?? 0)));
    const x = solve(sub, Matrix.columnVector(kept.map(() => 1))).getColumn(0);
    if (x.every((value) => value >= 0) || kept.length === 1) {
      const weights = new Array<number>(covariance.length).fill(0);
      const total = x.reduce((s, v) => s + Math.max(0, v), 0);
      kept.forEach((i, k) => (weights[i] = Math.max(0, x[k] ?? 0) / total));
      return weights;
    }
    kept = kept.filter((_, k) => (x[k] ?? 0) >= 0);
  }
}

/**
 * Fractional Kelly for continuous returns: f* = Σ⁻¹μ (the full Kelly bet), times `fraction`
 * (≤ KELLY_CAP); no shorts, so a strategy with a negative Kelly bet gets 0. Not normalized: the sum
 * is the share of equity Kelly wants invested (the constraints then cap it).
 */
export function fractionalKelly(
  means: readonly number[],
  covariance: readonly (readonly number[])[],
  fraction: number,
): number[] {
  const capped = Math.min(Math.max(fraction, 0), KELLY_CAP);
  const full = solve(
    new Matrix(covariance.map((row) => [...row])),
    Matrix.columnVector([...means]),
  ).getColumn(0);
  return full.map((bet) => Math.max(0, bet) * capped);
}

/** The full Kelly bet Σ⁻¹μ (for the figures and the cap's test). */
export const fullKelly = (means: readonly number[], covariance: readonly (readonly number[])[]) =>
  solve(new Matrix(covariance.map((row) => [...row])), Matrix.columnVector([...means])).getColumn(
    0,
  );

/**
 * Volatility targeting: inverse-volatility weights scaled so the portfolio's expected annualized
 * volatility is `target` (the share invested is target / σ(w_ivol); above the budget the
 * constraints cap it, leaving the portfolio below its target).
 */
export function volatilityTarget(
  volatilities: readonly number[],
  covariance: readonly (readonly number[])[],
  target: number,
): { weights: number[]; total: number } {
  const weights = inverseVolatility(volatilities);
  return { weights, total: target / portfolioVolatility(covariance, weights) };
}
