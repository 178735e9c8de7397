import type pg from 'pg';
import type { Party } from '../core/approvals/approval.js';
import type { Strategy } from '../core/strategies/strategy.js';
import { SqlFilter } from './sql-filter.js';

/** A row of qcat_read.strategies: the folded state and where it stands. */
export interface StrategyRow {
  strategy_id: string;
  state: Strategy;
  created_at: Date;
  updated_at: Date;
  revision: string;
  position: string;
  created_position: string;
}

/** Which strategies a page lists, in creation order after `after`: `limit` and one more. */
export interface StrategyListFilter {
  state?: string | undefined;
  kind?: string | undefined;
  symbol?: string | undefined;
  owner?: string | undefined;
  after?: string | undefined;
  limit: number;
}

export interface StrategyHistoryRow {
  position: string;
  recorded_at: Date;
  stream_id: string;
  type: string;
  actor: string;
  data: Record<string, unknown>;
}

export interface ParameterVersionRow {
  version: number;
  parameters: Record<string, unknown>;
  request_id: string | null;
  approvers: Party[];
  recorded_at: Date;
}

const STRATEGY_COLUMNS =
  'strategy_id, state, created_at, updated_at, revision, position, created_position';

/**
 * The SQL that reads the strategies read model (projections/strategies.ts): the strategy routes'
 * queries and other slices' checks.
 */

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

  /** A page of strategies in creation order (created_position), one more than the limit. */
  async list(filter: StrategyListFilter): Promise<StrategyRow[]> {
    const where = new SqlFilter();
    if (filter.state) where.add('status = ?', filter.state);
    if (filter.kind) where.add('kind = ?', filter.kind);
    if (filter.symbol) where.add('symbols @> ARRAY[?]::text[]', filter.symbol);
    if (filter.owner) where.add('owner_id = ?', filter.owner);
    const page = where.pageAfter('created_position', filter);
    const { rows } = await this.pool.query<StrategyRow>(
      `SELECT ${STRATEGY_COLUMNS}
         FROM qcat_read.strategies ${where.where}
        ${page}`,
      where.values,
    );
    return rows;
  }

  /** Every strategy's status, position and time of change. */
  async statuses(): Promise<
    { strategy_id: string; status: string; position: string; updated_at: Date }[]
  > {
    const { rows } = await this.pool.query<{
      strategy_id: string;
      status: string;
      position: string;
      updated_at: Date;
    }>('SELECT strategy_id, status, position, updated_at FROM qcat_read.strategies');
    return rows;
  }

  async row(strategyId: string): Promise<StrategyRow | undefined> {
    const { rows } = await this.pool.query<StrategyRow>(
      `SELECT ${STRATEGY_COLUMNS}
         FROM qcat_read.strategies WHERE strategy_id = $1`,
      [strategyId],
    );
    return rows[0];
  }

  /** The events of a strategy and its approval requests after `after`, `limit` at most. */
  async history(strategyId: string, after: string, limit: number): Promise<StrategyHistoryRow[]> {
    const { rows } = await this.pool.query<StrategyHistoryRow>(
      `SELECT position, recorded_at, stream_id, type, actor, data FROM qcat_read.strategy_history
        WHERE strategy_id = $1 AND position > $2 ORDER BY position LIMIT $3`,
      [strategyId, after, limit],
    );
    return rows;
  }

  async parameterVersions(strategyId: string): Promise<ParameterVersionRow[]> {
    const { rows } = await this.pool.query<ParameterVersionRow>(
      `SELECT version, parameters, request_id, approvers, recorded_at
         FROM qcat_read.strategy_parameter_versions WHERE strategy_id = $1 ORDER BY version`,
      [strategyId],
    );
    return rows;
  }
}
