import { v5 as uuidv5 } from 'uuid';
import type { Decider, DomainEvent } from '../decider.js';
import { assertInDomain } from '../domain-bounds.js';
import { ConcurrencyConflictError, ValidationError } from '../errors.js';
import type { EventStore, JsonValue, NewEvent, RecordedEvent } from '../eventstore/event-store.js';
import { Upcasters } from '../eventstore/upcasting.js';
import { domainEventOf, foldStream, type StreamState } from '../eventstore/typed-events.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  type CommandResult,
  type IdempotencyStore,
} from './idempotency.js';
import { StreamScanIndex, type EventIdIndex, type RecordedId } from './event-ids.js';
import { snapshotText, type SnapshotOptions, type StateSnapshot } from './snapshots.js';

export interface CommandContext {
  /** Who issues the command; recorded on every event it produces. */
  actor: string;
  /** Id of this command; default a new uuid. */
  commandId?: string;
  /** Shared by everything one request or process caused; default the command id. */
  correlationId?: string;
  /** The message (command or event) that caused this command; default the command id. */
  causationId?: string;
  /** The same key with the same command returns the first result and writes nothing. */
  idempotencyKey?: string;
  /** From the client (If-Match): a mismatch is the client's conflict and is not retried. */
  expectedRevision?: bigint;
  /**
   * What the client sent (route, parameters, body), hashed with the idempotency key instead of
   * the command: a command holds server-side values (`now`, new secrets) that differ on a retry.
   */
  clientInput?: JsonValue;
}

export interface CommandHandlerOptions {
  eventStore: EventStore;
  idempotency: IdempotencyStore;
  upcasters?: Upcasters;
  /** Re-load and re-decide this many times after a concurrency conflict; default 5. */
  maxRetries?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  newId?: () => string;
  /** Snapshots of the deciders that name a schema (ADR 012); none by default. */
  snapshots?: SnapshotOptions;
  /**
   * Finds a keyed command's earlier events by id (ADR 032); default: a read of the whole stream.
   * PostgreSQL: `PostgresEventIdIndex`, one index probe whatever the stream's length.
   */
  eventIds?: EventIdIndex;
}

/** Namespace for event ids derived from idempotency keys (uuid v5). */
const EVENT_ID_NAMESPACE = '4b0b2f7e-52a1-4c5e-9d34-6f0e2a8c1d17';

/** The id of event `index` of a keyed command: a retry, even a racing one, writes the same ids. */
const keyedEventId = (eventIdSeed: string, index: number): string =>
  uuidv5(`${eventIdSeed}:${index}`, EVENT_ID_NAMESPACE);

/** JSON with object keys sorted, so equal commands hash equally whatever their key order. */
function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] ?? null)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * Load the stream, fold it, decide, append with the revision that was read. On a concurrency
 * conflict it re-loads and re-decides (bounded, with jitter), then gives up with the conflict.
 */
export class CommandHandler {
  private readonly upcasters: Upcasters;
  private readonly maxRetries: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly newId: () => string;
  private readonly eventIds: EventIdIndex;

  constructor(private readonly options: CommandHandlerOptions) {
    this.upcasters = options.upcasters ?? new Upcasters();
    this.maxRetries = options.maxRetries ?? 5;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.eventIds = options.eventIds ?? new StreamScanIndex(options.eventStore);
  }

  /** The stream folded into the decider's state, with the revision and position it was read at. */
  async load<State, Command, Event extends DomainEvent>(
    decider: Decider<State, Command, Event>,
    streamId: string,
  ): Promise<{ state: State; revision: bigint; position: bigint }> {
    const schema = this.snapshotSchema(decider);
    const snapshot = schema === undefined ? undefined : await this.usableSnapshot(streamId, schema);
    // From the snapshot's own revision: its event, read again, proves the snapshot is of this log.
    let events = await this.options.eventStore.readStream(
      streamId,
      snapshot ? { fromRevision: snapshot.revision } : {},
    );
    let state = decider.initialState();
    let folded = events;
    const foreign = snapshot !== undefined && events[0]?.eventId !== snapshot.eventId;
    if (snapshot && !foreign) {
      // Plain JSON by construction (snapshotText refused anything else when it was saved).
      state = snapshot.state as State;
      folded = events.slice(1);
    } else if (foreign) {
      // Another log under the same stream id (a restore into this database): fold from the start.
      events = await this.options.eventStore.readStream(streamId);
      folded = events;
    }
    state = foldStream(decider, folded, { from: state, toDomain: this.toDomain }).state;
    const last = events.at(-1);
    const revision = last?.revision ?? -1n;
    const position = last?.position ?? 0n;
    const every = this.options.snapshots?.every ?? 200;
    if (schema !== undefined && last && (foreign || folded.length >= every)) {
      await this.saveSnapshot(streamId, schema, state, last, foreign);
    }
    return { state, revision, position };
  }

  private snapshotSchema(decider: object): string | undefined {
    const options = this.options.snapshots;
    return options?.schemaOf?.(decider as Decider<unknown, unknown, DomainEvent>);
  }

  /** The stored snapshot if it is of the schema asked for; a failing store is no snapshot. */
  private async usableSnapshot(
    streamId: string,
    schema: string,
  ): Promise<StateSnapshot | undefined> {
    const snapshot = await this.options.snapshots?.store.load(streamId).catch(() => undefined);
    return snapshot?.schema === schema ? snapshot : undefined;
  }

  private async saveSnapshot(
    streamId: string,
    schema: string,
    state: unknown,
    last: RecordedEvent,
    replace: boolean,
  ): Promise<void> {
    // Serialized now: some deciders update their state in place as later events are folded.
    const text = snapshotText(state);
    if (text === null) return;
    const snapshot: StateSnapshot = {
      schema,
      revision: last.revision,
      eventId: last.eventId,
      position: last.position,
      state: JSON.parse(text) as JsonValue,
    };
    // A snapshot is a cache: failing to keep one must not fail the command.
    await this.options.snapshots?.store.save(streamId, snapshot, replace).catch(() => undefined);
  }

  /** `events` (a whole stream) folded into the decider's state. */
  private fold<State, Command, Event extends DomainEvent>(
    decider: Decider<State, Command, Event>,
    events: RecordedEvent[],
  ): StreamState<State> {
    return foldStream(decider, events, { toDomain: this.toDomain });
  }

  async handle<State, Command extends JsonValue, Event extends DomainEvent>(
    decider: Decider<State, Command, Event>,
    streamId: string,
    command: Command,
    context: CommandContext,
  ): Promise<CommandResult> {
    if (context.actor.trim() === '')
      throw new ValidationError('MISSING_ACTOR', 'a command needs an actor');
    const key = context.idempotencyKey;
    if (key === undefined) return this.run(decider, streamId, command, context, undefined);

    const scopedKey = `${context.actor}:${key}`;
    const commandHash = await sha256(canonicalJson([streamId, context.clientInput ?? command]));
    const claim = await this.options.idempotency.claim(scopedKey, commandHash);
    switch (claim.status) {
      case 'completed':
        return { ...claim.result, replayed: true };
      case 'mismatch':
        throw new IdempotencyKeyReusedError(key);
      case 'in_progress':
        throw new IdempotencyInProgressError(key);
      case 'claimed':
        break;
    }
    try {
      const result = await this.run(
        decider,
        streamId,
        command,
        context,
        `${scopedKey}:${commandHash}`,
      );
      await this.options.idempotency.complete(scopedKey, result);
      return result;
    } catch (error) {
      await this.options.idempotency.release(scopedKey);
      throw error;
    }
  }

  private async run<State, Command extends JsonValue, Event extends DomainEvent>(
    decider: Decider<State, Command, Event>,
    streamId: string,
    command: Command,
    context: CommandContext,
    eventIdSeed: string | undefined,
  ): Promise<CommandResult> {
    const commandId = context.commandId ?? this.newId();
    for (let attempt = 0; ; attempt++) {
      // Loaded first (from a snapshot, ADR 012), then a keyed command looks its earlier events
      // up by id (ADR 032): whatever a crashed run wrote before this load is found; whatever a
      // racing one writes after it makes the append below conflict, and the retry finds it.
      const loaded = await this.load(decider, streamId);
      if (eventIdSeed !== undefined) {
        const earlier = await this.earlierResult(streamId, eventIdSeed);
        if (earlier) return earlier;
      }
      const { state, revision, position } = loaded;
      if (context.expectedRevision !== undefined && context.expectedRevision !== revision) {
        throw new ConcurrencyConflictError(
          streamId,
          String(context.expectedRevision),
          revision === -1n ? 'no_stream' : String(revision),
        );
      }
      const decided = decider.decide(command, state);
      if (decided.length === 0)
        return { streamId, nextExpectedRevision: revision, position, eventCount: 0 };
      // Whatever the write side accepts, every read model must be able to apply (ADR 011).
      assertInDomain(decided);
      const events: NewEvent[] = decided.map((event, index) => ({
        // Derived from the idempotency key, so even a racing duplicate cannot write twice.
        eventId: eventIdSeed ? keyedEventId(eventIdSeed, index) : this.newId(),
        type: event.type,
        data: event.data,
        metadata: {
          actor: context.actor,
          correlationId: context.correlationId ?? commandId,
          causationId: context.causationId ?? commandId,
          schemaVersion: this.upcasters.currentVersion(event.type),
        },
      }));
      try {
        const result = await this.options.eventStore.appendToStream(streamId, events, {
          expectedRevision: revision === -1n ? 'no_stream' : revision,
        });
        return { streamId, ...result, eventCount: events.length };
      } catch (error) {
        const retry = error instanceof ConcurrencyConflictError && attempt < this.maxRetries;
        if (!retry) throw error;
        await this.sleep(this.random() * 10 * 2 ** attempt);
      }
    }
  }

  /**
   * The result of a run of this keyed command whose process died between the append and the
   * key's completion: its events carry ids derived from the key (index 0, 1, …, written in one
   * append), so looking them up by id says what it wrote.
   */
  private async earlierResult(
    streamId: string,
    eventIdSeed: string,
  ): Promise<CommandResult | undefined> {
    const batch = 16;
    let count = 0;
    let last: RecordedId | undefined;
    for (;;) {
      const ids = Array.from({ length: batch }, (_, i) => keyedEventId(eventIdSeed, count + i));
      const found = new Map(
        (await this.eventIds.find(streamId, ids)).map((event) => [event.eventId, event]),
      );
      let run = 0;
      for (const id of ids) {
        const event = found.get(id);
        if (!event) break;
        last = event;
        run++;
      }
      count += run;
      if (run < batch) break;
    }
    if (!last) return undefined;
    return {
      streamId,
      nextExpectedRevision: last.revision,
      position: last.position,
      eventCount: count,
      replayed: true,
    };
  }

  /** A recorded event, upcast to the current version, as a domain event. */
  private readonly toDomain = (recorded: RecordedEvent): DomainEvent =>
    domainEventOf(this.upcasters.apply(recorded));
}
