import type pg from 'pg';
import { emptySnapshot, type RiskSnapshot } from '../core/risk/checks.js';
import type { RiskScope, TRADING_STATES } from '../core/risk/common.js';
import type { RiskLimits } from '../core/risk/limits.js';
import type { RISK_RULES, Temporary, TRIGGER_ACTIONS } from '../core/risk/trading-state.js';
import { addTimeRange, SqlFilter, type TimeRange } from './sql-filter.js';

/** The SQL that reads the risk read model (projections/risk.ts). */

export interface StateRow {
  scope_type: RiskScope['type'];
  scope_id: string;
  state: (typeof TRADING_STATES)[number];
  temporary: Temporary | null;
  reason: string;
  changed_by: string;
  changed_at: Date;
  reset_at: Date | null;
  request_id: string | null;
  position: string;
}

export interface LimitsRow {
  scope_type: RiskScope['type'];
  scope_id: string;
  limits: RiskLimits;
  version: number;
  request_id: string | null;
  changed_by: string;
  changed_at: Date;
  position: string;
}

export interface KillSwitchRow {
  engaged: boolean;
  flatten: boolean;
  since: Date | null;
  engaged_by: string | null;
  reason: string;
  released_by: string | null;
  released_at: Date | null;
  release_request_id: string | null;
  position: string;
}

export interface TriggerRow {
  trigger_id: string;
  rule: (typeof RISK_RULES)[number];
  scope_type: RiskScope['type'];
  scope_id: string;
  threshold: number;
  observed: number;
  reference: number;
  value: number;
  window_from: Date;
  window_to: Date;
  action: (typeof TRIGGER_ACTIONS)[number];
  until: Date | null;
  actor: string;
  fired_at: Date;
  position: string;
}

export interface DeniedOrderRow {
  client_order_id: string;
  portfolio_id: string | null;
  strategy_id: string | null;
  symbol: string | null;
  side: 'buy' | 'sell' | null;
  quantity: number | null;
  code: string;
  reason: string;
  denied_at: Date;
  actor: string;
  position: string;
}

/** Filters of the lists ordered by scope; `after` is a `<scopeType>:<id>` cursor. */
export interface ScopeFilter {
  scopeType?: RiskScope['type'] | undefined;
  scopeId?: string | undefined;
  after?: string | undefined;
  limit: number;
}

/** The equity measures of a portfolio as the read side resolves them (core/risk/measures.ts). */
export interface PortfolioMeasuresRow {
  portfolio_id: string;
  equity: number | null;
  opening_equity: number | null;
  high_water_mark: number | null;
}

const equityAt = (condition: string, order: 'ASC' | 'DESC'): string =>
  `(SELECT e.equity FROM qcat_read.portfolio_equity e
     WHERE e.portfolio_id = p.portfolio_id AND ${condition}
     ORDER BY e.time ${order} LIMIT 1)`;

/**
 * Per portfolio, the opening equity of the day of its last valuation and its high-water mark,
 * honouring the last approved reset of the portfolio scope (in the risk snapshot), as the breakers
 * take them (core/risk/breakers.ts, core/risk/measures.ts): the opening is the last equity before
 * the day (the day's first without one) or, after a reset that day, the first equity valued at or
 * after the reset (the breaker's first observation after it); after a reset the mark is the highest
 * equity valued since it (until the first valuation after it, the mark before it).
 * One statement, index lookups on portfolio_equity's (portfolio_id, time) key: the risk API and
 * the business metrics both run it.
 */
export const PORTFOLIO_MEASURES_SQL = `
  SELECT p.portfolio_id, p.equity::float8 AS equity,
         (CASE WHEN p.valued_at IS NULL OR p.equity IS NULL THEN NULL
               ELSE coalesce(
                 CASE WHEN r.reset_at >= d.start THEN ${equityAt('e.time >= r.reset_at', 'ASC')} END,
                 ${equityAt('e.time < d.start', 'DESC')},
                 ${equityAt('e.time >= d.start', 'ASC')})
          END)::float8 AS opening_equity,
         (CASE WHEN p.valued_at IS NULL OR p.equity IS NULL THEN NULL
               ELSE coalesce(
                 (SELECT max(e.equity) FROM qcat_read.portfolio_equity e
                   WHERE e.portfolio_id = p.portfolio_id AND e.time >= r.reset_at),
                 p.high_water_mark)
          END)::float8 AS high_water_mark
    FROM qcat_read.portfolios p
    CROSS JOIN LATERAL (SELECT date_trunc('day', p.valued_at, 'UTC') AS start) d
    LEFT JOIN LATERAL (
      SELECT to_timestamp(((s.snapshot -> 'states' -> ('portfolio:' || p.portfolio_id)
                            ->> 'resetAt')::float8) / 1000) AS reset_at
        FROM qcat_read.risk_snapshot s WHERE s.id = 1) r ON true
   ORDER BY p.portfolio_id`;

function scopeFilter(q: ScopeFilter): SqlFilter {
  const filter = new SqlFilter();
  if (q.scopeType) filter.add('scope_type = ?', q.scopeType);
  if (q.scopeId) filter.add('scope_id = ?', q.scopeId);
  if (q.after) {
    const colon = q.after.indexOf(':');
    filter.add(
      `(scope_type, scope_id) > (?, ${filter.param(q.after.slice(colon + 1))})`,
      q.after.slice(0, colon),
    );
  }
  return filter;
}

export class RiskQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** The snapshot the engine reads, and the position of the last risk event in it. */
  async snapshot(): Promise<{ snapshot: RiskSnapshot; position: string }> {
    const { rows } = await this.pool.query<{ snapshot: RiskSnapshot; position: string }>(
      'SELECT snapshot, position FROM qcat_read.risk_snapshot WHERE id = 1',
    );
    return rows[0] ?? { snapshot: emptySnapshot(), position: '0' };
  }

  /** Limits set per scope, by scope; one more than `limit` when there is a next page. */
  async limits(q: ScopeFilter): Promise<LimitsRow[]> {
    const filter = scopeFilter(q);
    const { rows } = await this.pool.query<LimitsRow>(
      `SELECT * FROM qcat_read.risk_limits ${filter.where}
        ORDER BY scope_type, scope_id LIMIT ${filter.param(q.limit + 1)}`,
      filter.values,
    );
    return rows;
  }

  /** Trading states of the scopes whose state ever changed, by scope. */
  async states(q: ScopeFilter): Promise<StateRow[]> {
    const filter = scopeFilter(q);
    const { rows } = await this.pool.query<StateRow>(
      `SELECT * FROM qcat_read.risk_states ${filter.where}
        ORDER BY scope_type, scope_id LIMIT ${filter.param(q.limit + 1)}`,
      filter.values,
    );
    return rows;
  }

  async killSwitch(): Promise<KillSwitchRow | undefined> {
    const { rows } = await this.pool.query<KillSwitchRow>(
      'SELECT * FROM qcat_read.risk_kill_switch WHERE id = 1',
    );
    return rows[0];
  }

  async triggers(
    q: TimeRange & {
      rule?: string | undefined;
      scopeType?: string | undefined;
      scopeId?: string | undefined;
      after?: string | undefined;
      limit: number;
    },
  ): Promise<TriggerRow[]> {
    const filter = new SqlFilter();
    if (q.rule) filter.add('rule = ?', q.rule);
    if (q.scopeType) filter.add('scope_type = ?', q.scopeType);
    if (q.scopeId) filter.add('scope_id = ?', q.scopeId);
    addTimeRange(filter, 'fired_at', q);
    const page = filter.pageAfter('position', q);
    const { rows } = await this.pool.query<TriggerRow>(
      `SELECT * FROM qcat_read.risk_triggers ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  async deniedOrders(
    q: TimeRange & {
      code?: string | undefined;
      portfolioId?: string | undefined;
      strategyId?: string | undefined;
      symbol?: string | undefined;
      after?: string | undefined;
      limit: number;
    },
  ): Promise<DeniedOrderRow[]> {
    const filter = new SqlFilter();
    if (q.code) filter.add('code = ?', q.code);
    if (q.portfolioId) filter.add('portfolio_id = ?', q.portfolioId);
    if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
    if (q.symbol) filter.add('symbol = ?', q.symbol);
    addTimeRange(filter, 'denied_at', q);
    const page = filter.pageAfter('position', q);
    const { rows } = await this.pool.query<DeniedOrderRow>(
      `SELECT * FROM qcat_read.risk_denied_orders ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  /** Every portfolio's equity measures (PORTFOLIO_MEASURES_SQL). */
  async portfolioMeasures(): Promise<PortfolioMeasuresRow[]> {
    return (await this.pool.query<PortfolioMeasuresRow>(PORTFOLIO_MEASURES_SQL)).rows;
  }
}
