import type { Migration } from '../migrations.js';

/**
 * The paper engine's snapshots (schema qcat_engine): a cache of state the engine can always rebuild
 * from its write-ahead log, so neither backed up nor restored. Created at start-up with IF NOT
 * EXISTS before there was one migration mechanism (ADR 028), so it still says IF NOT EXISTS: a
 * database that has the table keeps it. Branch `types` numbered it 14: the lead renumbers at merge.
 */
export const engineSnapshots: Migration = {
  version: 14,
  name: 'engine snapshots',
  sql: `
    CREATE SCHEMA IF NOT EXISTS qcat_engine;
    CREATE TABLE IF NOT EXISTS qcat_engine.snapshots (
      portfolio_id text        PRIMARY KEY,
      cycle        bigint      NOT NULL,
      snapshot     jsonb       NOT NULL,
      saved_at     timestamptz NOT NULL DEFAULT now()
    );
  `,
};
