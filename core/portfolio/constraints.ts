import { ValidationError } from '../errors.js';

/**
 * Constraints on an allocation (fractions of the portfolio's equity). The risk limits in force
 * (core/risk) still apply to every order on top of these: an allocation never loosens a limit.
 */
export type AllocationConstraints = {
  /** Largest weight of one strategy; default 0.2 (DESIGN: a single position ≤ 20% of equity). */
  maxWeight: number;
  /** Smallest weight of every member; default 0. */
  minWeight: number;
  /** Share of equity kept as cash; default 0.05. */
  cashBuffer: number;
  /** Largest Σ weights; default 1 (no leverage). */
  maxLeverage: number;
};

export const DEFAULT_CONSTRAINTS: Readonly<AllocationConstraints> = {
  maxWeight: 0.2,
  minWeight: 0,
  cashBuffer: 0.05,
  maxLeverage: 1,
};

/** The most the weights may add up to: min(1 − cash buffer, leverage cap). */
export const budgetOf = (c: AllocationConstraints): number =>
  Math.min(1 - c.cashBuffer, c.maxLeverage);

const invalid = (field: string, message: string): never => {
  throw new ValidationError('INVALID_ALLOCATION_CONSTRAINTS', `${field}: ${message}`, {
    errors: [{ path: field, message }],
  });
};

/** Refuses constraints no allocation of `members` strategies can meet, naming the field. */
export function checkConstraints(c: AllocationConstraints, members: number): void {
  const fraction = (field: keyof AllocationConstraints, value: number): void => {
    if (!Number.isFinite(value) || value < 0 || value > 1)
      invalid(`constraints.${field}`, 'must be a fraction between 0 and 1');
  };
  fraction('maxWeight', c.maxWeight);
  fraction('minWeight', c.minWeight);
  fraction('cashBuffer', c.cashBuffer);
  if (!Number.isFinite(c.maxLeverage) || c.maxLeverage <= 0 || c.maxLeverage > 10)
    invalid('constraints.maxLeverage', 'must be > 0 and at most 10 (the design maximum)');
  if (c.maxWeight <= 0) invalid('constraints.maxWeight', 'must be > 0');
  if (c.minWeight > c.maxWeight)
    invalid('constraints.minWeight', `must not exceed maxWeight (${c.maxWeight})`);
  if (c.cashBuffer >= 1) invalid('constraints.cashBuffer', 'must leave something to invest (< 1)');
  if (members * c.minWeight > budgetOf(c) + 1e-12)
    invalid(
      'constraints.minWeight',
      `${members} members × ${c.minWeight} exceeds what may be invested (${budgetOf(c)})`,
    );
}

/** Why `weights` break the constraints (first problem found), or undefined when they fit. */
export function constraintBreach(
  weights: readonly number[],
  c: AllocationConstraints,
): { field: string; message: string } | undefined {
  const tolerance = 1e-9;
  for (const [index, weight] of weights.entries()) {
    if (!Number.isFinite(weight) || weight < 0)
      return { field: `weights[${index}]`, message: 'must be a finite number ≥ 0' };
    if (weight > c.maxWeight + tolerance)
      return { field: `weights[${index}]`, message: `exceeds maxWeight ${c.maxWeight}` };
    if (weight < c.minWeight - tolerance)
      return { field: `weights[${index}]`, message: `is below minWeight ${c.minWeight}` };
  }
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  if (total > budgetOf(c) + tolerance)
    return {
      field: 'weights',
      message: `add up to ${total}, more than 1 − cashBuffer / maxLeverage allow (${budgetOf(c)})`,
    };
  return undefined;
}

/**
 * Fits raw weights (any non-negative scores) to the constraints, aiming at `total` invested
 * (clipped to the budget): w_i = clamp(λ·raw_i, min, max) with λ found by bisection so that Σ w_i
 * is `total` (or as close below it as the caps allow: with every member at its maximum the rest
 * stays cash). The lower end of the bracket is kept, so Σ w never exceeds the target.
 */
export function fitToConstraints(
  raw: readonly number[],
  total: number,
  c: AllocationConstraints,
  /** Per-member ceilings below maxWeight (Kelly: never more than the fractional Kelly bet). */
  ceilings?: readonly number[],
): number[] {
  const target = Math.min(Math.max(total, 0), budgetOf(c));
  const clamp = (lambda: number): number[] =>
    raw.map((score, i) =>
      Math.max(
        c.minWeight,
        Math.min(c.maxWeight, ceilings?.[i] ?? Infinity, lambda * Math.max(0, score)),
      ),
    );
  const sum = (weights: readonly number[]): number => weights.reduce((s, w) => s + w, 0);
  if (sum(clamp(0)) >= target) return clamp(0);
  let high = 1;
  for (let i = 0; i < 200 && sum(clamp(high)) < target; i++) high *= 2;
  if (sum(clamp(high)) <= target) return clamp(high);
  let low = 0;
  for (let i = 0; i < 200; i++) {
    const middle = (low + high) / 2;
    if (middle === low || middle === high) break;
    if (sum(clamp(middle)) <= target) low = middle;
    else high = middle;
  }
  return clamp(low);
}
