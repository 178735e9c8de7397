import type pg from 'pg';
import { Counter, type Gauge, type Registry } from 'prom-client';
import { APPROVAL_KINDS } from '../core/approvals/approval.js';
import { DENIAL_CODES } from '../core/risk/checks.js';
import { TRADING_STATES } from '../core/risk/common.js';
import { RISK_RULES } from '../core/risk/trading-state.js';
import { riskMeasures } from '../core/risk/measures.js';
import { PORTFOLIO_MEASURES_SQL } from '../projections/risk-queries.js';
import { STRATEGY_STATES } from '../core/strategies/strategy.js';
import { ORDER_STATUSES } from '../core/trading/orders.js';
import {
  riskMetrics,
  tradingMetrics,
  type RiskMetrics,
  type TradingMetrics,
} from './business-metric-definitions.js';
import { readFamilies, type Family } from './read-families.js';

/**
 * Business metrics, read from the PostgreSQL read models (`qcat_read`) when Prometheus scrapes:
 * strategies by status, orders by status, traded notional, PnL, equity, drawdown and open
 * positions per portfolio, pending approvals; and the risk side (docs/risk.md): trading states
 * per scope, the kill switch, breaker triggers by rule, denied orders by code, the daily loss of
 * each portfolio. Every replica reads the same tables, so dashboards and alerts aggregate them with
 * `max`, never `sum`, over instances.
 *
 * One scrape = one read-only REPEATABLE READ transaction (all families from one snapshot), one
 * query per family, each behind a savepoint: a family whose query fails (a view missing during a
 * deployment, a statement timeout) keeps its last values and counts one
 * `business_metrics_errors_total{query=<family>}`; /metrics itself never fails because of it.
 *
 * Money: portfolios are kept in their quote currency, USDT, which is counted as USD (1:1) here.
 */

/** A query that could not run: a family name, `connection` or `timeout`. */
type ErrorSource = string;

/** One query of a scrape and what it sets; other modules add theirs with `extend`. */
export type MetricFamily = Family;

export interface BusinessMetricsOptions {
  /**
   * Longest a scrape waits for the read models, and the statement timeout of their queries;
   * default 3000 ms (Prometheus gives up on a scrape after 10 s). Past it the last values are
   * served and `business_metrics_errors_total{query="timeout"}` counts it.
   */
  timeoutMs?: number;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : String(value));
const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));

/** Strategies, approvals and orders by status: every status, 0 when none. */
function lifecycleFamilies(m: TradingMetrics): Family[] {
  return [
    {
      name: 'strategies',
      sql: 'SELECT status, count(*)::float8 AS n FROM qcat_read.strategies GROUP BY status',
      apply: (rows) => {
        m.strategies.reset();
        for (const status of STRATEGY_STATES) m.strategies.set({ status }, 0);
        for (const row of rows) m.strategies.set({ status: text(row['status']) }, num(row['n']));
      },
    },
    {
      name: 'approvals',
      sql: `SELECT kind, count(*)::float8 AS n FROM qcat_read.approvals
             WHERE status = 'pending' GROUP BY kind`,
      apply: (rows) => {
        m.approvalsPending.reset();
        for (const kind of APPROVAL_KINDS) m.approvalsPending.set({ kind }, 0);
        for (const row of rows) m.approvalsPending.set({ kind: text(row['kind']) }, num(row['n']));
      },
    },
    {
      name: 'orders',
      sql: 'SELECT status, count(*)::float8 AS n FROM qcat_read.orders GROUP BY status',
      apply: (rows) => {
        m.orders.reset();
        for (const status of ORDER_STATUSES) m.orders.set({ status }, 0);
        for (const row of rows) m.orders.set({ status: text(row['status']) }, num(row['n']));
      },
    },
  ];
}

/** Fills, the portfolios' PnL and equity, their open positions. */
function bookFamilies(m: TradingMetrics): Family[] {
  return [
    {
      name: 'fills',
      sql: `SELECT side, count(*)::float8 AS n, coalesce(sum(notional), 0)::float8 AS notional
              FROM qcat_read.fills GROUP BY side`,
      apply: (rows) => {
        m.fills.reset();
        m.filledNotional.reset();
        for (const side of ['buy', 'sell']) {
          m.fills.inc({ side }, 0);
          m.filledNotional.inc({ side }, 0);
        }
        for (const row of rows) {
          const side = text(row['side']);
          m.fills.inc({ side }, Math.max(0, num(row['n'])));
          m.filledNotional.inc({ side }, Math.max(0, num(row['notional'])));
        }
      },
    },
    {
      name: 'portfolios',
      sql: `SELECT portfolio_id, equity::float8 AS equity,
                   realized_pnl::float8 AS realized, unrealized_pnl::float8 AS unrealized,
                   fees_paid::float8 AS fees,
                   extract(epoch FROM valued_at)::float8 AS valued_at
              FROM qcat_read.portfolios`,
      apply: (rows) => {
        for (const gauge of [m.pnl, m.equity, m.valuedAt]) gauge.reset();
        for (const row of rows) {
          const portfolio = text(row['portfolio_id']);
          m.pnl.set({ portfolio, kind: 'realized' }, num(row['realized']));
          m.pnl.set({ portfolio, kind: 'unrealized' }, num(row['unrealized']));
          m.pnl.set({ portfolio, kind: 'fees' }, -Math.abs(num(row['fees'])));
          // Equity is known from the engine's first valuation on; until then no series at all
          // rather than a false 0.
          if (row['equity'] === null || row['equity'] === undefined) continue;
          const equity = num(row['equity']);
          m.equity.set({ portfolio }, equity);
          m.valuedAt.set({ portfolio }, num(row['valued_at']));
        }
      },
    },
    {
      name: 'positions',
      sql: `SELECT portfolio_id, count(*) FILTER (WHERE quantity <> 0)::float8 AS n
              FROM qcat_read.positions GROUP BY portfolio_id`,
      apply: (rows) => {
        m.openPositions.reset();
        for (const row of rows)
          m.openPositions.set({ portfolio: text(row['portfolio_id']) }, num(row['n']));
      },
    },
  ];
}

/** The risk side: trading states, the kill switch, triggers, denials, daily loss and drawdown. */
function riskFamilies(m: TradingMetrics & RiskMetrics): Family[] {
  return [
    {
      name: 'risk_states',
      // The rule is the first part of the trigger id, `<rule>-<scopeType>-<scopeId>-<time>`.
      sql: `SELECT scope_type, scope_id, state, temporary->>'state' AS temporary_state,
                   (temporary->>'until')::float8 / 1000 AS temporary_until,
                   split_part(temporary->>'triggerId', '-', 1) AS temporary_rule
              FROM qcat_read.risk_states`,
      apply: (rows) => {
        m.tradingState.reset();
        m.temporaryStateUntil.reset();
        for (const row of rows) {
          const scope = { scope_type: text(row['scope_type']), scope: text(row['scope_id']) };
          const base = text(row['state']);
          for (const state of TRADING_STATES)
            m.tradingState.set({ ...scope, state }, state === base ? 1 : 0);
          if (row['temporary_state'] === null || row['temporary_until'] === null) continue;
          m.temporaryStateUntil.set(
            { ...scope, state: text(row['temporary_state']), rule: text(row['temporary_rule']) },
            num(row['temporary_until']),
          );
        }
      },
    },
    {
      name: 'risk_kill_switch',
      sql: 'SELECT engaged FROM qcat_read.risk_kill_switch',
      apply: (rows) => {
        m.killSwitchEngaged.set(rows.some((row) => row['engaged'] === true) ? 1 : 0);
      },
    },
    {
      name: 'risk_triggers',
      sql: 'SELECT rule, count(*)::float8 AS n FROM qcat_read.risk_triggers GROUP BY rule',
      apply: (rows) => {
        m.triggers.reset();
        for (const rule of RISK_RULES) m.triggers.inc({ rule }, 0);
        for (const row of rows)
          m.triggers.inc({ rule: text(row['rule']) }, Math.max(0, num(row['n'])));
      },
    },
    {
      name: 'risk_denied_orders',
      sql: 'SELECT code, count(*)::float8 AS n FROM qcat_read.risk_denied_orders GROUP BY code',
      apply: (rows) => {
        m.ordersDenied.reset();
        for (const code of DENIAL_CODES) m.ordersDenied.inc({ code }, 0);
        for (const row of rows)
          m.ordersDenied.inc({ code: text(row['code']) }, Math.max(0, num(row['n'])));
      },
    },
    {
      name: 'risk_daily_loss',
      // Daily loss and drawdown as the breakers and the risk API take them, honouring approved
      // resets: one statement (projections/risk-queries.ts), one formula (core/risk/measures.ts).
      sql: PORTFOLIO_MEASURES_SQL,
      apply: (rows) => {
        m.dailyLoss.reset();
        m.drawdown.reset();
        for (const row of rows) {
          // Never valued: no series, as trading_equity_usd.
          if (row['equity'] === null || row['equity'] === undefined) continue;
          const portfolio = text(row['portfolio_id']);
          const equity = num(row['equity']);
          const figure = (value: unknown): number | null =>
            value === null || value === undefined ? null : num(value);
          const { dailyLoss, drawdown } = riskMeasures({
            equity,
            openingEquity: figure(row['opening_equity']),
            highWaterMark: figure(row['high_water_mark']),
          });
          m.dailyLoss.set({ portfolio }, dailyLoss ?? 0);
          m.drawdown.set({ portfolio }, drawdown ?? 0);
        }
      },
    },
  ];
}

export class BusinessMetrics {
  private pool: pg.Pool | undefined;
  private readonly timeoutMs: number;
  /** The scrape in progress: every metric of one registry read waits for the same one. */
  private scrape: Promise<void> | undefined;
  /** The read in progress, which may outlive a scrape that timed out; never two at once. */
  private reading: Promise<void> | undefined;

  readonly strategies: Gauge<'status'>;
  readonly orders: Gauge<'status'>;
  readonly filledNotional: Counter<'side'>;
  readonly fills: Counter<'side'>;
  readonly pnl: Gauge<'portfolio' | 'kind'>;
  readonly equity: Gauge<'portfolio'>;
  readonly drawdown: Gauge<'portfolio'>;
  readonly valuedAt: Gauge<'portfolio'>;
  readonly openPositions: Gauge<'portfolio'>;
  readonly approvalsPending: Gauge<'kind'>;
  readonly tradingState: Gauge<'scope_type' | 'scope' | 'state'>;
  readonly temporaryStateUntil: Gauge<'scope_type' | 'scope' | 'state' | 'rule'>;
  readonly killSwitchEngaged: Gauge;
  readonly triggers: Counter<'rule'>;
  readonly ordersDenied: Counter<'code'>;
  readonly dailyLoss: Gauge<'portfolio'>;
  readonly errors: Counter<'query'>;

  private readonly families: Family[];

  constructor(registry: Registry, options: BusinessMetricsOptions = {}) {
    this.timeoutMs = Math.max(1, Math.round(options.timeoutMs ?? 3000));
    const registers = [registry];
    const collect = (): Promise<void> => this.collect();

    // Registered in this order, which is the order /metrics lists them in.
    const trading = tradingMetrics(registers, collect);
    const risk = riskMetrics(registers, collect);
    this.strategies = trading.strategies;
    this.orders = trading.orders;
    this.filledNotional = trading.filledNotional;
    this.fills = trading.fills;
    this.pnl = trading.pnl;
    this.equity = trading.equity;
    this.drawdown = trading.drawdown;
    this.valuedAt = trading.valuedAt;
    this.openPositions = trading.openPositions;
    this.approvalsPending = trading.approvalsPending;
    this.tradingState = risk.tradingState;
    this.temporaryStateUntil = risk.temporaryStateUntil;
    this.killSwitchEngaged = risk.killSwitchEngaged;
    this.triggers = risk.triggers;
    this.ordersDenied = risk.ordersDenied;
    this.dailyLoss = risk.dailyLoss;
    this.errors = new Counter({
      name: 'business_metrics_errors_total',
      help:
        'Reads of the read models for the business metrics that failed, by query (a family, ' +
        'connection or timeout); the family keeps its last values',
      labelNames: ['query'] as const,
      registers,
      collect,
    });

    this.families = [
      ...lifecycleFamilies(trading),
      ...bookFamilies(trading),
      ...riskFamilies({ ...trading, ...risk }),
    ];
  }

  /**
   * Reads `family` in every scrape, in the same snapshot as the others; answers the `collect`
   * its gauges use (monitoring/allocation-metrics.ts).
   */
  extend(family: MetricFamily): () => Promise<void> {
    this.families.push(family);
    return () => this.collect();
  }

  /** From now on, each scrape reads the read models through this pool. */
  attach(pool: pg.Pool): void {
    this.pool = pool;
  }

  private collect(): Promise<void> {
    const pool = this.pool;
    if (!pool) return Promise.resolve();
    this.scrape ??= this.boundedRead(pool).finally(() => {
      this.scrape = undefined;
    });
    return this.scrape;
  }

  /** Waits for a read at most `timeoutMs`; a slower read goes on and serves a later scrape. */
  private async boundedRead(pool: pg.Pool): Promise<void> {
    this.reading ??= this.read(pool).finally(() => {
      this.reading = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.reading.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(true);
        }, this.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (late) this.fail('timeout');
  }

  private fail(query: ErrorSource): void {
    this.errors.inc({ query });
  }

  /** Never rejects: failures are counted, and the families that failed keep their values. */
  private read(pool: pg.Pool): Promise<void> {
    return readFamilies(pool, this.timeoutMs, this.families, (source) => {
      this.fail(source);
    });
  }
}
