import type { Migration } from '../migrations.js';

/**
 * Migration 3: the projections' registry and the schema of their read views.
 */
export const projectionRegistry: Migration = {
  version: 3,
  name: 'projection registry',
  sql: `
      -- One row per projection: where its live copy is, how far it got, what stopped it.
      CREATE TABLE qcat_projections (
        name           text        PRIMARY KEY,
        kind           text        NOT NULL,
        version        integer     NOT NULL,
        generation     integer     NOT NULL DEFAULT 1,
        checkpoint     bigint      NOT NULL DEFAULT 0,
        error_position bigint,
        error_message  text,
        error_at       timestamptz,
        leader         text,
        updated_at     timestamptz NOT NULL DEFAULT now()
      );
      -- Queries read projections through views here, so a rebuilt copy can replace the live one
      -- in one transaction.
      CREATE SCHEMA IF NOT EXISTS qcat_read;
    `,
};
