import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate } from './allocate.js';
import { budgetOf, constraintBreach, type AllocationConstraints } from './constraints.js';
import { estimate } from './estimation.js';
import {
  ALLOCATION_METHODS,
  fractionalKelly,
  fullKelly,
  inverseVolatility,
  KELLY_CAP,
  riskContributions,
  riskParity,
} from './methods.js';
import { policySchema, type AllocationPolicy } from './policy.js';

/** Random positive-definite covariance: B·Bᵀ + εI with B a random p × p matrix, annualized scale. */
const covarianceArb = (p: number): fc.Arbitrary<number[][]> =>
  fc
    .array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: p * p, maxLength: p * p })
    .chain((entries) =>
      fc.double({ min: 0.001, max: 0.05, noNaN: true }).map((epsilon) => {
        const b = (i: number, k: number): number => (entries[i * p + k] ?? 0) * 0.3;
        return Array.from({ length: p }, (_, i) =>
          Array.from({ length: p }, (_, j) => {
            let sum = i === j ? epsilon : 0;
            for (let k = 0; k < p; k++) sum += b(i, k) * b(j, k);
            return sum;
          }),
        );
      }),
    );

/** Daily returns of `p` strategies over `n` days. */
const returnsArb = (p: number, n: number): fc.Arbitrary<number[][]> =>
  fc.array(
    fc.array(fc.double({ min: -0.08, max: 0.08, noNaN: true }), { minLength: n, maxLength: n }),
    { minLength: p, maxLength: p },
  );

/** Constraints some allocation of `p` members can meet. */
const constraintsArb = (p: number): fc.Arbitrary<AllocationConstraints> =>
  fc
    .record({
      maxWeight: fc.double({ min: 0.05, max: 1, noNaN: true }),
      minShare: fc.double({ min: 0, max: 1, noNaN: true }),
      cashBuffer: fc.double({ min: 0, max: 0.5, noNaN: true }),
      maxLeverage: fc.double({ min: 0.3, max: 3, noNaN: true }),
    })
    .map(({ maxWeight, minShare, cashBuffer, maxLeverage }) => {
      const budget = Math.min(1 - cashBuffer, maxLeverage);
      const minWeight = Math.min(maxWeight, budget / p) * minShare * 0.99;
      return { maxWeight, minWeight, cashBuffer, maxLeverage };
    });

const policyArb = (p: number): fc.Arbitrary<AllocationPolicy> =>
  fc
    .record({
      method: fc.constantFrom(...ALLOCATION_METHODS),
      targetVolatility: fc.double({ min: 0.01, max: 1, noNaN: true }),
      kellyFraction: fc.double({ min: 0.01, max: KELLY_CAP, noNaN: true }),
      constraints: constraintsArb(p),
    })
    .map((input) => policySchema.parse(input));

const scenarioArb = fc.integer({ min: 1, max: 6 }).chain((p) =>
  fc.tuple(
    policyArb(p),
    fc.integer({ min: 3, max: 40 }).chain((n) => returnsArb(p, n)),
  ),
);

describe('allocation properties', () => {
  it('weights never exceed 1 − cash buffer (nor the leverage cap), and every constraint holds', () => {
    fc.assert(
      fc.property(scenarioArb, ([policy, returns]) => {
        const result = allocate(policy, returns);
        if (!result.ok) return; // a data problem (e.g. every series flat) is answered, not thrown
        const total = result.weights.reduce((sum, weight) => sum + weight, 0);
        expect(total).toBeLessThanOrEqual(1 - policy.constraints.cashBuffer + 1e-12);
        expect(total).toBeLessThanOrEqual(budgetOf(policy.constraints) + 1e-12);
        expect(constraintBreach(result.weights, policy.constraints)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('the same inputs give the same weights, bit for bit', () => {
    fc.assert(
      fc.property(scenarioArb, ([policy, returns]) => {
        const copy = returns.map((series) => [...series]);
        expect(allocate(policy, copy)).toEqual(allocate(policy, returns));
      }),
      { numRuns: 100 },
    );
  });

  it('risk parity: risk contributions equal within 1e-6 on random positive-definite covariances', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }).chain((p) => covarianceArb(p)),
        (covariance) => {
          const weights = riskParity(covariance);
          const contributions = riskContributions(covariance, weights);
          const equal = 1 / covariance.length;
          for (const contribution of contributions)
            expect(Math.abs(contribution - equal)).toBeLessThan(1e-6);
          expect(weights.reduce((s, w) => s + w, 0)).toBeCloseTo(1, 12);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('risk parity with equal correlations is inverse volatility', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.05, max: 2, noNaN: true }), { minLength: 2, maxLength: 8 }),
        fc.double({ min: -0.1, max: 0.95, noNaN: true }),
        (volatilities, rho) => {
          const p = volatilities.length;
          // Equal correlations ρ > −1/(p−1) keep the matrix positive definite.
          fc.pre(rho > -1 / (p - 1) + 0.01);
          const covariance = volatilities.map((vi, i) =>
            volatilities.map((vj, j) => (i === j ? vi * vi : rho * vi * vj)),
          );
          const parity = riskParity(covariance);
          const inverse = inverseVolatility(volatilities);
          parity.forEach((weight, i) => {
            expect(weight).toBeCloseTo(inverse[i] ?? NaN, 8);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Kelly never exceeds its cap: each weight ≤ ¼ of the full Kelly bet, never negative', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 6 })
          .chain((p) =>
            fc.tuple(
              covarianceArb(p),
              fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: p, maxLength: p }),
              fc.double({ min: 0, max: 5, noNaN: true }),
            ),
          ),
        ([covariance, means, fraction]) => {
          const full = fullKelly(means, covariance);
          const kelly = fractionalKelly(means, covariance, fraction);
          kelly.forEach((weight, i) => {
            expect(weight).toBeGreaterThanOrEqual(0);
            expect(weight).toBeLessThanOrEqual(KELLY_CAP * Math.max(0, full[i] ?? 0) + 1e-12);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Kelly through the constraints still never exceeds the fractional Kelly bet (nor its cap)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((p) =>
          fc.tuple(
            returnsArb(p, 30),
            constraintsArb(p).map((c) => ({ ...c, minWeight: 0 })),
          ),
        ),
        ([returns, constraints]) => {
          const policy = policySchema.parse({ method: 'kelly', kellyFraction: 0.25, constraints });
          const result = allocate(policy, returns);
          const estimated = estimate(returns);
          if (!result.ok || !estimated.ok) return;
          const full = fullKelly(estimated.means, estimated.covariance);
          result.weights.forEach((weight, i) => {
            expect(weight).toBeLessThanOrEqual(KELLY_CAP * Math.max(0, full[i] ?? 0) + 1e-12);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
