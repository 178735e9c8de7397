import {
  failureOf,
  noMarketData,
  runBacktest,
  type BacktestCommand,
  type BacktestOutput,
  type BacktestSpec,
  type BacktestState,
} from '../../core/backtests/backtest-run.js';
import { QcatError } from '../../core/errors.js';
import type { Candle, Instrument } from '../../core/market/types.js';
import { reason } from '../../core/trading/orders.js';

/** What became of a request: run and completed, failed with a coded reason. */
export type RunOutcome =
  { kind: 'completed'; output: BacktestOutput } | { kind: 'failed'; reason: string };

/**
 * Before reading any candle: why the request needs no run, if it needs none. A run that failed,
 * or completed with this request's results stored, is done; one completed without them (a crash
 * between the completion and the results, or results lost) is run again, to the same rows.
 */
export function alreadyDone(
  state: BacktestState,
  storedRequest: string | undefined,
  requestEventId: string,
): string | undefined {
  if (state.status === 'failed') return 'failed already';
  if (state.status === 'completed' && storedRequest === requestEventId)
    return 'completed already, results stored';
  return undefined;
}

/**
 * The run itself (pure, and the CPU-heavy part): the backtest of the request over its candles
 * (core/backtests/backtest-run.ts), or a coded failure without instrument, without candles, or
 * when the engine refuses the request.
 */
export function runOutcome(
  backtestId: string,
  spec: BacktestSpec,
  instrument: Instrument | undefined,
  candles: readonly Candle[],
): RunOutcome {
  if (!instrument)
    return { kind: 'failed', reason: reason('INSTRUMENT_NOT_FOUND', { symbol: spec.symbol }) };
  if (candles.length === 0) return { kind: 'failed', reason: noMarketData(spec) };
  try {
    return { kind: 'completed', output: runBacktest(backtestId, spec, instrument, candles) };
  } catch (error) {
    if (error instanceof QcatError) return { kind: 'failed', reason: failureOf(error) };
    throw error;
  }
}

/** The command that records the outcome on the run's stream; `durationMs` goes in the summary. */
export function commandFor(
  backtestId: string,
  outcome: RunOutcome,
  durationMs: number,
): BacktestCommand {
  return outcome.kind === 'completed'
    ? { type: 'CompleteBacktest', backtestId, summary: { ...outcome.output.summary, durationMs } }
    : { type: 'FailBacktest', backtestId, reason: outcome.reason };
}
