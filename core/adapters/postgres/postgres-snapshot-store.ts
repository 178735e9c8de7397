import type pg from 'pg';
import type { SnapshotStore, StateSnapshot } from '../../commands/snapshots.js';
import type { JsonValue } from '../../eventstore/event-store.js';

interface SnapshotRow {
  schema: string;
  revision: string;
  event_id: string;
  position: string;
  state: string;
}

/**
 * Command-side snapshots in `qcat_snapshots` (migration 8, ADR 012): one row per stream. The state
 * is stored as `json` (its text verbatim, key order kept) and parsed here, so a loaded state is
 * exactly the one saved.
 */
export class PostgresSnapshotStore implements SnapshotStore {
  constructor(private readonly pool: pg.Pool) {}

  async load(streamId: string): Promise<StateSnapshot | undefined> {
    const { rows } = await this.pool.query<SnapshotRow>(
      `SELECT schema, revision, event_id, position, state::text AS state
         FROM qcat_snapshots WHERE stream_id = $1`,
      [streamId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      schema: row.schema,
      revision: BigInt(row.revision),
      eventId: row.event_id,
      position: BigInt(row.position),
      state: JSON.parse(row.state) as JsonValue,
    };
  }

  async save(streamId: string, snapshot: StateSnapshot, replace = false): Promise<void> {
    await this.pool.query(
      `INSERT INTO qcat_snapshots (stream_id, schema, revision, event_id, position, state)
       VALUES ($1, $2, $3, $4, $5, $6::json)
       ON CONFLICT (stream_id) DO UPDATE
         SET schema = excluded.schema, revision = excluded.revision, event_id = excluded.event_id,
             position = excluded.position, state = excluded.state, saved_at = now()
       WHERE $7 OR qcat_snapshots.schema <> excluded.schema
          OR qcat_snapshots.revision < excluded.revision`,
      [
        streamId,
        snapshot.schema,
        snapshot.revision.toString(),
        snapshot.eventId,
        snapshot.position.toString(),
        JSON.stringify(snapshot.state),
        replace,
      ],
    );
  }
}
