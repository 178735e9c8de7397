import type { Migration } from '../migrations.js';

/**
 * Migration 1: the log (events, streams, the head every append locks, ADR 001). The append
 * functions are not here: their definitions live in functions/qcat-append.ts (ADR 028).
 */
export const eventLog: Migration = {
  version: 1,
  name: 'event log',
  sql: `
      CREATE TABLE qcat_events (
        position     bigint      PRIMARY KEY,
        stream_id    text        NOT NULL,
        revision     bigint      NOT NULL,
        event_id     uuid        NOT NULL UNIQUE,
        type         text        NOT NULL,
        data         jsonb       NOT NULL,
        metadata     jsonb       NOT NULL,
        recorded_at  timestamptz NOT NULL,
        UNIQUE (stream_id, revision)
      );
      CREATE INDEX qcat_events_recorded_at ON qcat_events (recorded_at, position);

      CREATE TABLE qcat_streams (
        stream_id text   PRIMARY KEY,
        revision  bigint NOT NULL
      );

      -- One row: the last position and commit time. Every append locks it, so appends commit
      -- one after another in position order (ADR 001).
      CREATE TABLE qcat_log_head (
        singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        position    bigint      NOT NULL,
        recorded_at timestamptz NOT NULL
      );
      INSERT INTO qcat_log_head (position, recorded_at) VALUES (0, '-infinity');
      -- qcat_append: functions/qcat-append.ts, installed by migration 5, the last to change it.
    `,
};
