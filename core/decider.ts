import type { JsonObject } from './eventstore/event-store.js';

/** What a decider emits: the event's type and data; the command handler adds the metadata. */
export interface DomainEvent<Type extends string = string, Data extends JsonObject = JsonObject> {
  type: Type;
  data: Data;
}

/**
 * A pure aggregate: `decide` turns a command and the current state into events (or throws a
 * `QcatError` for a refusal), `evolve` folds one event into the state. No I/O, no clock, no ids:
 * those arrive inside the command.
 */
export interface Decider<State, Command, Event extends DomainEvent> {
  initialState(): State;
  evolve(state: State, event: Event): State;
  decide(command: Command, state: State): Event[];
  /** Narrows a stored event to one this decider knows; unknown types are a broken invariant. */
  parseEvent(event: DomainEvent): Event;
}
