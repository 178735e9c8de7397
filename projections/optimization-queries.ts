import type pg from 'pg';
import type { OptimizationRun } from '../core/optimization/optimization.js';
import type { Strategy } from '../core/strategies/strategy.js';

/** The SQL that reads the optimizations read model (projections/optimizations.ts). */

export interface OptimizationRow {
  optimization_id: string;
  state: OptimizationRun;
  requested_by: string;
  requested_at: Date;
  progressed_at: Date | null;
  finished_at: Date | null;
  requested_position: string;
  revision: string;
  position: string;
}

export interface TrialRow {
  trial: number;
  batch: number;
  score: number | null;
  parameters: Record<string, unknown>;
  in_sample: (number | null)[];
  out_of_sample: (number | null)[];
  trades: number;
  note: string | null;
}

export interface ListFilter {
  strategyId?: string | undefined;
  status?: string | undefined;
  /** requested_position below this (the cursor). */
  before?: string | undefined;
  limit: number;
}

const COLUMNS = `optimization_id, state, requested_by, requested_at, progressed_at, finished_at,
                 requested_position, revision, position`;

export class OptimizationQueries {
  constructor(private readonly pool: pg.Pool) {}

  async get(optimizationId: string): Promise<OptimizationRow | undefined> {
    const { rows } = await this.pool.query<OptimizationRow>(
      `SELECT ${COLUMNS} FROM qcat_read.optimizations WHERE optimization_id = $1`,
      [optimizationId],
    );
    return rows[0];
  }

  /** Newest first; one row more than `limit` when there is a next page. */
  async list(filter: ListFilter): Promise<OptimizationRow[]> {
    const { rows } = await this.pool.query<OptimizationRow>(
      `SELECT ${COLUMNS} FROM qcat_read.optimizations
        WHERE ($1::text IS NULL OR strategy_id = $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::bigint IS NULL OR requested_position < $3)
        ORDER BY requested_position DESC LIMIT $4`,
      [filter.strategyId ?? null, filter.status ?? null, filter.before ?? null, filter.limit + 1],
    );
    return rows;
  }

  /**
   * One page of trials: by score (best first, unscored last, then trial number) with an offset,
   * or by trial number after a cursor. One row more than `limit` when there is a next page.
   */
  async trials(
    optimizationId: string,
    sort: 'score' | 'trial',
    offset: number,
    limit: number,
  ): Promise<TrialRow[]> {
    const order = sort === 'score' ? 'score DESC NULLS LAST, trial' : 'trial';
    const { rows } = await this.pool.query<TrialRow>(
      `SELECT trial, batch, score, parameters, in_sample, out_of_sample, trades, note
         FROM qcat_read.optimization_trials WHERE optimization_id = $1
        ORDER BY ${order} OFFSET $2 LIMIT $3`,
      [optimizationId, offset, limit + 1],
    );
    return rows;
  }

  /** Runs not finished (requested or running), oldest first: what a runner has to do. */
  async unfinished(limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ optimization_id: string }>(
      `SELECT optimization_id FROM qcat_read.optimizations
        WHERE status IN ('requested', 'running') ORDER BY requested_position LIMIT $1`,
      [limit],
    );
    return rows.map((row) => row.optimization_id);
  }

  /** Runs by status, for the metrics. */
  async countByStatus(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ status: string; count: string }>(
      'SELECT status, count(*) AS count FROM qcat_read.optimizations GROUP BY status',
    );
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  }

  /** A strategy as the strategies read model holds it, to start an optimization from. */
  async strategy(strategyId: string): Promise<Strategy | undefined> {
    const { rows } = await this.pool.query<{ state: Strategy }>(
      'SELECT state FROM qcat_read.strategies WHERE strategy_id = $1',
      [strategyId],
    );
    return rows[0]?.state;
  }

  /** Strategies trading now (paper or live), oldest first: what automatic optimization watches. */
  async tradingStrategies(): Promise<Strategy[]> {
    const { rows } = await this.pool.query<{ state: Strategy }>(
      `SELECT state FROM qcat_read.strategies WHERE status IN ('paper', 'live')
        ORDER BY created_position`,
    );
    return rows.map((row) => row.state);
  }

  /**
   * When the strategy's latest optimization was requested, and whether one is unfinished. An
   * automatic request counts from the end of its data window when that is earlier than when it
   * was recorded: the day of the tick that made it, so that under the market clock (ADR 030) the
   * cooldowns count market days; under the wall clock it is the same UTC day.
   */
  async history(
    strategyId: string,
  ): Promise<{ lastRequestedAt: Date | null; unfinished: boolean }> {
    const { rows } = await this.pool.query<{ last: Date | null; unfinished: boolean | null }>(
      `SELECT max(CASE WHEN trigger_type = 'manual' THEN requested_at
                       ELSE least(requested_at, (state->>'to')::timestamptz) END) AS last,
              bool_or(status IN ('requested', 'running')) AS unfinished
         FROM qcat_read.optimizations WHERE strategy_id = $1`,
      [strategyId],
    );
    return { lastRequestedAt: rows[0]?.last ?? null, unfinished: rows[0]?.unfinished ?? false };
  }

  /**
   * The strategy's net PnL at the end of each UTC day from `from` to `to` (dates), summed over the
   * portfolios it trades in, from the paper engine's valuations (the allocations read model).
   */
  async dailyNetPnl(
    strategyId: string,
    from: string,
    to: string,
  ): Promise<{ day: string; netPnl: number }[]> {
    // sum() of double precision is double precision: pg gives it as a number.
    const { rows } = await this.pool.query<{ day: string; net_pnl: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(net_pnl) AS net_pnl
         FROM qcat_read.allocation_strategy_pnl
        WHERE strategy_id = $1 AND day >= $2 AND day <= $3
        GROUP BY day ORDER BY day`,
      [strategyId, from, to],
    );
    return rows.map((row) => ({ day: row.day, netPnl: row.net_pnl }));
  }
}
