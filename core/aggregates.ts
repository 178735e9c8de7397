import { apiKeys } from './access/api-key.js';
import { approvals } from './approvals/approval.js';
import { automationPolicy } from './capabilities/policy.js';
import { backtests } from './backtests/backtest-run.js';
import type { Decider, DomainEvent } from './decider.js';
import { desk } from './engine/desk.js';
import { QcatError } from './errors.js';
import { categoryOf } from './eventstore/append-validation.js';
import type { RecordedEvent } from './eventstore/event-store.js';
import { domainEventOf } from './eventstore/typed-events.js';
import { Upcasters } from './eventstore/upcasting.js';
import { hotSymbols } from './hot-symbols/tradable.js';
import { portfolios } from './portfolio/portfolio.js';
import { optimizations } from './optimization/optimization.js';
import { optimizationPolicy } from './optimization/policy.js';
import { riskAggregate } from './risk/aggregate.js';
import { elimination } from './strategies/elimination.js';
import { newStrategies } from './strategies/new-strategies.js';
import { strategies } from './strategies/strategy.js';
import { orders } from './trading/orders.js';

/**
 * How to fold the events of one stream category into its state: what the audit API uses to show
 * any aggregate as of an instant or a position. Method syntax, so one registry can hold aggregates
 * of different state types.
 */
export interface Aggregate<State = unknown> {
  /** For people: 'API key', 'strategy', … */
  name: string;
  initialState(): State;
  evolve(state: State, event: DomainEvent): State;
}

/** An aggregate from a decider: its events are parsed (narrowed) before they are folded. */
export const fromDecider = <State, Command, Event extends DomainEvent>(
  name: string,
  decider: Decider<State, Command, Event>,
): Aggregate<State> => ({
  name,
  initialState: () => decider.initialState(),
  evolve: (state, event) => decider.evolve(state, decider.parseEvent(event)),
});

/**
 * Every aggregate by stream category (the part of a stream id before the first `-`). Register new
 * ones here; the state must be plain JSON, and must not hold secrets (the audit API redacts known
 * secret fields, but the state should not need it).
 */
export const AGGREGATES: Readonly<Record<string, Aggregate>> = {
  apikey: fromDecider('API key', apiKeys),
  strategy: fromDecider('strategy', strategies),
  approval: fromDecider('approval request', approvals),
  backtest: fromDecider('backtest run', backtests),
  optimization: fromDecider('optimization run', optimizations),
  optimizationpolicy: fromDecider('optimization policy', optimizationPolicy),
  order: fromDecider('order', orders),
  desk: fromDecider('trading desk', desk),
  risk: riskAggregate,
  automation: fromDecider('automation policy', automationPolicy),
  portfolio: fromDecider('portfolio', portfolios),
  hotsymbol: fromDecider('hot symbol on the tradable list', hotSymbols),
  elimination: fromDecider('strategy elimination record', elimination),
  newstrategies: fromDecider('new-strategy ledger', newStrategies),
};

export const aggregateOf = (streamId: string): Aggregate | undefined =>
  Object.hasOwn(AGGREGATES, categoryOf(streamId)) ? AGGREGATES[categoryOf(streamId)] : undefined;

/** A stored event that the aggregate refuses to fold (unknown type or shape). */
export class UnfoldableEventError extends QcatError {
  constructor(event: RecordedEvent, reason: string) {
    super(
      'UNFOLDABLE_EVENT',
      `event ${event.type} at '${event.streamId}'@${event.revision.toString()} (position ${event.position.toString()}) cannot be folded: ${reason}`,
      { streamId: event.streamId, revision: event.revision.toString() },
    );
  }
}

/** Folds a stream's events (in revision order) into the aggregate's state. */
export function foldEvents<State>(
  aggregate: Aggregate<State>,
  events: readonly RecordedEvent[],
  upcasters: Upcasters = new Upcasters(),
): State {
  let state = aggregate.initialState();
  for (const recorded of events) {
    try {
      state = aggregate.evolve(state, domainEventOf(upcasters.apply(recorded)));
    } catch (error) {
      throw new UnfoldableEventError(
        recorded,
        (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 300),
      );
    }
  }
  return state;
}
