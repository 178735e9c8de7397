import { describe, expect, it } from 'vitest';
import { allocate } from './allocate.js';
import { checkConstraints, DEFAULT_CONSTRAINTS, fitToConstraints } from './constraints.js';
import { estimate } from './estimation.js';
import { minimumVariance, riskContributions } from './methods.js';
import { policySchema } from './policy.js';

// Five days of three strategies' returns (columns).
const DAYS = [
  [0.01, 0.02, -0.01],
  [0.03, -0.01, 0.0],
  [-0.02, 0.01, 0.02],
  [0.0, 0.015, -0.005],
  [0.01, -0.02, 0.01],
];
const SERIES = [0, 1, 2].map((j) => DAYS.map((day) => day[j] ?? NaN));

describe('Ledoit–Wolf estimate', () => {
  it('matches the reference formula (scikit-learn ledoit_wolf, computed with numpy), ×365', () => {
    const result = estimate(SERIES);
    if (!result.ok) throw new Error(result.reason);
    expect(result.shrinkage).toBeCloseTo(0.7473850280034706, 12);
    const expected = [
      [0.08035599526701903, -0.01088012684389052, -0.00903603754831586],
      [-0.01088012684389052, 0.0777742702532145, -0.00590108574583893],
      [-0.00903603754831586, -0.00590108574583893, 0.06670973447976651],
    ];
    result.covariance.forEach((row, i) => {
      row.forEach((value, j) => {
        expect(value).toBeCloseTo(expected[i]?.[j] ?? NaN, 14);
      });
    });
    expect(result.volatilities[0]).toBeCloseTo(Math.sqrt(0.08035599526701903), 12);
  });

  it('is positive definite with fewer days than strategies (the sample covariance is not)', () => {
    const series = Array.from({ length: 6 }, (_, j) => [0.01 * j, -0.02, 0.005 * (j % 3), 0.01]);
    const result = estimate(series);
    expect(result.ok).toBe(true);
  });
});

describe('data problems are answers, not exceptions', () => {
  const policy = policySchema.parse({ method: 'risk_parity' });

  it('an estimation window without data', () => {
    expect(allocate(policy, [[], []])).toMatchObject({
      ok: false,
      code: 'ESTIMATION_WINDOW_EMPTY',
    });
  });

  it('a singular covariance (no strategy moved in the window)', () => {
    expect(
      allocate(policy, [new Array<number>(10).fill(0), new Array<number>(10).fill(0)]),
    ).toMatchObject({ ok: false, code: 'SINGULAR_COVARIANCE' });
  });

  it('misaligned series', () => {
    expect(
      allocate(policy, [
        [0.01, 0.02, 0.03],
        [0.01, 0.02],
      ]),
    ).toMatchObject({
      ok: false,
      code: 'RETURNS_MISALIGNED',
    });
  });

  it('equal weight needs no estimate', () => {
    const result = allocate(policySchema.parse({ method: 'equal_weight' }), [[], [], []]);
    expect(result).toMatchObject({ ok: true, weights: [0.2, 0.2, 0.2], volatilities: null });
  });
});

describe('methods and constraints', () => {
  it('equal weight of 4 under the defaults: 4 × 20% (the cap binds before 95%)', () => {
    const result = allocate(policySchema.parse({ method: 'equal_weight' }), [[], [], [], []]);
    expect(result.ok && result.weights).toEqual([0.2, 0.2, 0.2, 0.2]);
  });

  it('equal weight of 10: 95% / 10 each (the cash buffer binds)', () => {
    const result = allocate(
      policySchema.parse({ method: 'equal_weight' }),
      Array.from({ length: 10 }, () => []),
    );
    if (!result.ok) throw new Error(result.reason);
    result.weights.forEach((weight) => {
      expect(weight).toBeCloseTo(0.095, 12);
    });
  });

  it('minimum variance of two: w₁ = (σ₂² − σ₁₂) / (σ₁² + σ₂² − 2σ₁₂)', () => {
    const covariance = [
      [0.04, 0.006],
      [0.006, 0.09],
    ];
    const [w1] = minimumVariance(covariance);
    expect(w1).toBeCloseTo((0.09 - 0.006) / (0.04 + 0.09 - 0.012), 12);
  });

  it('minimum variance drops a strategy whose weight would be negative', () => {
    // Strongly correlated and more volatile: the unconstrained minimum shorts the second.
    const covariance = [
      [0.04, 0.058],
      [0.058, 0.09],
    ];
    expect(minimumVariance(covariance)).toEqual([1, 0]);
  });

  it('risk contributions of the reported allocation add up to 1', () => {
    const result = allocate(policySchema.parse({ method: 'inverse_volatility' }), SERIES);
    if (!result.ok || !result.covariance) throw new Error('no estimate');
    const contributions = riskContributions(result.covariance, result.weights);
    expect(contributions.reduce((s, c) => s + c, 0)).toBeCloseTo(1, 12);
    expect(result.riskContributions).toEqual(contributions);
  });

  it('volatility target: scales the invested share to the target when the caps allow', () => {
    const result = allocate(
      policySchema.parse({
        method: 'volatility_target',
        targetVolatility: 0.05,
        constraints: { maxWeight: 1, cashBuffer: 0 },
      }),
      SERIES,
    );
    if (!result.ok) throw new Error(result.reason);
    expect(result.expectedVolatility).toBeCloseTo(0.05, 10);
    expect(result.weights.reduce((s, w) => s + w, 0)).toBeLessThan(1);
  });

  it('constraints no allocation can meet are refused, naming the field', () => {
    expect(() => {
      checkConstraints({ ...DEFAULT_CONSTRAINTS, minWeight: 0.3, maxWeight: 0.5 }, 4);
    }).toThrow(/constraints\.minWeight/);
    expect(() => {
      checkConstraints({ ...DEFAULT_CONSTRAINTS, maxLeverage: 0 }, 2);
    }).toThrow(/constraints\.maxLeverage/);
  });

  it('fitting keeps every member between min and max and the total at the budget', () => {
    const weights = fitToConstraints([5, 1, 1, 1], 0.9, {
      ...DEFAULT_CONSTRAINTS,
      maxWeight: 0.4,
      minWeight: 0.1,
    });
    expect(weights[0]).toBeCloseTo(0.4, 12);
    expect(weights.reduce((s, w) => s + w, 0)).toBeCloseTo(0.9, 9);
    weights.slice(1).forEach((w) => {
      expect(w).toBeCloseTo(0.5 / 3, 9);
    });
  });
});

describe('policy validation names the field', () => {
  it('a volatility target of zero', () => {
    const parsed = policySchema.safeParse({ method: 'volatility_target', targetVolatility: 0 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['targetVolatility']);
  });

  it('more than a quarter Kelly', () => {
    const parsed = policySchema.safeParse({ method: 'kelly', kellyFraction: 0.5 });
    expect(parsed.error?.issues[0]?.path).toEqual(['kellyFraction']);
  });

  it('defaults: risk parity, 20% max, 5% cash, 5 pp drift band', () => {
    const policy = policySchema.parse({});
    expect(policy).toMatchObject({
      method: 'risk_parity',
      constraints: { maxWeight: 0.2, cashBuffer: 0.05, minWeight: 0, maxLeverage: 1 },
      rebalance: { driftBand: 0.05, onMembershipChange: true },
      sizing: { enabled: true },
    });
  });
});
