import { budgetOf, checkConstraints, fitToConstraints } from './constraints.js';
import { estimate, type Estimate, type EstimationFailureCode } from './estimation.js';
import {
  equalWeight,
  fractionalKelly,
  inverseVolatility,
  minimumVariance,
  portfolioVolatility,
  riskContributions,
  riskParity,
  volatilityTarget,
} from './methods.js';
import type { AllocationPolicy } from './policy.js';

/**
 * One allocation computed from a policy and the members' daily returns: the weights and every
 * figure that went into them (what `AllocationProposed` records), or the data problem that
 * prevented it (what `AllocationProposalFailed` records). Pure and deterministic: the same inputs
 * give the same weights, bit for bit.
 */

export type AllocationFigures = {
  /** Weight per member, in member order (fractions of equity). */
  weights: number[];
  /** Daily returns the estimates used (0 for equal weight without data). */
  observations: number;
  /** Annualized, per member; null when the method needed no estimate and none could be made. */
  volatilities: number[] | null;
  /** The Ledoit–Wolf covariance used (annualized); null likewise. */
  covariance: number[][] | null;
  shrinkage: number | null;
  /** √(wᵀΣw) of the final weights. */
  expectedVolatility: number | null;
  /** Each member's share of the portfolio's variance. */
  riskContributions: number[] | null;
  /** Σ weights wanted before the constraints (the method's own total). */
  requestedTotal: number;
};

export type AllocationResult =
  | ({ ok: true } & AllocationFigures)
  | { ok: false; code: EstimationFailureCode | 'NO_MEMBERS'; reason: string };

/**
 * `returns[i]` is member i's daily returns over the estimation window (aligned, oldest first).
 * Policy problems (constraints no allocation can meet) throw a ValidationError naming the field.
 */
export function allocate(
  policy: AllocationPolicy,
  returns: readonly (readonly number[])[],
): AllocationResult {
  const members = returns.length;
  if (members === 0)
    return { ok: false, code: 'NO_MEMBERS', reason: 'the portfolio has no member strategies' };
  const c = policy.constraints;
  checkConstraints(c, members);
  const estimated = estimate(returns);
  const budget = budgetOf(c);
  if (policy.method === 'equal_weight') {
    const weights = fitToConstraints(equalWeight(members), budget, c);
    return withFigures(weights, budget, estimated.ok ? estimated : null);
  }
  if (!estimated.ok) return estimated;
  const { volatilities, covariance, means } = estimated;
  switch (policy.method) {
    case 'inverse_volatility':
      return withFigures(
        fitToConstraints(inverseVolatility(volatilities), budget, c),
        budget,
        estimated,
      );
    case 'risk_parity':
      return withFigures(fitToConstraints(riskParity(covariance), budget, c), budget, estimated);
    case 'minimum_variance':
      return withFigures(
        fitToConstraints(minimumVariance(covariance), budget, c),
        budget,
        estimated,
      );
    case 'volatility_target': {
      // The policy schema guarantees a target for this method.
      const { weights, total } = volatilityTarget(
        volatilities,
        covariance,
        policy.targetVolatility ?? 0,
      );
      return withFigures(fitToConstraints(weights, total, c), total, estimated);
    }
    case 'kelly': {
      const kelly = fractionalKelly(means, covariance, policy.kellyFraction);
      const total = kelly.reduce((sum, weight) => sum + weight, 0);
      return withFigures(fitToConstraints(kelly, total, c, kelly), total, estimated);
    }
  }
}

function withFigures(
  weights: number[],
  requestedTotal: number,
  estimated: Estimate | null,
): { ok: true } & AllocationFigures {
  return {
    ok: true,
    weights,
    observations: estimated?.observations ?? 0,
    volatilities: estimated?.volatilities ?? null,
    covariance: estimated?.covariance ?? null,
    shrinkage: estimated?.shrinkage ?? null,
    expectedVolatility: estimated ? portfolioVolatility(estimated.covariance, weights) : null,
    riskContributions: estimated ? riskContributions(estimated.covariance, weights) : null,
    requestedTotal: Number.isFinite(requestedTotal) ? requestedTotal : 0,
  };
}
