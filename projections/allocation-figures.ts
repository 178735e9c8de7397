import type pg from 'pg';
import { sampleStandardDeviation } from 'simple-statistics';
import type { Valuation } from '../core/portfolio/events.js';

/**
 * The allocation figures the metrics read (monitoring/allocation-metrics.ts), kept up to date by
 * the allocations read model so that a scrape reads one row per member and per portfolio instead
 * of the whole daily history:
 *   - `allocation_figures`: per member, the target weight in force, the actual weight (its
 *     capital at the allocation plus its PnL since, over equity now) and their difference;
 *   - `allocation_portfolio_figures`: the drift band of the policy, the expected volatility of
 *     the allocation in force, the realized volatility of the portfolio's daily equity over the
 *     last REALIZED_DAYS UTC days, and the latest valuation the figures were computed from;
 *   - `allocation_portfolio_days`: the portfolio's equity at its last valuation of each UTC day.
 * Recomputed on every AllocationApplied, membership or policy change and PortfolioValued.
 */

export const FIGURE_TABLES = [
  'allocation_figures',
  'allocation_portfolio_figures',
  'allocation_portfolio_days',
] as const;

/** Daily returns the realized volatility is taken over (30 returns, 31 days). */
export const REALIZED_DAYS = 30;

export const figuresSetup = (schema: string): string => `
  CREATE TABLE ${schema}.allocation_figures (
    portfolio_id text             NOT NULL,
    strategy_id  text             NOT NULL,
    target       double precision NOT NULL,
    actual       double precision NOT NULL,
    drift        double precision NOT NULL,
    PRIMARY KEY (portfolio_id, strategy_id)
  );
  CREATE TABLE ${schema}.allocation_portfolio_figures (
    portfolio_id        text             PRIMARY KEY,
    drift_band          double precision,
    expected_volatility double precision,
    realized_volatility double precision,
    latest_valuation    jsonb,
    applied_at          timestamptz
  );
  CREATE TABLE ${schema}.allocation_portfolio_days (
    portfolio_id text             NOT NULL,
    day          date             NOT NULL,
    equity       double precision NOT NULL,
    PRIMARY KEY (portfolio_id, day)
  )`;

/** Annualized (365) standard deviation of the simple daily returns; null under 3 returns. */
export function realizedVolatility(equities: readonly number[]): number | null {
  const returns: number[] = [];
  for (let i = 1; i < equities.length; i++) {
    const before = equities[i - 1] ?? 0;
    if (before > 0) returns.push((equities[i] ?? 0) / before - 1);
  }
  if (returns.length < 3) return null;
  return sampleStandardDeviation(returns) * Math.sqrt(365);
}

/** Records a valuation: its day's equity, the realized volatility, then every member's figures. */
export async function figuresOnValuation(
  client: pg.ClientBase,
  schema: string,
  portfolioId: string,
  valuation: Valuation,
): Promise<void> {
  await client.query(
    `INSERT INTO ${schema}.allocation_portfolio_days (portfolio_id, day, equity) VALUES ($1, $2, $3)
     ON CONFLICT (portfolio_id, day) DO UPDATE SET equity = $3`,
    [portfolioId, valuation.at.slice(0, 10), valuation.equity],
  );
  const { rows } = await client.query<{ equity: number }>(
    `SELECT equity FROM ${schema}.allocation_portfolio_days WHERE portfolio_id = $1
      ORDER BY day DESC LIMIT ${REALIZED_DAYS + 1}`,
    [portfolioId],
  );
  const realized = realizedVolatility(rows.map((row) => row.equity).reverse());
  await client.query(
    `INSERT INTO ${schema}.allocation_portfolio_figures (portfolio_id, realized_volatility, latest_valuation)
     VALUES ($1, $2, $3)
     ON CONFLICT (portfolio_id) DO UPDATE SET realized_volatility = $2, latest_valuation = $3`,
    [portfolioId, realized, valuation],
  );
  await refreshFigures(client, schema, portfolioId);
}

/** After an allocation is applied: its expected volatility (from its proposal), then the figures. */
export async function figuresOnApplied(
  client: pg.ClientBase,
  schema: string,
  portfolioId: string,
  proposalId: string,
  at: Date,
): Promise<void> {
  await client.query(
    `INSERT INTO ${schema}.allocation_portfolio_figures (portfolio_id, expected_volatility, applied_at)
     SELECT $1, (inputs->>'expectedVolatility')::double precision, $3
       FROM ${schema}.allocation_proposals WHERE portfolio_id = $1 AND proposal_id = $2
     ON CONFLICT (portfolio_id) DO UPDATE
       SET expected_volatility = EXCLUDED.expected_volatility, applied_at = $3`,
    [portfolioId, proposalId, at],
  );
  await refreshFigures(client, schema, portfolioId);
}

/**
 * Every member's target, actual weight and drift, from the allocation in force and the latest
 * valuation (the allocation's own when none is newer); members only, none without an allocation.
 */
export async function refreshFigures(
  client: pg.ClientBase,
  schema: string,
  portfolioId: string,
): Promise<void> {
  const { rows } = await client.query<{
    members: string[];
    drift_band: number | null;
    weights: Record<string, number> | null;
    applied: Valuation | null;
    latest: Valuation | null;
  }>(
    `SELECT p.members, (p.policy->'rebalance'->>'driftBand')::double precision AS drift_band,
            c.weights, c.valuation AS applied, f.latest_valuation AS latest
       FROM ${schema}.portfolio_policies p
       LEFT JOIN ${schema}.allocation_current c USING (portfolio_id)
       LEFT JOIN ${schema}.allocation_portfolio_figures f USING (portfolio_id)
      WHERE p.portfolio_id = $1`,
    [portfolioId],
  );
  await client.query(`DELETE FROM ${schema}.allocation_figures WHERE portfolio_id = $1`, [
    portfolioId,
  ]);
  const row = rows[0];
  if (!row) return;
  await client.query(
    `INSERT INTO ${schema}.allocation_portfolio_figures (portfolio_id, drift_band) VALUES ($1, $2)
     ON CONFLICT (portfolio_id) DO UPDATE SET drift_band = $2`,
    [portfolioId, row.drift_band],
  );
  if (!row.weights || !row.applied) return;
  const then = row.applied;
  // A valuation older than the allocation says nothing about it: measure from the allocation.
  const now = row.latest && row.latest.at >= then.at ? row.latest : then;
  if (!(now.equity > 0)) return;
  for (const strategyId of row.members) {
    const target = row.weights[strategyId] ?? 0;
    const actual =
      (target * then.equity + (now.pnl[strategyId] ?? 0) - (then.pnl[strategyId] ?? 0)) /
      now.equity;
    await client.query(
      `INSERT INTO ${schema}.allocation_figures (portfolio_id, strategy_id, target, actual, drift)
       VALUES ($1, $2, $3, $4, $5)`,
      [portfolioId, strategyId, target, actual, actual - target],
    );
  }
}
