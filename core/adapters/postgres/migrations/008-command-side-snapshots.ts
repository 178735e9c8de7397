import type { Migration } from '../migrations.js';

/**
 * Migration 8 (ADR 012): snapshots of command-side state, one row per stream. A cache beside the
 * log, not part of it: backups leave it out, and a row that does not match the log (another
 * schema version, an event id the stream does not have at that revision) is ignored.
 */
export const snapshotsMigration: Migration = {
  version: 8,
  name: 'command-side snapshots',
  sql: `
    CREATE TABLE qcat_snapshots (
      stream_id text        PRIMARY KEY,
      schema    text        NOT NULL,
      revision  bigint      NOT NULL,
      event_id  uuid        NOT NULL,
      position  bigint      NOT NULL,
      -- json, not jsonb: the text as saved, key order included.
      state     json        NOT NULL,
      saved_at  timestamptz NOT NULL DEFAULT now()
    );
  `,
};
