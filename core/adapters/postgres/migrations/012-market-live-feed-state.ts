import type { Migration } from '../migrations.js';

/**
 * Market data beside the log (ADR 007), schema qcat_market, its version 3 of old. Branch
 * `types` numbered it 12: the lead renumbers at merge. A database that recorded it in the
 * schema's own ledger (qcat_market.schema_versions) has it carried over, not run again (ADR 028).
 */
export const marketLiveFeedState: Migration = {
  version: 12,
  name: 'market: live feed state',
  sql: `
      -- Where the feed's path stands, written with the bars it produced: a restart goes on from
      -- here instead of regenerating the path from its origin. json, not jsonb: doubles read back
      -- exactly as written.
      ALTER TABLE qcat_market.feeds ADD COLUMN state json;
    `,
  carriedFrom: { ledger: 'qcat_market.schema_versions', version: 3 },
};
