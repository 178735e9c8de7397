import type { BacktestResultsStore } from '../../core/adapters/postgres/backtest-results-store.js';
import { backtests } from '../../core/backtests/backtest-run.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import type { DomainEvent } from '../../core/decider.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import { intent, type ProcessManager } from '../process-manager.js';
import { alreadyDone, commandFor, runOutcome } from './decision.js';

/** Who the runner acts as in the log. */
export const BACKTEST_RUNNER_ACTOR = 'system:backtest-runner';

/**
 * The process manager that runs backtests (ADR 010, ADR 027). On `BacktestRequested` it loads the
 * run's state and, unless the run is done (`alreadyDone`), the instrument and candles from
 * `qcat_market`; runs the pure backtest (`runOutcome`) outside any transaction; replaces the run's
 * rows in the result tables (`qcat_backtest`); then the runner issues `CompleteBacktest` — or
 * `FailBacktest` with a coded reason — as `system:backtest-runner`, caused by the request, with
 * an id and idempotency key derived from it.
 *
 * The rows are written before the command: a crash between the two leaves a requested run with
 * its rows, and handling the request again recomputes the same rows (the run is deterministic)
 * and completes it; a crash after the command finds the run completed with this request's rows
 * and does nothing. The backtests read model (projections/backtests.ts) only projects.
 */
export const backtestRunner = (deps: {
  commands: CommandHandler;
  results: BacktestResultsStore;
}): ProcessManager => ({
  name: 'backtest-runner',
  actor: BACKTEST_RUNNER_ACTOR,
  handles: ['BacktestRequested'],
  async react(event) {
    const domain: DomainEvent = { type: event.type, data: event.data as JsonObject };
    const parsed = backtests.parseEvent(domain);
    if (parsed.type !== 'BacktestRequested') return [];
    const { backtestId, requestedBy: _by, ...spec } = parsed.data;
    const { state } = await deps.commands.load(backtests, event.streamId);
    if (alreadyDone(state, await deps.results.storedRequest(backtestId), event.eventId)) return [];
    const { instrument, candles } = await deps.results.inputs(spec);
    const started = performance.now();
    const outcome = runOutcome(backtestId, spec, instrument, candles);
    const durationMs = Math.round(performance.now() - started);
    if (outcome.kind === 'completed')
      await deps.results.write(backtestId, event.eventId, outcome.output);
    return [intent(backtests, event.streamId, commandFor(backtestId, outcome, durationMs))];
  },
});
