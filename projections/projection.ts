import type { ChainableCommander, Redis } from 'ioredis';
import type pg from 'pg';
import type { Position, RecordedEvent } from '../core/eventstore/event-store.js';

/**
 * A read model kept in PostgreSQL. Its tables live in a schema of their own per generation
 * (`qcat_p_<name>_<generation>`) and are read through views in `qcat_read`, so a rebuilt generation
 * replaces the live one atomically.
 */
/** Where queries read one of a projection's tables: `qcat_read.<table>`, or `qcat_private.<table>`. */
export const viewSchemaOf = (projection: PostgresProjection, table: string): string =>
  projection.privateTables?.includes(table) ? 'qcat_private' : 'qcat_read';

export interface PostgresProjection {
  kind: 'postgres';
  /** snake_case; also the view names' owner. */
  name: string;
  /** Bump when tables or handlers change; a different stored version means "rebuild me". */
  version: number;
  /**
   * What to do with an event `apply` cannot apply (a data error, not an outage; ADR 011): `stop`
   * (the default) there until the handler is fixed, or `park` it in `qcat_projection_parked` with
   * the error and go on. Both are visible in the status, the metrics and an alert.
   */
  onPoisonEvent?: 'stop' | 'park';
  /** The tables `setup` creates, each exposed as `qcat_read.<table>` (or `qcat_private.<table>`). */
  tables: readonly string[];
  /**
   * Optional: the event types `apply` acts on (ADR 027). The runner hands it only those; a batch
   * with none of them moves the checkpoint without a call, and the answer cache keeps this read
   * model's answers. Absent: every event (the audit trail, read models not declared yet).
   */
  handles?: readonly string[];
  /**
   * Optional: those of `tables` that hold secrets (API key hashes). They are exposed in schema
   * `qcat_private`, which is never granted to anyone, instead of `qcat_read`, which Grafana's
   * reader role reads (ADR 015).
   */
  privateTables?: readonly string[];
  /** Creates the (empty) tables in `schema`, with the keys `apply` needs. */
  setup(client: pg.ClientBase, schema: string): Promise<void>;
  /** Applies events in order, inside the runner's transaction, which also moves the checkpoint. */
  apply(client: pg.ClientBase, schema: string, events: readonly RecordedEvent[]): Promise<void>;
  /**
   * Optional: the secondary indexes, left out of `setup` so that a rebuild builds them once after
   * filling the new generation instead of maintaining them row by row. A first generation gets
   * them right after `setup`; a rebuild before its catch-up and switch.
   */
  indexes?(client: pg.ClientBase, schema: string): Promise<void>;
  /**
   * Optional: one statement that writes into `schema` exactly what `apply` would write for the
   * events of `qcat_events` at positions above `after` up to `upTo`, applied in position order to
   * the state `apply` left for the positions up to `after` (a rebuild calls it on consecutive
   * ranges, from an empty generation). Used by rebuilds when the log is the PostgreSQL adapter
   * in the same database; otherwise (EventStoreDB, a filtered or cut store) rebuilds go event by
   * event. Tested for equality with the event-by-event build.
   */
  rebuildSql?(schema: string, after: Position, upTo: Position): RebuildStatement;
}

/** A parametrised statement, as pg's `client.query` takes it. */
export interface RebuildStatement {
  text: string;
  values: unknown[];
}

/**
 * A view kept in Redis under `<prefix><name>:g<generation>:`. `apply` only queues commands on the
 * runner's MULTI, which also sets the checkpoint, so both land together or not at all.
 */
export interface RedisProjection<Loaded = unknown> {
  kind: 'redis';
  name: string;
  version: number;
  /**
   * Optional, as for a PostgreSQL read model: the event types `load` and `apply` act on. A batch
   * with none of them only moves the checkpoint. Absent: every event (the activity feed).
   */
  handles?: readonly string[];
  /**
   * Optional: reads what `apply` folds the events into (the view's current rows), before the
   * MULTI and under the runner's WATCH of the checkpoint, so a concurrent writer voids the batch.
   */
  load?(redis: Redis, keyPrefix: string, events: readonly RecordedEvent[]): Promise<Loaded>;
  /** `loaded`: what `load` read, when the view has one. */
  apply(
    multi: ChainableCommander,
    keyPrefix: string,
    events: readonly RecordedEvent[],
    loaded?: Loaded,
  ): void;
}

export type Projection = PostgresProjection | RedisProjection;

/**
 * catching_up / running / stopped: as seen by the process that leads it; led_elsewhere: another
 * live process leads it; no_leader: no process runs it now.
 */
export type ProjectionState = 'catching_up' | 'running' | 'stopped' | 'led_elsewhere' | 'no_leader';

export interface ProjectionStatus {
  name: string;
  /** `process`: a process manager's checkpoint row (automation/, ADR 010). */
  kind: Projection['kind'] | 'process';
  state: ProjectionState;
  checkpoint: bigint;
  head: bigint;
  /** head − checkpoint */
  lag: bigint;
  /** The process that leads it, while one does. */
  leader: string | null;
  error: { position: bigint; message: string; at: Date } | null;
  /** `stop` or `park` (PostgresProjection.onPoisonEvent); Redis views stop. */
  onPoisonEvent: 'stop' | 'park';
  /** Events parked so far (ADR 011), and the last one. */
  parked: number;
  lastParked: { position: bigint; type: string; error: string; at: Date } | null;
}

/** The events of a batch a projection acts on: those of the types it declares, or all. */
export function handledBy(
  projection: Pick<Projection, 'handles'>,
  events: readonly RecordedEvent[],
): readonly RecordedEvent[] {
  const { handles } = projection;
  return handles ? events.filter((event) => handles.includes(event.type)) : events;
}

/**
 * Every type of an event union, listed for `handles`: a type left out or unknown does not compile,
 * so a projection's declaration follows its events. `eventTypes<ApprovalEvent>()('ApprovalRequested', …)`.
 */
export const eventTypes =
  <Event extends { type: string }>() =>
  <const Types extends readonly Event['type'][]>(
    ...types: Types &
      ([Exclude<Event['type'], Types[number]>] extends [never]
        ? unknown
        : { missing: Exclude<Event['type'], Types[number]> })
  ): readonly string[] =>
    types;
