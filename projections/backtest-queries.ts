import type pg from 'pg';
import type { BacktestRun } from '../core/backtests/backtest-run.js';
import { SqlFilter } from './sql-filter.js';

/** The SQL that reads the backtests read model and the runner's results (qcat_backtest, ADR 027). */

export interface BacktestRow {
  backtest_id: string;
  state: BacktestRun;
  requested_by: string;
  requested_at: Date;
  finished_at: Date | null;
  requested_position: string;
  revision: string;
  position: string;
}

export interface BacktestTradeRow {
  seq: number;
  side: 'long' | 'short';
  opened_at: Date;
  closed_at: Date;
  quantity: number;
  entry_price: number;
  exit_price: number;
  realized_pnl: number;
  fees: number;
  net_pnl: number;
}

const COLUMNS = `backtest_id, state, requested_by, requested_at, finished_at, requested_position,
                 revision, position`;

export class BacktestQueries {
  constructor(private readonly pool: pg.Pool) {}

  async get(backtestId: string): Promise<BacktestRow | undefined> {
    const { rows } = await this.pool.query<BacktestRow>(
      `SELECT ${COLUMNS} FROM qcat_read.backtests WHERE backtest_id = $1`,
      [backtestId],
    );
    return rows[0];
  }

  /** Newest first, before the `before` position; one more than `limit` for a next page. */
  async list(q: {
    strategyId?: string | undefined;
    status?: string | undefined;
    kind?: string | undefined;
    symbol?: string | undefined;
    before?: string | undefined;
    limit: number;
  }): Promise<BacktestRow[]> {
    const filter = new SqlFilter();
    if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
    if (q.status) filter.add('status = ?', q.status);
    if (q.kind) filter.add('kind = ?', q.kind);
    if (q.symbol) filter.add('symbol = ?', q.symbol);
    if (q.before) filter.add('requested_position < ?', q.before);
    const { rows } = await this.pool.query<BacktestRow>(
      `SELECT ${COLUMNS} FROM qcat_read.backtests ${filter.where}
        ORDER BY requested_position DESC LIMIT ${filter.param(q.limit + 1)}`,
      filter.values,
    );
    return rows;
  }

  /** Whether the runner has stored the run's results (qcat_backtest). */
  async resultsStored(backtestId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'SELECT 1 FROM qcat_backtest.runs WHERE backtest_id = $1',
      [backtestId],
    );
    return rowCount !== 0;
  }

  /** Round trips after `afterSeq`, in closing order; one more than `limit` for a next page. */
  async trades(backtestId: string, afterSeq: number, limit: number): Promise<BacktestTradeRow[]> {
    const { rows } = await this.pool.query<BacktestTradeRow>(
      `SELECT seq, side, opened_at, closed_at, quantity, entry_price, exit_price, realized_pnl,
              fees, net_pnl
         FROM qcat_backtest.trades WHERE backtest_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [backtestId, afterSeq, limit + 1],
    );
    return rows;
  }

  /** The daily UTC equity, by day. */
  async equity(backtestId: string): Promise<{ date: string; equity: number }[]> {
    const { rows } = await this.pool.query<{ date: string; equity: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS date, equity FROM qcat_backtest.equity
        WHERE backtest_id = $1 ORDER BY day`,
      [backtestId],
    );
    return rows;
  }
}
