import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import type { Candle, Instrument } from '../market/types.js';
import { DEFAULT_GATE } from './gate.js';
import { optimizations, type OptimizationCommand, type OptimizationEvent } from './optimization.js';
import { outcomeOf, progressOf, searchOf, trialSetupOf } from './outcome.js';
import type { OptimizationSpec } from './request.js';
import { runTrial } from './trial.js';

const analyst = { id: 'apikey:a1', role: 'analyst' } as const;
const DAY = 86_400_000;
const FROM = Date.UTC(2025, 0, 1);
const TO = FROM + 120 * DAY;

const request = (
  overrides: Partial<Extract<OptimizationCommand, { type: 'RequestOptimization' }>> = {},
): OptimizationCommand => ({
  type: 'RequestOptimization',
  optimizationId: 'o1',
  requestedBy: analyst,
  kind: 'sma_crossover',
  symbol: 'BTCUSDT',
  timeframe: '1h',
  from: new Date(FROM).toISOString(),
  to: new Date(TO).toISOString(),
  space: {
    fastPeriod: { type: 'int', low: 5, high: 20, step: 5 },
    slowPeriod: { type: 'int', low: 30, high: 90, step: 20 },
  },
  method: 'grid',
  objective: { name: 'sharpe', minTrades: 1 },
  walkForward: { scheme: 'rolling', folds: 3, inSampleBlocks: 2 },
  budget: { trials: 16 },
  seed: 7,
  batchSize: 4,
  candlesInWindow: 2880,
  ...overrides,
});

const requested = (): OptimizationEvent[] =>
  optimizations.decide(request(), optimizations.initialState());

describe('optimization aggregate', () => {
  it('records a request with its defaults filled in', () => {
    const [event] = optimizations.decide(request(), optimizations.initialState());
    expect(event?.type).toBe('OptimizationRequested');
    expect(event?.data).toMatchObject({
      optimizationId: 'o1',
      baseParameters: { fastPeriod: 20, slowPeriod: 50, positionFraction: 0.5 },
      budget: { trials: 16, wallSeconds: 3600 },
      trigger: { type: 'manual' },
      objective: { name: 'sharpe', minTrades: 1 },
    });
  });

  it.each([
    [
      { space: { fastPeriod: { type: 'int', low: 20, high: 5 } } },
      'INVERTED_RANGE',
      'space.fastPeriod.high',
    ],
    [
      { space: { fastPeriod: { type: 'int', low: 5, high: 5 } } },
      'EMPTY_RANGE',
      'space.fastPeriod.high',
    ],
    [{ space: { speed: { type: 'int', low: 1, high: 5 } } }, 'UNKNOWN_PARAMETER', 'space.speed'],
    [{ budget: { trials: 10 } }, 'GRID_LARGER_THAN_BUDGET', 'budget.trials'],
    [{ candlesInWindow: 0 }, 'NO_MARKET_DATA', 'from'],
    [{ objective: { name: 'sortino', minTrades: 0 } }, 'INVALID_OBJECTIVE', 'objective.minTrades'],
    [{ method: 'genetic' }, 'INVALID_METHOD', 'method'],
  ] as const)('refuses %j with %s naming %s, writing nothing', (overrides, code, path) => {
    const error = given(optimizations, []).when(request(overrides)).thenRefuses(code);
    expect(error.details).toMatchObject({ errors: [{ path }] });
  });

  it('records batches in order, once each; refuses a gap', () => {
    const past = requested();
    const progress = {
      type: 'RecordOptimizationProgress' as const,
      optimizationId: 'o1',
      trials: [],
      trialsDone: 4,
      bestTrial: 0,
      bestScore: 1,
    };
    const [first] = given(optimizations, past)
      .when({ ...progress, batch: 0 })
      .then([
        {
          type: 'OptimizationProgressed',
          data: {
            optimizationId: 'o1',
            batch: 0,
            trials: [],
            trialsDone: 4,
            bestTrial: 0,
            bestScore: 1,
          },
        },
      ]);
    const after = [...past, first as OptimizationEvent];
    given(optimizations, after)
      .when({ ...progress, batch: 0 })
      .then([]);
    given(optimizations, after)
      .when({ ...progress, batch: 2 })
      .thenRefuses('OPTIMIZATION_BATCH_OUT_OF_ORDER');
  });

  it('cancels a running optimization once; a cancelled or finished one cannot be cancelled again', () => {
    const past = requested();
    const cancel = {
      type: 'CancelOptimization',
      optimizationId: 'o1',
      cancelledBy: analyst,
      reason: 'wrong window',
    } as const;
    const [cancelled] = given(optimizations, past)
      .when(cancel)
      .then([
        {
          type: 'OptimizationCancelled',
          data: { optimizationId: 'o1', cancelledBy: analyst, reason: 'wrong window' },
        },
      ]);
    const error = given(optimizations, [...past, cancelled as OptimizationEvent])
      .when(cancel)
      .thenRefuses('OPTIMIZATION_FINISHED');
    expect(error.details).toEqual({ currentState: 'cancelled' });
    given(optimizations, [
      ...past,
      { type: 'OptimizationFailed', data: { optimizationId: 'o1', reason: 'x' } },
    ])
      .when(cancel)
      .thenRefuses('OPTIMIZATION_FINISHED', /failed already/);
    given(optimizations, []).when(cancel).thenRefuses('OPTIMIZATION_NOT_FOUND');
  });
});

const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT') as Instrument;
const candles: Candle[] = [
  ...generateCandles({ seed: 3, from: FROM, to: TO, instruments: [instrument], timeframe: '1h' }),
];

/** The whole search in one thread, as the runner does it but without workers. */
function optimizeInline(method: 'grid' | 'random' | 'bayesian') {
  const [event] = optimizations.decide(
    request({ method, budget: { trials: 16 }, candlesInWindow: candles.length }),
    optimizations.initialState(),
  );
  const spec = event?.data as OptimizationSpec;
  const search = searchOf(spec);
  const setup = trialSetupOf(spec, instrument);
  const progress = [];
  for (let batch = 0; !search.done; batch++) {
    const pending = search.nextBatch();
    const runs = pending.map((p) => (p.parameters ? runTrial(setup, p.parameters, candles) : null));
    progress.push(progressOf(search, batch, search.record(pending, runs)));
  }
  return { progress, outcome: outcomeOf(spec, search, DEFAULT_GATE, 'budget', 0) };
}

describe('an optimization run', () => {
  it.each(['grid', 'random', 'bayesian'] as const)(
    'gives the same batches and outcome bit for bit from the same request and seed (%s)',
    (method) => {
      const a = optimizeInline(method);
      const b = optimizeInline(method);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      expect(a.progress).toHaveLength(4);
      expect(a.outcome.trialsRun).toBe(16);
      expect(a.outcome.folds).toHaveLength(3);
      expect(a.outcome.equity.length).toBeGreaterThan(0);
      expect(a.outcome.verdict.passed).toBe(a.outcome.verdict.reasons.length === 0);
    },
    30_000,
  );
});
