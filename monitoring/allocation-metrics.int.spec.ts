import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import type { Party } from '../core/approvals/approval.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { ENGINE_ACTOR, valuationStream } from '../core/engine/engine.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { portfolioStream } from '../core/portfolio/events.js';
import { portfolios, type PortfolioCommand } from '../core/portfolio/portfolio.js';
import { realizedVolatility } from '../projections/allocation-figures.js';
import { allocationsProjection } from '../projections/allocations.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { Metrics } from './metrics.js';

/**
 * The allocation metrics over a real PostgreSQL: a policy, two members and an allocation go
 * through the portfolio decider, valuations are appended as the engine writes them, the real
 * allocations read model keeps the figures, and a scrape reports target, actual weight, drift,
 * the drift band and both volatilities for them.
 */

const P = 'metrics-1h';
const DAY = 86_400_000;
const D0 = Date.UTC(2025, 2, 1);
const officer: Party = { id: 'apikey:risk', role: 'risk_officer' };

describe('allocation metrics', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let target: PostgresTarget;
  let metrics: Metrics;

  const project = async (): Promise<void> => {
    for (;;) {
      const events = await store.readAll({ after: await target.checkpoint(), maxCount: 500 });
      if (events.length === 0) return;
      await target.apply(events);
    }
  };
  const run = (command: PortfolioCommand) =>
    commands.handle(portfolios, portfolioStream(P), command, { actor: officer.id });
  /** The engine's valuation of day `i`: each strategy's net PnL and the equity. */
  const valued = (i: number, pnl: { s1: number; s2: number }) => {
    const position = (strategyId: string, realized: number) => ({
      strategyId,
      symbol: 'BTCUSDT',
      quantity: 0,
      averageEntryPrice: 0,
      markPrice: 100,
      unrealizedPnl: 0,
      realizedPnl: realized,
      feesPaid: 0,
    });
    const equity = 100_000 + pnl.s1 + pnl.s2;
    const data: JsonObject = {
      portfolioId: P,
      currency: 'USDT',
      time: D0 + i * DAY,
      cycle: i,
      cash: equity,
      equity,
      feesPaid: 0,
      realizedPnl: pnl.s1 + pnl.s2,
      unrealizedPnl: 0,
      positions: [position('s1', pnl.s1), position('s2', pnl.s2)],
    };
    return store.appendToStream(valuationStream(P), [
      { type: 'PortfolioValued', data, metadata: { actor: ENGINE_ACTOR } },
    ]);
  };
  const scrape = async (): Promise<Record<string, number>> => {
    const found: Record<string, number> = {};
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      if (!metric.name.startsWith('portfolio_') && metric.name !== 'business_metrics_errors_total')
        continue;
      for (const value of metric.values) {
        // Only the allocation families' errors: the other read models are not set up here.
        if (
          metric.name.startsWith('business') &&
          !String(value.labels['query']).startsWith('allocation')
        )
          continue;
        const labels = Object.entries(value.labels)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(',');
        found[`${metric.name}{${labels}}`] = value.value;
      }
    }
    return found;
  };

  beforeAll(async () => {
    database = await createTestDatabase('allocation_metrics');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    target = new PostgresTarget(store.pool, allocationsProjection);
    await target.ensure();
    metrics = new Metrics({ readModels: store.pool });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('reports target, actual and drift per member, the band and both volatilities', async () => {
    const at = new Date(D0).toISOString();
    await run({
      type: 'SetPolicy',
      portfolioId: P,
      policy: {
        method: 'equal_weight',
        constraints: { maxWeight: 0.4 },
        rebalance: { approvalThreshold: 1, driftBand: 0.05 },
      },
      by: officer,
      at,
    });
    for (const strategyId of ['s1', 's2'])
      await run({ type: 'AddMember', portfolioId: P, strategyId, by: officer, at });
    const equities: number[] = [];
    const days = [
      { s1: 0, s2: 0 },
      { s1: 800, s2: -300 },
      { s1: -400, s2: 200 },
      { s1: 1500, s2: 100 },
    ];
    for (const [i, pnl] of days.entries()) {
      await valued(i, pnl);
      equities.push(100_000 + pnl.s1 + pnl.s2);
    }
    await project();
    // Valued, no allocation yet: the realized volatility, no weights.
    let scraped = await scrape();
    expect(scraped).toEqual({
      [`portfolio_drift_band_ratio{portfolio=${P}}`]: 0.05,
      [`portfolio_volatility_ratio{kind=realized,portfolio=${P}}`]: realizedVolatility(equities),
    });

    // Applied at day 3's valuation, 30% each; expected volatility as the proposal says.
    const valuation = {
      equity: equities[3] ?? 0,
      pnl: days[3] ?? {},
      at: new Date(D0 + 3 * DAY).toISOString(),
    };
    await run({
      type: 'ProposeAllocation',
      portfolioId: P,
      proposalId: 'p1',
      trigger: { type: 'manual', detail: 'test', figures: {} },
      method: 'manual',
      weights: { s1: 0.3, s2: 0.3 },
      inputs: {
        estimationDays: 0,
        from: null,
        to: null,
        observations: 0,
        volatilities: null,
        covariance: null,
        shrinkage: null,
        expectedVolatility: 0.123,
        riskContributions: null,
        requestedTotal: 0.6,
      },
      valuation,
      by: officer,
      at: valuation.at,
    });
    await project();
    scraped = await scrape();
    expect(scraped[`portfolio_target_weight_ratio{portfolio=${P},strategy=s1}`]).toBe(0.3);
    expect(scraped[`portfolio_weight_drift_ratio{portfolio=${P},strategy=s1}`]).toBe(0);
    expect(scraped[`portfolio_volatility_ratio{kind=expected,portfolio=${P}}`]).toBe(0.123);

    // Day 4: s1 gains 10,500 more, s2 loses 1,000: s1 drifts beyond the band, s2 below target.
    await valued(4, { s1: 12_000, s2: -900 });
    equities.push(100_000 + 12_000 - 900);
    await project();
    scraped = await scrape();
    const equity = equities[4] ?? 0;
    const s1 = (0.3 * (equities[3] ?? 0) + 10_500) / equity;
    const s2 = (0.3 * (equities[3] ?? 0) - 1000) / equity;
    expect(scraped[`portfolio_actual_weight_ratio{portfolio=${P},strategy=s1}`]).toBeCloseTo(
      s1,
      12,
    );
    expect(scraped[`portfolio_weight_drift_ratio{portfolio=${P},strategy=s1}`]).toBeCloseTo(
      s1 - 0.3,
      12,
    );
    expect(s1 - 0.3).toBeGreaterThan(0.05);
    expect(scraped[`portfolio_weight_drift_ratio{portfolio=${P},strategy=s2}`]).toBeCloseTo(
      s2 - 0.3,
      12,
    );
    expect(scraped[`portfolio_volatility_ratio{kind=realized,portfolio=${P}}`]).toBeCloseTo(
      realizedVolatility(equities) ?? NaN,
      12,
    );
    expect(Object.keys(scraped).filter((k) => k.startsWith('business_metrics_errors'))).toEqual([]);

    // s2 leaves: no series for it any more.
    await run({
      type: 'RemoveMember',
      portfolioId: P,
      strategyId: 's2',
      reason: 'test',
      by: officer,
      at,
    });
    await project();
    scraped = await scrape();
    expect(
      Object.keys(scraped).filter((k) => k.startsWith('portfolio_target_weight_ratio')),
    ).toEqual([`portfolio_target_weight_ratio{portfolio=${P},strategy=s1}`]);
  });

  it('the realized volatility is the annualized deviation of daily returns, unknown under three', () => {
    expect(realizedVolatility([100, 101, 102])).toBeNull();
    const value = realizedVolatility([100, 110, 99, 108.9]);
    // Returns +10%, -10%, +10%: sample deviation 0.11547, × √365.
    expect(value).toBeCloseTo(0.1154700538 * Math.sqrt(365), 8);
  });
});
