import type { ChainableCommander } from 'ioredis';
import type pg from 'pg';
import type { Position, RecordedEvent } from '../core/eventstore/event-store.js';

/**
 * A read model kept in PostgreSQL. Its tables live in a schema of their own per generation
 * (`qcat_p_<name>_<generation>`) and are read through views in `qcat_read`, so a rebuilt generation
 * replaces the live one atomically.
 */
export interface PostgresProjection {
  kind: 'postgres';
  /** snake_case; also the view names' owner. */
  name: string;
  /** Bump when tables or handlers change; a different stored version means "rebuild me". */
  version: number;
  /** The tables `setup` creates, each exposed as `qcat_read.<table>`. */
  tables: readonly string[];
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
export interface RedisProjection {
  kind: 'redis';
  name: string;
  version: number;
  apply(multi: ChainableCommander, keyPrefix: string, events: readonly RecordedEvent[]): void;
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
}
