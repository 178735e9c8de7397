import { describe, expect, it } from 'vitest';
import { ceilToStep, cleanQuantity, decimalsOf, floorToStep, roundToStep } from './rounding.js';

describe('tick and lot rounding', () => {
  it('counts the decimals of a step', () => {
    expect([1, 0.1, 0.01, 0.001, 0.5, 1e-8, 2.5e-7].map(decimalsOf)).toEqual([0, 1, 2, 3, 1, 8, 8]);
    expect(() => decimalsOf(0)).toThrow(RangeError);
  });

  it('rounds down, up and to the nearest step without float dust', () => {
    expect(floorToStep(0.12345, 0.001)).toBe(0.123);
    expect(ceilToStep(0.12345, 0.001)).toBe(0.124);
    expect(roundToStep(101.235, 0.01)).toBe(101.24);
    expect(floorToStep(102.102, 0.01)).toBe(102.1);
    expect(ceilToStep(102.102, 0.01)).toBe(102.11);
    // 0.1 + 0.2 is 0.30000000000000004: on the lot, not above it.
    expect(floorToStep(0.1 + 0.2, 0.1)).toBe(0.3);
    expect(ceilToStep(0.1 + 0.2, 0.1)).toBe(0.3);
    expect(floorToStep(49.0196078, 0.001)).toBe(49.019);
    expect(floorToStep(7, 5)).toBe(5);
  });

  it('cleans sums of quantities', () => {
    expect(cleanQuantity(0.1 + 0.2)).toBe(0.3);
    expect(cleanQuantity(0.3 - 0.1 - 0.2)).toBe(0);
    expect(cleanQuantity(-1.5)).toBe(-1.5);
  });
});
