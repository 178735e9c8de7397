import type pg from 'pg';
import type { Strategy } from '../core/strategies/strategy.js';

/** The SQL that reads the strategies read model for other slices' checks (projections/strategies.ts). */

export class StrategyQueries {
  constructor(private readonly pool: pg.Pool) {}

  async exists(strategyId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'SELECT 1 FROM qcat_read.strategies WHERE strategy_id = $1',
      [strategyId],
    );
    return Boolean(rowCount);
  }

  /** What trading needs of a strategy: its status, symbols and timeframe. */
  async tradingOf(
    strategyId: string,
  ): Promise<{ status: string; symbols: string[]; timeframe: string } | undefined> {
    const { rows } = await this.pool.query<{
      status: string;
      symbols: string[];
      timeframe: string;
    }>('SELECT status, symbols, timeframe FROM qcat_read.strategies WHERE strategy_id = $1', [
      strategyId,
    ]);
    return rows[0];
  }

  /** The strategy's folded state. */
  async state(strategyId: string): Promise<Strategy | undefined> {
    const { rows } = await this.pool.query<{ state: Strategy }>(
      'SELECT state FROM qcat_read.strategies WHERE strategy_id = $1',
      [strategyId],
    );
    return rows[0]?.state;
  }
}
