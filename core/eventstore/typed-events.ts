import type { z } from 'zod';
import type { DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import type { EventStore, JsonValue, ReadStreamOptions, RecordedEvent } from './event-store.js';

/**
 * The typed side of the event store port (ADR 028): a stored event as a domain event, one schema
 * per event type, and one fold of a stream. Events are written as typed data (`JsonInput`) and
 * read back as JSON; a schema (or a decider's `parseEvent`) turns them into their type again,
 * which is the only way from stored JSON to a type: no casts.
 */

/** A stored event as a decider, projection or process manager takes it: its type and its data. */
export function domainEventOf(
  event: Pick<RecordedEvent, 'type' | 'data'> &
    Partial<Pick<RecordedEvent, 'eventId' | 'streamId'>>,
): DomainEvent {
  const { data } = event;
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new QcatError(
      'EVENT_DATA_NOT_AN_OBJECT',
      `event ${event.eventId ?? '?'} (${event.type}) in ${event.streamId ?? '?'} has no object data`,
    );
  return { type: event.type, data };
}

/** One event type: its name and what its data is, checked when read back. */
export interface EventSchema<Type extends string, Data> {
  readonly type: Type;
  /** The stored event's data as `Data`; throws on another type or a data of another shape. */
  parse(event: { type: string; data: JsonValue }): Data;
}

/** An event type whose data a zod schema describes. */
export function eventSchema<Type extends string, Schema extends z.ZodType>(
  type: Type,
  data: Schema,
): EventSchema<Type, z.output<Schema>> {
  return {
    type,
    parse(event) {
      if (event.type !== type)
        throw new QcatError('UNEXPECTED_EVENT_TYPE', `expected a ${type} event, not ${event.type}`);
      const parsed = data.safeParse(event.data);
      if (!parsed.success)
        throw new QcatError('INVALID_EVENT_DATA', `${type}: ${parsed.error.message}`);
      return parsed.data;
    },
  };
}

/** What a fold over a stream needs; every Decider is one. */
export interface StreamFold<State, Event extends DomainEvent> {
  initialState(): State;
  evolve(state: State, event: Event): State;
  /** Narrows a stored event to one the fold knows; throws on any other. */
  parseEvent(event: DomainEvent): Event;
}

/** A stream's state and where it stands: revision -1 and position 0 for a stream without events. */
export interface StreamState<State> {
  state: State;
  revision: bigint;
  position: bigint;
}

export interface FoldOptions<State> {
  /** The state to fold from (a snapshot's); default the fold's initial state. */
  from?: State;
  /** Recorded event → domain event (say, through upcasters); default `domainEventOf`. */
  toDomain?: (event: RecordedEvent) => DomainEvent;
}

/** Folds events of one stream, in revision order, into the fold's state. */
export function foldStream<State, Event extends DomainEvent>(
  fold: StreamFold<State, Event>,
  events: readonly RecordedEvent[],
  options: FoldOptions<State> = {},
): StreamState<State> {
  const toDomain = options.toDomain ?? domainEventOf;
  let state = options.from ?? fold.initialState();
  for (const recorded of events) state = fold.evolve(state, fold.parseEvent(toDomain(recorded)));
  const last = events.at(-1);
  return { state, revision: last?.revision ?? -1n, position: last?.position ?? 0n };
}

/** Reads a stream through the port and folds it (`aggregateStream`). */
export async function aggregateStream<State, Event extends DomainEvent>(
  store: Pick<EventStore, 'readStream'>,
  streamId: string,
  fold: StreamFold<State, Event>,
  options: FoldOptions<State> & { read?: ReadStreamOptions } = {},
): Promise<StreamState<State>> {
  return foldStream(fold, await store.readStream(streamId, options.read), options);
}
