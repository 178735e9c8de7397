import type pg from 'pg';
import type { EventIdIndex, RecordedId } from '../../commands/event-ids.js';

/**
 * Events found by id in the PostgreSQL log (ADR 032): one probe of the unique index on
 * `qcat_events.event_id` per id, whatever the stream's length.
 */
export class PostgresEventIdIndex implements EventIdIndex {
  constructor(private readonly pool: pg.Pool) {}

  async find(streamId: string, eventIds: readonly string[]): Promise<RecordedId[]> {
    if (eventIds.length === 0) return [];
    const { rows } = await this.pool.query<{
      event_id: string;
      revision: string;
      position: string;
    }>(
      `SELECT event_id::text AS event_id, revision::text AS revision, position::text AS position
         FROM qcat_events WHERE event_id = ANY ($1::uuid[]) AND stream_id = $2`,
      [eventIds, streamId],
    );
    return rows.map((row) => ({
      eventId: row.event_id,
      revision: BigInt(row.revision),
      position: BigInt(row.position),
    }));
  }
}
