import type { Migration } from '../migrations.js';

/**
 * Market data beside the log (ADR 007), schema qcat_market, its version 2 of old. Branch
 * `types` numbered it 11: the lead renumbers at merge. A database that recorded it in the
 * schema's own ledger (qcat_market.schema_versions) has it carried over, not run again (ADR 028).
 */
export const marketLiveFeeds: Migration = {
  version: 11,
  name: 'market: live feeds; candles by time',
  sql: `
      -- The paper engine reads the bars of one timeframe after a time, for several symbols.
      CREATE INDEX candles_by_time ON qcat_market.candles (timeframe, open_time, symbol);
      CREATE TABLE qcat_market.feeds (
        name       text        PRIMARY KEY,
        seed       bigint      NOT NULL,
        origin     timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  carriedFrom: { ledger: 'qcat_market.schema_versions', version: 2 },
};
