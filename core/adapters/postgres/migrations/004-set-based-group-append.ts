import type { Migration } from '../migrations.js';

/**
 * Migration 4 brought qcat_append_batch, the whole group of appends at once (ADR 001). Its
 * current definition is in functions/qcat-append.ts, installed by migration 5, the last to change
 * it; a database created before then got this migration's own, which migration 5 replaced.
 */
export const setBasedGroupAppend: Migration = {
  version: 4,
  name: 'set-based group append',
  sql: `
    -- qcat_append_batch: functions/qcat-append.ts, installed by migration 5.
  `,
};
