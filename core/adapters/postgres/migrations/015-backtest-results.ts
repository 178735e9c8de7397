import type { Migration } from '../migrations.js';

/**
 * The backtest runner's results (schema qcat_backtest, projections/backtests.ts): kept apart from
 * the read models' generations, so a rebuild does not take them along. Created with IF NOT EXISTS
 * by the runner until then (ADR 028), so it still says IF NOT EXISTS: a database that has the
 * tables keeps them. Branch `types` numbered it 15: the lead renumbers at merge.
 */
export const backtestResults: Migration = {
  version: 15,
  name: 'backtest results',
  sql: `
    CREATE SCHEMA IF NOT EXISTS qcat_backtest;
    CREATE TABLE IF NOT EXISTS qcat_backtest.runs (
      backtest_id      text        PRIMARY KEY,
      request_event_id uuid        NOT NULL,
      trades           integer     NOT NULL,
      equity_days      integer     NOT NULL,
      written_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS qcat_backtest.trades (
      backtest_id  text             NOT NULL,
      seq          integer          NOT NULL,
      side         text             NOT NULL,
      opened_at    timestamptz      NOT NULL,
      closed_at    timestamptz      NOT NULL,
      quantity     double precision NOT NULL,
      entry_price  double precision NOT NULL,
      exit_price   double precision NOT NULL,
      realized_pnl double precision NOT NULL,
      fees         double precision NOT NULL,
      net_pnl      double precision NOT NULL,
      PRIMARY KEY (backtest_id, seq)
    );
    CREATE TABLE IF NOT EXISTS qcat_backtest.equity (
      backtest_id text             NOT NULL,
      day         date             NOT NULL,
      equity      double precision NOT NULL,
      PRIMARY KEY (backtest_id, day)
    );
  `,
};
