import type { Migration } from '../migrations.js';

/**
 * Migration 9 (ADR 011): an event a parking projection cannot apply is recorded here, with the
 * error, and skipped; the projection moves on. A rebuild replaces the projection's rows.
 */
export const parkedProjectionEvents: Migration = {
  version: 9,
  name: 'parked projection events',
  sql: `
      CREATE TABLE qcat_projection_parked (
        projection text        NOT NULL,
        position   bigint      NOT NULL,
        event_id   uuid        NOT NULL,
        event_type text        NOT NULL,
        stream_id  text        NOT NULL,
        error      text        NOT NULL,
        parked_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (projection, position)
      );
    `,
};
