import type { Migration } from '../migrations.js';

/**
 * The backtest runner's result tables (schema qcat_backtest, ADR 027): written by the runner, not
 * folded from events, so outside the read models' generations. The runner made them itself with
 * IF NOT EXISTS before they were a migration (ADR 028), so this one says IF NOT EXISTS too: a
 * database that has them keeps them, and the runner no longer runs DDL.
 */
export const backtestResults: Migration = {
  version: 18,
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
