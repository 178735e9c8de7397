import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { checkObjective, scoreOf } from './objectives.js';
import { checkSpace, decode, encode, gridSize, gridValues, type ParameterSpace } from './space.js';
import { planFolds, statisticsOver, stitchedEquity, type TrialRun } from './walk-forward.js';

const refusal = (fn: () => unknown): { code: string; path: string } => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) {
      const errors = error.details.errors as { path: string }[];
      return { code: error.code, path: errors[0]?.path ?? '' };
    }
    throw error;
  }
  throw new Error('expected a refusal');
};

describe('parameter space', () => {
  it('refuses bad ranges, naming the field', () => {
    const check = (space: ParameterSpace) =>
      refusal(() => {
        checkSpace('sma_crossover', space);
      });
    expect(check({})).toEqual({ code: 'EMPTY_SPACE', path: 'space' });
    expect(check({ fastPeriod: { type: 'int', low: 20, high: 5 } })).toEqual({
      code: 'INVERTED_RANGE',
      path: 'space.fastPeriod.high',
    });
    expect(check({ fastPeriod: { type: 'int', low: 5, high: 5 } })).toEqual({
      code: 'EMPTY_RANGE',
      path: 'space.fastPeriod.high',
    });
    expect(check({ fastPeriod: { type: 'set', values: [] } })).toEqual({
      code: 'EMPTY_RANGE',
      path: 'space.fastPeriod.values',
    });
    expect(check({ speed: { type: 'int', low: 1, high: 5 } })).toEqual({
      code: 'UNKNOWN_PARAMETER',
      path: 'space.speed',
    });
    expect(check({ positionFraction: { type: 'real', low: 0, high: 1, log: true } })).toEqual({
      code: 'INVALID_RANGE',
      path: 'space.positionFraction.low',
    });
  });

  it('decodes and encodes on steps and log scales', () => {
    const stepped = { type: 'real', low: 0.1, high: 1, step: 0.1 } as const;
    expect(gridValues('x', stepped)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(decode(stepped, 0.34)).toBe(0.4);
    const log = { type: 'real', low: 1, high: 100, log: true } as const;
    expect(decode(log, 0.5)).toBeCloseTo(10, 10);
    expect(encode(log, 10)).toBeCloseTo(0.5, 10);
    expect(decode({ type: 'int', low: 2, high: 9 }, 1)).toBe(9);
    expect(decode({ type: 'set', values: ['a', 'b', 'c'] }, 0.5)).toBe('b');
  });

  it('counts a grid without building it', () => {
    expect(
      gridSize({
        fastPeriod: { type: 'int', low: 5, high: 50, step: 5 },
        slowPeriod: { type: 'int', low: 60, high: 200, step: 10 },
      }),
    ).toBe(10 * 15);
    expect(() => gridSize({ positionFraction: { type: 'real', low: 0.1, high: 1 } })).toThrow(
      /step is required/,
    );
  });
});

describe('objectives', () => {
  it('refuses a minimum of zero trades for a ratio undefined without trades', () => {
    expect(
      refusal(() => {
        checkObjective({ name: 'sharpe', minTrades: 0 });
      }),
    ).toEqual({
      code: 'INVALID_OBJECTIVE',
      path: 'objective.minTrades',
    });
    expect(() => {
      checkObjective({ name: 'netPnl', minTrades: 0 });
    }).not.toThrow();
  });
});

describe('walk-forward', () => {
  it('cuts rolling and anchored folds; the first block takes the leftover days', () => {
    // 42 days, 2 in-sample blocks + 2 folds = 4 blocks of 10 days; block 0 is days 0–11.
    expect(planFolds({ scheme: 'rolling', folds: 2, inSampleBlocks: 2 }, 42)).toEqual([
      { index: 0, inSample: { from: 0, to: 22 }, outOfSample: { from: 22, to: 32 } },
      { index: 1, inSample: { from: 12, to: 32 }, outOfSample: { from: 32, to: 42 } },
    ]);
    expect(planFolds({ scheme: 'anchored', folds: 2, inSampleBlocks: 2 }, 42)[1]).toEqual({
      index: 1,
      inSample: { from: 0, to: 32 },
      outOfSample: { from: 32, to: 42 },
    });
    expect(
      refusal(() => planFolds({ scheme: 'rolling', folds: 10, inSampleBlocks: 3 }, 30)),
    ).toEqual({ code: 'INVALID_WALK_FORWARD', path: 'walkForward.folds' });
  });

  it('slices a trial into windows and stitches the chosen folds from the initial cash', () => {
    const run: TrialRun = {
      initialCash: 100,
      equity: Float64Array.from([110, 121, 121, 108.9]),
      tradeDays: Int32Array.from([1, 3]),
      tradePnl: Float64Array.from([21, -12.1]),
    };
    const stats = statisticsOver(run, { from: 2, to: 4 });
    expect(stats.initialEquity).toBe(121);
    expect(stats.finalEquity).toBeCloseTo(108.9, 10);
    expect(stats.trades).toBe(1);
    expect(scoreOf({ name: 'netPnl', minTrades: 1 }, stats)).toBeCloseTo(-12.1, 10);
    expect(scoreOf({ name: 'netPnl', minTrades: 2 }, stats)).toBeNull();
    const folds = [
      { index: 0, inSample: { from: 0, to: 1 }, outOfSample: { from: 1, to: 2 } },
      { index: 1, inSample: { from: 1, to: 2 }, outOfSample: { from: 2, to: 4 } },
    ];
    const points = stitchedEquity(folds, [run, null], 1000);
    expect(points.map((p) => p.day)).toEqual([1, 2, 3]);
    expect(points[0]?.equity).toBeCloseTo(1100, 9);
    expect(points[2]?.equity).toBeCloseTo(1100, 9);
  });
});
