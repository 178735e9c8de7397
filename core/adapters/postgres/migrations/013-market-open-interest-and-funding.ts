import type { Migration } from '../migrations.js';

/**
 * Market data beside the log (ADR 007), schema qcat_market, its version 4 of old. Branch
 * `types` numbered it 13: the lead renumbers at merge. A database that recorded it in the
 * schema's own ledger (qcat_market.schema_versions) has it carried over, not run again (ADR 028).
 */
export const marketOpenInterestAndFunding: Migration = {
  version: 13,
  name: 'market: open interest and funding rates',
  sql: `
      -- Futures data for the hot-symbol scores (derivatives-store.ts): imported from Binance's
      -- metrics and fundingRate files, or generated with the synthetic market.
      CREATE TABLE qcat_market.open_interest (
        symbol              text             NOT NULL,
        time                timestamptz      NOT NULL,
        open_interest       double precision NOT NULL CHECK (open_interest >= 0),
        open_interest_value double precision CHECK (open_interest_value >= 0),
        PRIMARY KEY (symbol, time)
      );
      CREATE TABLE qcat_market.funding_rates (
        symbol         text             NOT NULL,
        time           timestamptz      NOT NULL,
        rate           double precision NOT NULL CHECK (rate > -1 AND rate < 1),
        interval_hours integer          CHECK (interval_hours BETWEEN 1 AND 24),
        PRIMARY KEY (symbol, time)
      );
    `,
  carriedFrom: { ledger: 'qcat_market.schema_versions', version: 4 },
};
