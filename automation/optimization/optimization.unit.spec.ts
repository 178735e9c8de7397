import { describe, expect, it } from 'vitest';
import { DEFAULT_GATE } from '../../core/optimization/gate.js';
import type { OptimizationRun } from '../../core/optimization/optimization.js';
import { ADOPTION_PARTY, adoptionIntents, adoptionRequestId } from './adoption.js';
import { toStart } from './runner.js';

const run = (overrides: Partial<OptimizationRun> = {}, passed = true): OptimizationRun =>
  ({
    optimizationId: 'o1',
    status: 'completed',
    strategyId: 's1',
    outcome: {
      bestParameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
      verdict: {
        passed,
        reasons: passed ? [] : ['DSR_BELOW_GATE: dsr=0.4, min=0.95'],
        gate: DEFAULT_GATE,
      },
    },
    ...overrides,
  }) as unknown as OptimizationRun;

describe('adoption (capability 2)', () => {
  it('given a completed run of a strategy that passed the gate, proposes its parameters for approval', () => {
    const [only, ...rest] = adoptionIntents(run());
    expect(rest).toEqual([]);
    expect(only?.streamId).toBe('strategy-s1');
    expect(only?.command).toEqual({
      type: 'RequestParameterChange',
      strategyId: 's1',
      requestId: adoptionRequestId('o1'),
      by: ADOPTION_PARTY,
      parameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
    });
    expect(adoptionRequestId('o1')).toBe(adoptionRequestId('o1'));
    expect(adoptionRequestId('o2')).not.toBe(adoptionRequestId('o1'));
  });

  it('given a result that failed the gate, changes nothing', () => {
    expect(adoptionIntents(run({}, false))).toEqual([]);
  });

  it('given a run of a bare kind (no strategy), or one not completed, changes nothing', () => {
    expect(adoptionIntents(run({ strategyId: null }))).toEqual([]);
    expect(adoptionIntents(run({ status: 'cancelled' }))).toEqual([]);
  });
});

describe('the optimizer', () => {
  it('starts unfinished runs not running here, up to its capacity, oldest first', () => {
    expect(toStart(['a', 'b', 'c'], new Set(), 1)).toEqual(['a']);
    expect(toStart(['a', 'b', 'c'], new Set(['a']), 2)).toEqual(['b']);
    expect(toStart(['a', 'b'], new Set(['x', 'y']), 2)).toEqual([]);
  });
});
