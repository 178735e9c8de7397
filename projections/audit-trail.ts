import type pg from 'pg';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { PostgresProjection } from './projection.js';

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * Every event, one row each, indexed for the audit queries: by actor, stream, type, time and
 * correlation id. Read as `qcat_read.audit_trail`. A rebuild over the PostgreSQL log fills it with
 * `rebuildSql` and builds the indexes afterwards.
 */
export const auditTrail: PostgresProjection = {
  kind: 'postgres',
  name: 'audit_trail',
  version: 1,
  tables: ['audit_trail'],

  async setup(client: pg.ClientBase, schema: string): Promise<void> {
    await client.query(`
      CREATE TABLE ${schema}.audit_trail (
        position       bigint      PRIMARY KEY,
        recorded_at    timestamptz NOT NULL,
        stream_id      text        NOT NULL,
        category       text        NOT NULL,
        revision       bigint      NOT NULL,
        type           text        NOT NULL,
        event_id       uuid        NOT NULL,
        actor          text        NOT NULL,
        correlation_id text,
        causation_id   text
      )
    `);
  },

  async indexes(client: pg.ClientBase, schema: string): Promise<void> {
    await client.query(`
      CREATE INDEX ON ${schema}.audit_trail (actor, position);
      CREATE INDEX ON ${schema}.audit_trail (stream_id, position);
      CREATE INDEX ON ${schema}.audit_trail (category, position);
      CREATE INDEX ON ${schema}.audit_trail (type, position);
      CREATE INDEX ON ${schema}.audit_trail (recorded_at, position);
      CREATE INDEX ON ${schema}.audit_trail (correlation_id, position) WHERE correlation_id IS NOT NULL;
    `);
  },

  // What `apply` writes, computed in SQL the way the event-by-event path gets there:
  // recorded_at through the adapter's millisecond rounding (readAll's `recorded_ms`), category as
  // categoryOf's slice up to the first '-' (strpos 0 → left(…, -1), like slice(0, -1)), ids only
  // when they are JSON strings (`text`). The adapter only appends string actors.
  rebuildSql: (schema, after, upTo) => ({
    text: `INSERT INTO ${schema}.audit_trail
             (position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id)
           SELECT position,
                  timestamptz 'epoch' + round(date_part('epoch', recorded_at) * 1000) * interval '1 millisecond',
                  stream_id, left(stream_id, strpos(stream_id, '-') - 1), revision, type, event_id,
                  metadata->>'actor',
                  CASE WHEN jsonb_typeof(metadata->'correlationId') = 'string' THEN metadata->>'correlationId' END,
                  CASE WHEN jsonb_typeof(metadata->'causationId') = 'string' THEN metadata->>'causationId' END
             FROM qcat_events
            WHERE position > $1 AND position <= $2`,
    values: [after.toString(), upTo.toString()],
  }),

  async apply(
    client: pg.ClientBase,
    schema: string,
    events: readonly RecordedEvent[],
  ): Promise<void> {
    // One statement per batch: arrays unnested server-side.
    await client.query(
      `INSERT INTO ${schema}.audit_trail
         (position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                            $7::uuid[], $8::text[], $9::text[], $10::text[])
       ON CONFLICT (position) DO NOTHING`,
      [
        events.map((e) => e.position.toString()),
        events.map((e) => e.recordedAt.toISOString()),
        events.map((e) => e.streamId),
        events.map((e) => categoryOf(e.streamId)),
        events.map((e) => e.revision.toString()),
        events.map((e) => e.type),
        events.map((e) => e.eventId),
        events.map((e) => e.metadata.actor),
        events.map((e) => text(e.metadata.correlationId)),
        events.map((e) => text(e.metadata.causationId)),
      ],
    );
  },
};
