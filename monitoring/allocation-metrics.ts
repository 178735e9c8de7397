import { Gauge, type Registry } from 'prom-client';
import type { BusinessMetrics } from './business-metrics.js';

/**
 * Allocation metrics (docs/portfolio.md, docs/metrics.md): per member strategy its target weight,
 * actual weight and drift; per portfolio the drift band of its policy and the expected (the
 * allocation's) and realized (daily equity, 30 days) annualized volatility. Read in the business
 * metrics' scrape from the figures the allocations read model keeps (projections/
 * allocation-figures.ts): one row per member and per portfolio, never the daily history.
 */
export class AllocationMetrics {
  readonly targetWeight: Gauge<'portfolio' | 'strategy'>;
  readonly actualWeight: Gauge<'portfolio' | 'strategy'>;
  readonly drift: Gauge<'portfolio' | 'strategy'>;
  readonly driftBand: Gauge<'portfolio'>;
  readonly volatility: Gauge<'portfolio' | 'kind'>;

  constructor(registry: Registry, business: BusinessMetrics) {
    const registers = [registry];
    const members = ['portfolio', 'strategy'] as const;
    let collect: () => Promise<void> = () => Promise.resolve();
    const scrape = (): Promise<void> => collect();
    this.targetWeight = new Gauge({
      name: 'portfolio_target_weight_ratio',
      help: 'Weight of a member strategy in the allocation in force (fraction of equity)',
      labelNames: members,
      registers,
      collect: scrape,
    });
    this.actualWeight = new Gauge({
      name: 'portfolio_actual_weight_ratio',
      help: 'Share of equity a member holds now: its capital at the allocation plus its PnL since, over equity now',
      labelNames: members,
      registers,
      collect: scrape,
    });
    this.drift = new Gauge({
      name: 'portfolio_weight_drift_ratio',
      help: 'Actual minus target weight of a member (0.05 = 5 percentage points)',
      labelNames: members,
      registers,
      collect: scrape,
    });
    this.driftBand = new Gauge({
      name: 'portfolio_drift_band_ratio',
      help: "The policy's drift band (rebalance.driftBand); no series while the drift trigger is off",
      labelNames: ['portfolio'] as const,
      registers,
      collect: scrape,
    });
    this.volatility = new Gauge({
      name: 'portfolio_volatility_ratio',
      help: 'Annualized volatility of a portfolio by kind: expected (of the allocation in force, from its covariance) or realized (daily equity returns over the last 30 days, 365 a year)',
      labelNames: ['portfolio', 'kind'] as const,
      registers,
      collect: scrape,
    });

    const num = (value: unknown): number | null =>
      value === null || value === undefined ? null : Number(value);
    collect = business.extend({
      name: 'allocation_weights',
      sql: 'SELECT portfolio_id, strategy_id, target, actual, drift FROM qcat_read.allocation_figures',
      apply: (rows) => {
        for (const gauge of [this.targetWeight, this.actualWeight, this.drift]) gauge.reset();
        for (const row of rows) {
          const labels = {
            portfolio: String(row['portfolio_id']),
            strategy: String(row['strategy_id']),
          };
          this.targetWeight.set(labels, num(row['target']) ?? 0);
          this.actualWeight.set(labels, num(row['actual']) ?? 0);
          this.drift.set(labels, num(row['drift']) ?? 0);
        }
      },
    });
    business.extend({
      name: 'allocation_portfolios',
      sql: `SELECT portfolio_id, drift_band, expected_volatility, realized_volatility
              FROM qcat_read.allocation_portfolio_figures`,
      apply: (rows) => {
        this.driftBand.reset();
        this.volatility.reset();
        for (const row of rows) {
          const portfolio = String(row['portfolio_id']);
          const band = num(row['drift_band']);
          if (band !== null) this.driftBand.set({ portfolio }, band);
          // Unknown (no allocation, fewer than 3 daily returns): no series rather than a false 0.
          const expected = num(row['expected_volatility']);
          if (expected !== null) this.volatility.set({ portfolio, kind: 'expected' }, expected);
          const realized = num(row['realized_volatility']);
          if (realized !== null) this.volatility.set({ portfolio, kind: 'realized' }, realized);
        }
      },
    });
  }
}
