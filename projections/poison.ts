import type pg from 'pg';
import { QcatError } from '../core/errors.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { handledBy, type PostgresProjection } from './projection.js';

/**
 * Whether a handler's failure is the event's own (the same event fails the same way every time),
 * not the database's or the network's: PostgreSQL data exceptions (class 22: a date out of range,
 * an invalid text) and integrity violations (class 23), and the errors a handler throws on data it
 * cannot read (a zod or QCAT error, a TypeError, a RangeError). Only these may be parked: an outage
 * parked would skip good events.
 */
export function isPoison(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = 'code' in error && typeof error.code === 'string' ? error.code : '';
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return (
    error instanceof QcatError ||
    error instanceof TypeError ||
    error instanceof RangeError ||
    error.name === 'ZodError'
  );
}

/** An event a projection could not apply, as `qcat_projection_parked` records it. */
export interface ParkedEvent {
  event: RecordedEvent;
  error: string;
}

/**
 * Applies `events` inside the caller's transaction; with `onPoisonEvent: 'park'`, an event that
 * fails with a poison error (see `isPoison`) is rolled back to a savepoint and answered instead of
 * thrown, and the others are applied. Anything else throws, as without parking.
 */
export async function applyOrPark(
  client: pg.ClientBase,
  projection: PostgresProjection,
  schema: string,
  batch: readonly RecordedEvent[],
): Promise<ParkedEvent[]> {
  // Only the event types it declares (ADR 027): nothing to do for a batch without them.
  const events = handledBy(projection, batch);
  if (events.length === 0) return [];
  if (projection.onPoisonEvent !== 'park') {
    await projection.apply(client, schema, events);
    return [];
  }
  const parked: ParkedEvent[] = [];
  const attempt = async (batch: readonly RecordedEvent[]): Promise<unknown> => {
    await client.query('SAVEPOINT qcat_apply');
    try {
      await projection.apply(client, schema, batch);
      await client.query('RELEASE SAVEPOINT qcat_apply');
      return null;
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT qcat_apply');
      await client.query('RELEASE SAVEPOINT qcat_apply');
      if (!isPoison(error)) throw error;
      return error;
    }
  };
  // The whole batch first (the common case); on a poison failure, event by event to find it.
  if ((await attempt(events)) === null) return parked;
  for (const event of events) {
    const error = await attempt([event]);
    if (error !== null)
      parked.push({ event, error: error instanceof Error ? error.message : JSON.stringify(error) });
  }
  return parked;
}

/** Records parked events in the caller's transaction. */
export async function recordParked(
  client: pg.ClientBase,
  projection: string,
  parked: readonly ParkedEvent[],
): Promise<void> {
  if (parked.length === 0) return;
  await client.query(
    `INSERT INTO qcat_projection_parked (projection, position, event_id, event_type, stream_id, error)
     SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[])
     ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, parked_at = now()`,
    [
      projection,
      parked.map((p) => p.event.position.toString()),
      parked.map((p) => p.event.eventId),
      parked.map((p) => p.event.type),
      parked.map((p) => p.event.streamId),
      parked.map((p) => p.error.slice(0, 2000)),
    ],
  );
}
