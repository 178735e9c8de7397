import { describe, expect, it } from 'vitest';
import type { Party } from '../../core/approvals/approval.js';
import {
  backtests,
  noMarketData,
  runBacktest,
  type BacktestEvent,
  type BacktestSpec,
  type BacktestState,
} from '../../core/backtests/backtest-run.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import { alreadyDone, commandFor, runOutcome } from './decision.js';

const analyst: Party = { id: 'apikey:analyst1', role: 'analyst' };
const backtestId = 'b1';
const REQUEST = 'e0000000-0000-4000-8000-000000000001';
const spec: BacktestSpec = {
  strategyId: null,
  strategyParameterVersion: null,
  kind: 'sma_crossover',
  parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
  symbol: 'BTCUSDT',
  timeframe: '15m',
  from: '2025-03-01T00:00:00.000Z',
  to: '2025-03-04T00:00:00.000Z',
  initialCash: 100_000,
  costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
};
const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT')!;
const candles = [
  ...generateCandles({
    seed: 11,
    from: Date.parse(spec.from),
    to: Date.parse(spec.to),
    instruments: [instrument],
    timeframe: '15m',
  }),
];
const requested: BacktestEvent = {
  type: 'BacktestRequested',
  data: { backtestId, ...spec, requestedBy: analyst },
};
/** The run's state given its history, as the runner loads it. */
const given = (events: BacktestEvent[]): BacktestState =>
  events.reduce((state, event) => backtests.evolve(state, event), backtests.initialState());
const output = runBacktest(backtestId, spec, instrument, candles);
const completed: BacktestEvent = {
  type: 'BacktestCompleted',
  data: { backtestId, ...output.summary },
};
const failed: BacktestEvent = { type: 'BacktestFailed', data: { backtestId, reason: 'X: y' } };

describe('backtest runner (given / when / then)', () => {
  it('a new request is run; a finished one is not', () => {
    expect(alreadyDone(given([requested]), undefined, REQUEST)).toBeUndefined();
    expect(alreadyDone(given([requested, failed]), undefined, REQUEST)).toBe('failed already');
    expect(alreadyDone(given([requested, completed]), REQUEST, REQUEST)).toBe(
      'completed already, results stored',
    );
  });

  it('a run completed without its results (or with another request’s) is run again', () => {
    expect(alreadyDone(given([requested, completed]), undefined, REQUEST)).toBeUndefined();
    expect(alreadyDone(given([requested, completed]), 'another', REQUEST)).toBeUndefined();
  });

  it('candles → the pure backtest, completed with its summary and the measured duration', () => {
    const outcome = runOutcome(backtestId, spec, instrument, candles);
    expect(outcome).toEqual({ kind: 'completed', output });
    expect(commandFor(backtestId, outcome, 42)).toEqual({
      type: 'CompleteBacktest',
      backtestId,
      summary: { ...output.summary, durationMs: 42 },
    });
  });

  it('no candles → failed, saying so', () => {
    const outcome = runOutcome(backtestId, spec, instrument, []);
    expect(outcome).toEqual({ kind: 'failed', reason: noMarketData(spec) });
    expect(commandFor(backtestId, outcome, 1)).toEqual({
      type: 'FailBacktest',
      backtestId,
      reason: noMarketData(spec),
    });
  });

  it('no instrument → failed with INSTRUMENT_NOT_FOUND, naming the symbol', () => {
    const outcome = runOutcome(backtestId, spec, undefined, candles);
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind === 'failed' ? outcome.reason : '').toMatch(
      /^INSTRUMENT_NOT_FOUND.*BTCUSDT/,
    );
  });
});
