import type { Migration } from '../migrations.js';
import { TIMEFRAMES } from '../../../strategies/kinds.js';

/**
 * Market data beside the log (ADR 007), schema qcat_market, its version 1 of old. Branch
 * `types` numbered it 10: the lead renumbers at merge. A database that recorded it in the
 * schema's own ledger (qcat_market.schema_versions) has it carried over, not run again (ADR 028).
 */
export const marketInstrumentsAndCandles: Migration = {
  version: 10,
  name: 'market: instruments and candles',
  sql: `
      CREATE SCHEMA IF NOT EXISTS qcat_market;
      CREATE TABLE qcat_market.instruments (
        symbol       text        PRIMARY KEY,
        base         text        NOT NULL,
        quote        text        NOT NULL,
        tick_size    numeric     NOT NULL CHECK (tick_size > 0),
        lot_size     numeric     NOT NULL CHECK (lot_size > 0),
        min_notional numeric     NOT NULL CHECK (min_notional >= 0),
        updated_at   timestamptz NOT NULL DEFAULT now()
      );

      -- One row per bar. Prices and volumes are float8: they arrive as IEEE doubles and leave as
      -- the same doubles (PostgreSQL prints the shortest text that reads back exactly).
      CREATE TABLE qcat_market.candles (
        symbol    text             NOT NULL,
        timeframe text             NOT NULL CHECK (timeframe IN (${TIMEFRAMES.map((t) => `'${t}'`).join(', ')})),
        open_time timestamptz      NOT NULL,
        open      double precision NOT NULL,
        high      double precision NOT NULL,
        low       double precision NOT NULL,
        close     double precision NOT NULL,
        volume    double precision NOT NULL,
        PRIMARY KEY (symbol, timeframe, open_time),
        CHECK (low > 0 AND low <= open AND low <= close AND high >= open AND high >= close AND volume >= 0)
      );
    `,
  carriedFrom: { ledger: 'qcat_market.schema_versions', version: 1 },
};
