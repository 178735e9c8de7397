import type { Migration } from '../migrations.js';

/**
 * Migration 2: idempotency keys of commands.
 */
export const idempotencyKeys: Migration = {
  version: 2,
  name: 'idempotency keys',
  sql: `
      CREATE TABLE qcat_idempotency (
        key          text        PRIMARY KEY,
        command_hash text        NOT NULL,
        result       jsonb,
        claimed_at   timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      );
      CREATE INDEX qcat_idempotency_claimed_at ON qcat_idempotency (claimed_at);
    `,
};
