import type pg from 'pg';
import type { OrderStatus } from '../core/trading/orders.js';
import { tradingSource } from './retention-queries.js';
import { addTimeRange, SqlFilter, type TimeRange } from './sql-filter.js';

/** The SQL that reads the trading read model (projections/trading.ts). */

export interface OrderRow {
  client_order_id: string;
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  type: 'market' | 'limit' | 'stop';
  quantity: number;
  limit_price: number | null;
  stop_price: number | null;
  reduce_only: boolean;
  status: OrderStatus;
  filled_quantity: number;
  average_price: number | null;
  reason: string | null;
  source: 'strategy' | 'manual';
  actor: string;
  submitted_at: Date;
  updated_at: Date;
  submitted_position: string;
  position: string;
}

export interface FillRow {
  fill_id: string;
  client_order_id: string;
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  notional: number;
  fee: number;
  fee_currency: string;
  liquidity: 'maker' | 'taker';
  slippage: number;
  time: Date;
  position: string;
}

export interface TradeRow {
  fill_id: string;
  client_order_id: string;
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  side: 'long' | 'short';
  opened_at: Date;
  closed_at: Date;
  quantity: number;
  entry_price: number;
  exit_price: number;
  pnl: number;
  fees: number;
  net_pnl: number;
  position: string;
}

export interface PositionRow {
  portfolio_id: string;
  strategy_id: string;
  symbol: string;
  quantity: number;
  average_entry_price: number;
  mark_price: number | null;
  unrealized_pnl: number;
  realized_pnl: number;
  fees_paid: number;
  updated_at: Date;
}

export interface PortfolioRow {
  portfolio_id: string;
  currency: string;
  cash: number;
  equity: number | null;
  realized_pnl: number;
  unrealized_pnl: number;
  fees_paid: number;
  valued_at: Date | null;
  high_water_mark: number | null;
}

export interface StrategyPnlRow {
  portfolio_id: string;
  strategy_id: string;
  realized_pnl: number;
  unrealized_pnl: number;
  fees_paid: number;
  open_positions: number;
  trades: number;
}

export interface EquityPoint {
  time: Date;
  equity: number;
  cash: number;
}

/** A book filter: any of portfolio, strategy and symbol. */
export interface BookFilter {
  portfolioId?: string | undefined;
  strategyId?: string | undefined;
  symbol?: string | undefined;
}

/** A page: rows after a position cursor, one more than `limit` when there is a next page. */
export interface Page {
  after?: string | undefined;
  limit: number;
}

/** Read the archive too (rows moved out by the retention job, ADR 032); default recent only. */
export interface History {
  history?: boolean | undefined;
}

/** PnL per (portfolio, strategy) over its positions, with its counts. */
const STRATEGY_PNL = `
  SELECT p.portfolio_id, p.strategy_id,
         sum(p.realized_pnl)::float8 AS realized_pnl, sum(p.unrealized_pnl)::float8 AS unrealized_pnl,
         sum(p.fees_paid)::float8 AS fees_paid, count(*) FILTER (WHERE p.quantity <> 0)::int AS open_positions,
         (SELECT count(*) FROM qcat_read.trades t
           WHERE t.portfolio_id = p.portfolio_id AND t.strategy_id = p.strategy_id)::int AS trades
    FROM qcat_read.positions p`;

function bookFilter(q: BookFilter): SqlFilter {
  const filter = new SqlFilter();
  if (q.portfolioId) filter.add('portfolio_id = ?', q.portfolioId);
  if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
  if (q.symbol) filter.add('symbol = ?', q.symbol);
  return filter;
}

export class TradingQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** Orders in submission order. */
  async orders(
    q: BookFilter &
      TimeRange &
      Page &
      History & { status?: OrderStatus | undefined; source?: string },
  ): Promise<OrderRow[]> {
    const filter = bookFilter(q);
    if (q.status) filter.add('status = ?', q.status);
    if (q.source) filter.add('source = ?', q.source);
    addTimeRange(filter, 'submitted_at', q);
    const page = filter.pageAfter('submitted_position', q);
    const { rows } = await this.pool.query<OrderRow>(
      `SELECT * FROM ${await tradingSource(this.pool, 'orders', q.history === true)} ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  /** One order; an archived one too (a look-up by id costs one more probe only when not hot). */
  async order(clientOrderId: string): Promise<OrderRow | undefined> {
    for (const history of [false, true]) {
      const { rows } = await this.pool.query<OrderRow>(
        `SELECT * FROM ${await tradingSource(this.pool, 'orders', history)} WHERE client_order_id = $1`,
        [clientOrderId],
      );
      if (rows[0]) return rows[0];
    }
    return undefined;
  }

  /** An order's fills; a fill is archived only with or after its order (ADR 032). */
  async fillsOf(clientOrderId: string): Promise<FillRow[]> {
    const hot = await this.pool.query<{ n: number }>(
      'SELECT 1 AS n FROM qcat_read.orders WHERE client_order_id = $1',
      [clientOrderId],
    );
    const source = await tradingSource(this.pool, 'fills', hot.rowCount === 0);
    const { rows } = await this.pool.query<FillRow>(
      `SELECT * FROM ${source} WHERE client_order_id = $1 ORDER BY position`,
      [clientOrderId],
    );
    return rows;
  }

  async fills(
    q: BookFilter & TimeRange & Page & History & { clientOrderId?: string | undefined },
  ): Promise<FillRow[]> {
    const filter = bookFilter(q);
    if (q.clientOrderId) filter.add('client_order_id = ?', q.clientOrderId);
    addTimeRange(filter, 'time', q);
    const page = filter.pageAfter('position', q);
    const { rows } = await this.pool.query<FillRow>(
      `SELECT * FROM ${await tradingSource(this.pool, 'fills', q.history === true)} ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  /** Round trips, filtered by close time. */
  async trades(q: BookFilter & TimeRange & Page): Promise<TradeRow[]> {
    const filter = bookFilter(q);
    addTimeRange(filter, 'closed_at', q);
    const page = filter.pageAfter('position', q);
    const { rows } = await this.pool.query<TradeRow>(
      `SELECT * FROM qcat_read.trades ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  async positions(q: BookFilter & { includeFlat: boolean }): Promise<PositionRow[]> {
    const filter = bookFilter(q);
    if (!q.includeFlat) filter.add('quantity <> ?', 0);
    const { rows } = await this.pool.query<PositionRow>(
      `SELECT * FROM qcat_read.positions ${filter.where}
        ORDER BY portfolio_id, strategy_id, symbol`,
      filter.values,
    );
    return rows;
  }

  /** Every portfolio, or the one asked for. */
  async portfolios(portfolioId?: string): Promise<PortfolioRow[]> {
    const filter = new SqlFilter();
    if (portfolioId) filter.add('portfolio_id = ?', portfolioId);
    const { rows } = await this.pool.query<PortfolioRow>(
      `SELECT * FROM qcat_read.portfolios ${filter.where} ORDER BY portfolio_id`,
      filter.values,
    );
    return rows;
  }

  async portfolio(portfolioId: string): Promise<PortfolioRow | undefined> {
    return (await this.portfolios(portfolioId))[0];
  }

  async portfolioExists(portfolioId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'SELECT 1 FROM qcat_read.portfolios WHERE portfolio_id = $1',
      [portfolioId],
    );
    return Boolean(rowCount);
  }

  /** PnL per strategy of a portfolio, or of all portfolios. */
  async strategyPnl(q: { portfolioId?: string | undefined; strategyId?: string | undefined }) {
    const filter = new SqlFilter();
    if (q.portfolioId) filter.add('p.portfolio_id = ?', q.portfolioId);
    if (q.strategyId) filter.add('p.strategy_id = ?', q.strategyId);
    const { rows } = await this.pool.query<StrategyPnlRow>(
      `${STRATEGY_PNL} ${filter.where} GROUP BY p.portfolio_id, p.strategy_id
        ORDER BY p.portfolio_id, p.strategy_id`,
      filter.values,
    );
    return rows;
  }

  /**
   * Equity and cash over time, oldest first, after the `after` instant; with `interval` (a
   * PostgreSQL interval) the last point of each interval. One more than `limit` for a next page.
   */
  async equity(
    portfolioId: string,
    q: TimeRange &
      History & { after?: Date | undefined; interval?: string | undefined; limit: number },
  ): Promise<EquityPoint[]> {
    const source = await tradingSource(this.pool, 'portfolio_equity', q.history === true);
    const filter = new SqlFilter();
    filter.add('portfolio_id = ?', portfolioId);
    addTimeRange(filter, 'time', q);
    if (q.after) filter.add('time > ?', q.after);
    const bucket = q.interval
      ? `date_bin(${filter.param(q.interval)}::interval, time, TIMESTAMPTZ '2000-01-01Z')`
      : 'time';
    const { rows } = await this.pool.query<EquityPoint>(
      `SELECT time, equity, cash FROM (
         SELECT DISTINCT ON (${bucket}) time, equity, cash FROM ${source}
           ${filter.where} ORDER BY ${bucket}, time DESC) AS points
        ORDER BY time LIMIT ${filter.param(q.limit + 1)}`,
      filter.values,
    );
    return rows;
  }

  /** The open books' marks (the average entry price before the first mark). */
  async openBookMarks(): Promise<
    { portfolio_id: string; symbol: string; quantity: number; mark: number }[]
  > {
    const { rows } = await this.pool.query<{
      portfolio_id: string;
      symbol: string;
      quantity: number;
      mark: number;
    }>(
      `SELECT portfolio_id, symbol, quantity, COALESCE(mark_price, average_entry_price) AS mark
         FROM qcat_read.positions WHERE quantity <> 0`,
    );
    return rows;
  }

  /** The books holding a position, by book. */
  async openBooks(): Promise<
    { portfolio_id: string; strategy_id: string; symbol: string; quantity: number }[]
  > {
    const { rows } = await this.pool.query<{
      portfolio_id: string;
      strategy_id: string;
      symbol: string;
      quantity: number;
    }>(
      `SELECT portfolio_id, strategy_id, symbol, quantity FROM qcat_read.positions
        WHERE quantity <> 0 ORDER BY portfolio_id, strategy_id, symbol`,
    );
    return rows;
  }
}
