import { describe, expect, it } from 'vitest';
import { propose, proposeAt, type Method, type Observation } from './samplers.js';
import type { ParameterSet, ParameterSpace } from './space.js';

/** Branin on x1 ∈ [−5, 10], x2 ∈ [0, 15]; global minimum 0.397887 at three points. */
const branin = (p: ParameterSet): number => {
  const x1 = Number(p.x1);
  const x2 = Number(p.x2);
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
};
const braninSpace: ParameterSpace = {
  x1: { type: 'real', low: -5, high: 10 },
  x2: { type: 'real', low: 0, high: 15 },
};

/** Hartmann-6 on [0, 1]^6; global minimum −3.32237. */
const A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((row) => row.map((v) => v * 1e-4));
const ALPHA = [1, 1.2, 3, 3.2];
const hartmann6 = (p: ParameterSet): number => {
  let sum = 0;
  for (let i = 0; i < 4; i++) {
    let inner = 0;
    for (let j = 0; j < 6; j++) {
      const x = Number(p[`x${j + 1}`]);
      inner += (A[i]?.[j] ?? 0) * (x - (P[i]?.[j] ?? 0)) ** 2;
    }
    sum += (ALPHA[i] ?? 0) * Math.exp(-inner);
  }
  return -sum;
};
const hartmannSpace: ParameterSpace = Object.fromEntries(
  Array.from({ length: 6 }, (_, j) => [`x${j + 1}`, { type: 'real', low: 0, high: 1 }]),
);

/** Best (lowest) value found in `budget` trials, proposed in batches of 4. */
function search(
  method: Method,
  space: ParameterSpace,
  f: (p: ParameterSet) => number,
  seed: number,
  budget: number,
): number {
  const history: Observation[] = [];
  while (history.length < budget)
    for (const point of propose(method, space, seed, history, 4))
      history.push({ point, score: -f(point) });
  return Math.min(...history.map((o) => -(o.score ?? Infinity)));
}

describe('samplers', () => {
  it('random search is reproducible from its seed, and batch cuts do not change it', () => {
    const a = propose('random', braninSpace, 7, [], 8);
    const history: Observation[] = a.slice(0, 3).map((point) => ({ point, score: 0 }));
    const b = propose('random', braninSpace, 7, history, 5);
    expect(b).toEqual(a.slice(3));
    expect(propose('random', braninSpace, 8, [], 8)).not.toEqual(a);
  });

  it('grid and random points depend on the index alone, so a batch can be proposed ahead; Bayesian ones cannot', () => {
    const a = propose('random', braninSpace, 7, [], 8);
    expect(proposeAt('random', braninSpace, 7, 3, 5)).toEqual(a.slice(3));
    const stepped: ParameterSpace = {
      x1: { type: 'int', low: 1, high: 4 },
      x2: { type: 'real', low: 0, high: 1, step: 0.5 },
    };
    const grid = propose('grid', stepped, 7, [], 8);
    expect(proposeAt('grid', stepped, 7, 3, 5)).toEqual(grid.slice(3));
    expect(() => proposeAt('bayesian', braninSpace, 7, 3, 5)).toThrow(/from its results/);
  });

  it('grid search walks the grid in order over sorted names', () => {
    const space: ParameterSpace = {
      slowPeriod: { type: 'int', low: 30, high: 50, step: 10 },
      fastPeriod: { type: 'set', values: [5, 10] },
    };
    const points = propose('grid', space, 1, [], 6);
    expect(points).toEqual([
      { fastPeriod: 5, slowPeriod: 30 },
      { fastPeriod: 5, slowPeriod: 40 },
      { fastPeriod: 5, slowPeriod: 50 },
      { fastPeriod: 10, slowPeriod: 30 },
      { fastPeriod: 10, slowPeriod: 40 },
      { fastPeriod: 10, slowPeriod: 50 },
    ]);
  });

  it.each([
    ['Branin (2-D)', braninSpace, branin, 60],
    ['Hartmann-6 (6-D)', hartmannSpace, hartmann6, 120],
  ] as const)(
    'Bayesian (TPE) beats random search on %s at equal budget for most seeds',
    (_, space, f, budget) => {
      let wins = 0;
      const seeds = Array.from({ length: 10 }, (_, i) => i + 1);
      const rows = seeds.map((seed) => {
        const tpe = search('bayesian', space, f, seed, budget);
        const random = search('random', space, f, seed, budget);
        if (tpe < random) wins++;
        return { seed, tpe, random };
      });
      expect(wins, JSON.stringify(rows)).toBeGreaterThanOrEqual(7);
    },
    60_000,
  );
});
