/**
 * The tables of the trading read model (projections/trading.ts), made by its `setup` in the
 * schema it builds (the live one, or a shadow copy during a rebuild).
 */

/** Orders and their fills, by order id and fill id, with the indexes the lists page on. */
export const orderTables = (schema: string): string => `
  CREATE TABLE ${schema}.orders (
    client_order_id    text             PRIMARY KEY,
    portfolio_id       text             NOT NULL,
    strategy_id        text             NOT NULL,
    symbol             text             NOT NULL,
    side               text             NOT NULL,
    type               text             NOT NULL,
    quantity           double precision NOT NULL,
    limit_price        double precision,
    stop_price         double precision,
    reduce_only        boolean          NOT NULL,
    status             text             NOT NULL,
    filled_quantity    double precision NOT NULL,
    average_price      double precision,
    reason             text,
    source             text             NOT NULL,
    actor              text             NOT NULL,
    submitted_at       timestamptz      NOT NULL,
    updated_at         timestamptz      NOT NULL,
    submitted_position bigint           NOT NULL UNIQUE,
    position           bigint           NOT NULL
  );
  CREATE INDEX ON ${schema}.orders (portfolio_id, submitted_position);
  CREATE INDEX ON ${schema}.orders (strategy_id, submitted_position);
  CREATE INDEX ON ${schema}.orders (symbol, submitted_position);
  CREATE INDEX ON ${schema}.orders (status, submitted_position);
  CREATE INDEX ON ${schema}.orders (source, submitted_position);
  CREATE INDEX ON ${schema}.orders (submitted_at);
  CREATE TABLE ${schema}.fills (
    fill_id         text             PRIMARY KEY,
    client_order_id text             NOT NULL,
    portfolio_id    text             NOT NULL,
    strategy_id     text             NOT NULL,
    symbol          text             NOT NULL,
    side            text             NOT NULL,
    price           double precision NOT NULL,
    quantity        double precision NOT NULL,
    notional        double precision NOT NULL,
    fee             double precision NOT NULL,
    fee_currency    text             NOT NULL,
    liquidity       text             NOT NULL,
    slippage        double precision NOT NULL,
    time            timestamptz      NOT NULL,
    position        bigint           NOT NULL UNIQUE
  );
  CREATE INDEX ON ${schema}.fills (client_order_id);
  CREATE INDEX ON ${schema}.fills (portfolio_id, position);
  CREATE INDEX ON ${schema}.fills (strategy_id, position);
  CREATE INDEX ON ${schema}.fills (symbol, position);
  CREATE INDEX ON ${schema}.fills (time)`;

/** Positions, closed trades, portfolios and their equity curve. */
export const bookTables = (schema: string): string => `
  CREATE TABLE ${schema}.positions (
    portfolio_id        text             NOT NULL,
    strategy_id         text             NOT NULL,
    symbol              text             NOT NULL,
    quantity            double precision NOT NULL,
    average_entry_price double precision NOT NULL,
    realized_pnl        double precision NOT NULL,
    fees_paid           double precision NOT NULL,
    mark_price          double precision,
    unrealized_pnl      double precision NOT NULL,
    updated_at          timestamptz      NOT NULL,
    position            bigint           NOT NULL,
    PRIMARY KEY (portfolio_id, strategy_id, symbol)
  );
  CREATE INDEX ON ${schema}.positions (strategy_id);
  CREATE TABLE ${schema}.trades (
    fill_id         text             PRIMARY KEY,
    client_order_id text             NOT NULL,
    portfolio_id    text             NOT NULL,
    strategy_id     text             NOT NULL,
    symbol          text             NOT NULL,
    side            text             NOT NULL,
    opened_at       timestamptz      NOT NULL,
    closed_at       timestamptz      NOT NULL,
    quantity        double precision NOT NULL,
    entry_price     double precision NOT NULL,
    exit_price      double precision NOT NULL,
    pnl             double precision NOT NULL,
    fees            double precision NOT NULL,
    net_pnl         double precision NOT NULL,
    position        bigint           NOT NULL UNIQUE
  );
  CREATE INDEX ON ${schema}.trades (portfolio_id, position);
  CREATE INDEX ON ${schema}.trades (strategy_id, position);
  CREATE INDEX ON ${schema}.trades (symbol, position);
  CREATE INDEX ON ${schema}.trades (closed_at);
  CREATE TABLE ${schema}.portfolios (
    portfolio_id    text             PRIMARY KEY,
    currency        text             NOT NULL,
    cash            double precision NOT NULL,
    equity          double precision,
    realized_pnl    double precision NOT NULL,
    unrealized_pnl  double precision NOT NULL,
    fees_paid       double precision NOT NULL,
    valued_at       timestamptz,
    high_water_mark double precision,
    position        bigint           NOT NULL
  );
  CREATE TABLE ${schema}.portfolio_equity (
    portfolio_id text             NOT NULL,
    time         timestamptz      NOT NULL,
    equity       double precision NOT NULL,
    cash         double precision NOT NULL,
    position     bigint           NOT NULL,
    PRIMARY KEY (portfolio_id, time)
  )`;
