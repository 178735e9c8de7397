import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import { approvalStream, approvals, type Party } from '../core/approvals/approval.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { valuationStream } from '../core/engine/engine.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import {
  DAY_MS,
  evaluateDailyLoss,
  evaluateDrawdown,
  triggerIdOf,
  type DailyLossTracker,
  type DrawdownTracker,
} from '../core/risk/breakers.js';
import { dailyLossOf, drawdownOf, riskMeasures } from '../core/risk/measures.js';
import { RiskQueries } from '../projections/risk-queries.js';
import { DENIAL_CODES } from '../core/risk/checks.js';
import { KILL_SWITCH_STREAM, tradingStateStream, type RiskScope } from '../core/risk/common.js';
import { killSwitch } from '../core/risk/kill-switch.js';
import {
  tradingStates,
  type RiskRule,
  type RiskTriggerFiredData,
  type TriggerAction,
} from '../core/risk/trading-state.js';
import { strategies, strategyStream } from '../core/strategies/strategy.js';
import { accountStream, positionStream } from '../core/trading/accounting.js';
import { orderStream, orders, type OrderRequest } from '../core/trading/orders.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { allocationsProjection } from '../projections/allocations.js';
import { riskProjection } from '../projections/risk.js';
import { approvalsProjection, strategiesProjection } from '../projections/strategies.js';
import { tradingProjection } from '../projections/trading.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { BusinessMetrics } from './business-metrics.js';
import { Metrics } from './metrics.js';

/**
 * The business metrics over a real PostgreSQL: strategies, approvals and orders go through their
 * deciders, accounting and valuation events are appended as the engine writes them, the real
 * projections build qcat_read, and the values a scrape reports are checked one by one. Then what
 * happens when a read model is missing or the database does not answer in time. The risk metrics
 * (second part) come from the risk deciders' events through the real risk projection.
 */

const actor = 'test:business-metrics';
const trader: Party = { id: 'apikey:trader', role: 'trader' };
const officer: Party = { id: 'apikey:risk', role: 'risk_officer' };
const T0 = Date.UTC(2025, 0, 6, 12, 0);

type Labels = Record<string, string>;
type Scraped = Map<string, { labels: Labels; value: number }[]>;

/** One scrape of a registry: name → series (labels and value). */
const scrapeOf = async (registry: Registry): Promise<Scraped> => {
  const found: Scraped = new Map();
  for (const metric of await registry.getMetricsAsJSON()) {
    found.set(
      metric.name,
      metric.values.map((v) => ({ labels: v.labels as Labels, value: v.value })),
    );
  }
  return found;
};

/** The series of a metric as `label=value,... → value`, sorted. */
const series = (scraped: Scraped, name: string): Record<string, number> => {
  const values = scraped.get(name);
  if (!values) throw new Error(`${name} is not in the registry`);
  return Object.fromEntries(
    values
      .map((v): [string, number] => [
        Object.entries(v.labels)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, l]) => `${k}=${l}`)
          .join(','),
        v.value,
      ])
      .sort(([a], [b]) => a.localeCompare(b)),
  );
};

describe('business metrics from the read models', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let metrics: Metrics;
  const targets: PostgresTarget[] = [];

  /** Runs the projections up to the head of the log. */
  const project = async (): Promise<void> => {
    for (const target of targets) {
      for (;;) {
        const events = await store.readAll({ after: await target.checkpoint(), maxCount: 500 });
        if (events.length === 0) break;
        await target.apply(events);
      }
    }
  };

  /** One scrape: name → series (labels and value). */
  const scrape = (registry = metrics.registry): Promise<Scraped> => scrapeOf(registry);

  const strategy = async (id: string, steps: string[]): Promise<void> => {
    const run = (command: JsonObject & { type: string }) =>
      commands.handle(strategies, strategyStream(id), command as never, { actor });
    await run({
      type: 'CreateStrategy',
      strategyId: id,
      owner: trader,
      name: `strategy ${id}`,
      description: '',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1m',
      parameters: { fastPeriod: 5, slowPeriod: 20 },
      capitalRequest: 10_000,
    });
    for (const step of steps) {
      const requestId = `${id}-${step}`;
      if (step === 'submit')
        await run({ type: 'SubmitForReview', strategyId: id, requestId: `${id}-act`, by: trader });
      else if (step === 'approve')
        await run({
          type: 'ApproveActivation',
          strategyId: id,
          requestId: `${id}-act`,
          approvers: [officer],
        });
      else if (step === 'paper') await run({ type: 'StartPaperTrading', strategyId: id });
      else if (step === 'live') {
        await run({ type: 'RequestPromotion', strategyId: id, requestId, by: trader });
        await run({ type: 'PromoteToLive', strategyId: id, requestId, approvers: [officer] });
      } else if (step === 'pause')
        await run({ type: 'PauseStrategy', strategyId: id, reason: 'test' });
      else if (step === 'retire')
        await run({ type: 'RetireStrategy', strategyId: id, reason: 'test' });
      else throw new Error(`unknown step ${step}`);
    }
  };

  const approval = async (kind: string, reject = false): Promise<void> => {
    const requestId = randomUUID();
    const now = new Date(T0).toISOString();
    const run = (command: JsonObject & { type: string }) =>
      commands.handle(approvals, approvalStream(requestId), command as never, { actor });
    await run({
      type: 'RequestApproval',
      requestId,
      kind,
      subject: { type: 'strategy', id: 's-x' },
      requester: trader,
      payload: {},
      reason: 'test',
      now,
    });
    if (reject) await run({ type: 'RejectApproval', requestId, by: officer, reason: 'no', now });
  };

  const order = async (
    id: string,
    request: Partial<OrderRequest>,
    steps: (JsonObject & { type: string })[],
  ): Promise<void> => {
    const full: OrderRequest = {
      clientOrderId: id,
      portfolioId: 'paper-1m',
      strategyId: 's-paper',
      symbol: 'BTCUSDT',
      side: 'buy',
      type: 'market',
      quantity: 1,
      limitPrice: null,
      stopPrice: null,
      reduceOnly: false,
      ...request,
    };
    const run = (command: JsonObject & { type: string }) =>
      commands.handle(orders, orderStream(id), command as never, { actor });
    await run({ type: 'SubmitOrder', order: full, time: T0 });
    for (const step of steps) await run({ clientOrderId: id, time: T0 + 60_000, ...step });
  };
  const accept = (quantity: number): JsonObject & { type: string } => ({
    type: 'AcceptOrder',
    venueOrderId: randomUUID(),
    quantity,
    limitPrice: null,
    stopPrice: null,
  });
  const fill = (
    clientOrderId: string,
    n: number,
    price: number,
    quantity: number,
  ): JsonObject & { type: string } => ({
    type: 'RecordFill',
    fill: {
      fillId: `${clientOrderId}#${n}`,
      price,
      quantity,
      fee: (price * quantity * 5) / 10_000,
      feeCurrency: 'USDT',
      liquidity: 'taker',
      slippage: 0,
    },
  });

  const append = async (streamId: string, type: string, data: JsonObject): Promise<void> => {
    await store.appendToStream(streamId, [
      {
        type,
        data,
        metadata: { actor, correlationId: randomUUID(), causationId: randomUUID() },
      },
    ]);
  };
  const positionChanged = (
    portfolioId: string,
    strategyId: string,
    symbol: string,
    fill: { clientOrderId: string; n: number; side: string; quantity: number; price: number },
    after: { quantity: number; averageEntryPrice: number; realizedPnlChange: number },
  ): Promise<void> =>
    append(positionStream(portfolioId, strategyId, symbol), 'PositionChanged', {
      portfolioId,
      clientOrderId: fill.clientOrderId,
      fillId: `${fill.clientOrderId}#${fill.n}`,
      time: T0 + 60_000,
      strategyId,
      symbol,
      side: fill.side,
      fillQuantity: fill.quantity,
      fillPrice: fill.price,
      fee: 0,
      quantity: after.quantity,
      averageEntryPrice: after.averageEntryPrice,
      realizedPnlChange: after.realizedPnlChange,
      realizedPnl: after.realizedPnlChange,
      feesPaid: 0,
    });
  const valued = (
    portfolioId: string,
    cycle: number,
    equity: number,
    pnl: { realized: number; unrealized: number; fees: number },
  ): Promise<void> =>
    append(valuationStream(portfolioId), 'PortfolioValued', {
      portfolioId,
      currency: 'USDT',
      time: T0 + cycle * 60_000,
      cycle,
      cash: equity - 50_000,
      equity,
      feesPaid: pnl.fees,
      realizedPnl: pnl.realized,
      unrealizedPnl: pnl.unrealized,
      positions: [],
    });

  beforeAll(async () => {
    database = await createTestDatabase('business_metrics');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    for (const projection of [
      strategiesProjection,
      approvalsProjection,
      tradingProjection,
      riskProjection,
      allocationsProjection,
    ]) {
      const target = new PostgresTarget(store.pool, projection);
      await target.ensure();
      targets.push(target);
    }
    metrics = new Metrics({ readModels: store.pool });

    // Strategies: one in each status but approved.
    await strategy('s-draft', []);
    await strategy('s-review', ['submit']);
    await strategy('s-paper', ['submit', 'approve', 'paper']);
    await strategy('s-live', ['submit', 'approve', 'paper', 'live']);
    await strategy('s-paused', ['submit', 'approve', 'paper', 'pause']);
    await strategy('s-retired', ['retire']);
    // Approvals: two pending, one decided.
    await approval('strategy_activation');
    await approval('parameter_change');
    await approval('mode_change', true);

    // Orders of paper-1m, one in each status.
    await order('o-filled', { quantity: 2 }, [accept(2), fill('o-filled', 1, 30_000, 2)]);
    await order('o-partial', { side: 'sell', quantity: 1 }, [
      accept(1),
      fill('o-partial', 1, 31_000, 0.5),
    ]);
    await order('o-denied', {}, [{ type: 'DenyOrder', reason: 'MAX_NOTIONAL: notional=1' }]);
    await order('o-cancelled', {}, [accept(1), { type: 'CancelOrder', reason: 'TARGET_CHANGED' }]);
    await order('o-rejected', {}, [{ type: 'RejectOrder', reason: 'MIN_NOTIONAL: notional=1' }]);
    await order('o-accepted', {}, [accept(1)]);
    await order('o-submitted', {}, []);

    // Positions: BTC bought 2, half of a sell filled (realized 500); ETH opened and closed.
    const btc = { quantity: 2, averageEntryPrice: 30_000 };
    await positionChanged(
      'paper-1m',
      's-paper',
      'BTCUSDT',
      { clientOrderId: 'o-filled', n: 1, side: 'buy', quantity: 2, price: 30_000 },
      { ...btc, realizedPnlChange: 0 },
    );
    await positionChanged(
      'paper-1m',
      's-paper',
      'BTCUSDT',
      { clientOrderId: 'o-partial', n: 1, side: 'sell', quantity: 0.5, price: 31_000 },
      { quantity: 1.5, averageEntryPrice: 30_000, realizedPnlChange: 500 },
    );
    await positionChanged(
      'paper-1m',
      's-live',
      'ETHUSDT',
      { clientOrderId: 'e-1', n: 1, side: 'buy', quantity: 1, price: 2000 },
      { quantity: 0, averageEntryPrice: 0, realizedPnlChange: 0 },
    );
    // paper-1m was worth 110000 at its best, 99000 now: a 10% drawdown.
    await valued('paper-1m', 1, 110_000, { realized: 0, unrealized: 10_000, fees: 30 });
    await valued('paper-1m', 2, 99_000, { realized: 500, unrealized: -1_500, fees: 37.75 });
    // paper-1h has paid a fee and never been valued: no equity yet.
    await append(accountStream('paper-1h'), 'CashBalanceChanged', {
      portfolioId: 'paper-1h',
      clientOrderId: 'h-1',
      fillId: 'h-1#1',
      time: T0,
      currency: 'USDT',
      change: -1_000.5,
      fee: 0.5,
      balance: 98_999.5,
    });
    await project();
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('counts strategies by status, every status present', async () => {
    expect(series(await scrape(), 'trading_strategies')).toEqual({
      'status=approved': 0,
      'status=draft': 1,
      'status=in_review': 1,
      'status=live': 1,
      'status=paper': 1,
      'status=paused': 1,
      'status=retired': 1,
    });
  });

  it('counts pending approvals by kind, every kind present', async () => {
    expect(series(await scrape(), 'approvals_pending')).toEqual({
      'kind=allocation_change': 0,
      'kind=mode_change': 0,
      'kind=parameter_change': 1,
      'kind=risk_limit_change': 0,
      'kind=risk_reset': 0,
      'kind=standing_approval': 0,
      'kind=strategy_activation': 1,
      'kind=strategy_retirement': 0,
    });
  });

  it('counts orders by status, and fills and their notional by side', async () => {
    const scraped = await scrape();
    expect(series(scraped, 'trading_orders')).toEqual({
      'status=accepted': 1,
      'status=cancelled': 1,
      'status=denied': 1,
      'status=filled': 1,
      'status=partially_filled': 1,
      'status=rejected': 1,
      'status=submitted': 1,
    });
    expect(series(scraped, 'trading_fills_total')).toEqual({ 'side=buy': 1, 'side=sell': 1 });
    expect(series(scraped, 'trading_filled_notional_usd_total')).toEqual({
      'side=buy': 60_000,
      'side=sell': 15_500,
    });
  });

  it('reports PnL, equity, drawdown, valuation time and open positions per portfolio', async () => {
    const scraped = await scrape();
    expect(series(scraped, 'trading_pnl_usd')).toEqual({
      'kind=fees,portfolio=paper-1h': -0.5,
      'kind=fees,portfolio=paper-1m': -37.75,
      'kind=realized,portfolio=paper-1h': 0,
      'kind=realized,portfolio=paper-1m': 500,
      'kind=unrealized,portfolio=paper-1h': 0,
      'kind=unrealized,portfolio=paper-1m': -1_500,
    });
    // Never valued: no equity, no drawdown (rather than a false 0 equity).
    expect(series(scraped, 'trading_equity_usd')).toEqual({ 'portfolio=paper-1m': 99_000 });
    const drawdown = series(scraped, 'trading_drawdown_ratio');
    expect(Object.keys(drawdown)).toEqual(['portfolio=paper-1m']);
    expect(drawdown['portfolio=paper-1m']).toBeCloseTo(0.1, 12);
    expect(series(scraped, 'trading_portfolio_valuation_timestamp_seconds')).toEqual({
      'portfolio=paper-1m': (T0 + 2 * 60_000) / 1000,
    });
    // BTC is open, ETH was closed.
    expect(series(scraped, 'trading_open_positions')).toEqual({ 'portfolio=paper-1m': 1 });
    expect(series(scraped, 'business_metrics_errors_total')).toEqual({});
  });

  it('shows the exposition Prometheus reads, with types and units', async () => {
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE trading_strategies gauge');
    expect(text).toContain('# TYPE trading_filled_notional_usd_total counter');
    expect(text).toContain('trading_filled_notional_usd_total{side="buy"} 60000');
    expect(text).toContain('trading_equity_usd{portfolio="paper-1m"} 99000');
    expect(text).toContain('approvals_pending{kind="strategy_activation"} 1');
  });

  it('follows the read models from one scrape to the next', async () => {
    await strategy('s-draft-2', []);
    await order('o-late', { side: 'sell', quantity: 1 }, [accept(1), fill('o-late', 1, 32_000, 1)]);
    await valued('paper-1m', 3, 121_000, { realized: 2500, unrealized: 0, fees: 53.75 });
    await project();
    const scraped = await scrape();
    expect(series(scraped, 'trading_strategies')['status=draft']).toBe(2);
    expect(series(scraped, 'trading_orders')['status=filled']).toBe(2);
    expect(series(scraped, 'trading_filled_notional_usd_total')['side=sell']).toBe(47_500);
    // A new high: no drawdown.
    expect(series(scraped, 'trading_drawdown_ratio')).toEqual({ 'portfolio=paper-1m': 0 });
    expect(series(scraped, 'trading_equity_usd')).toEqual({ 'portfolio=paper-1m': 121_000 });
  });

  it('keeps the last values of a family whose read model is missing, counts the error, and reads the others', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const before = series(await scrape(), 'trading_orders');
      await admin.query('ALTER VIEW qcat_read.orders RENAME TO orders_elsewhere');
      await strategy('s-draft-3', []);
      await valued('paper-1m', 4, 115_000, { realized: 2500, unrealized: -6_000, fees: 53.75 });
      await project();
      const scraped = await scrape();
      expect(series(scraped, 'trading_orders')).toEqual(before);
      expect(series(scraped, 'business_metrics_errors_total')).toEqual({ 'query=orders': 1 });
      // The families before and after it in the same transaction are still read, and fresh.
      expect(series(scraped, 'trading_strategies')['status=draft']).toBe(3);
      expect(series(scraped, 'trading_equity_usd')).toEqual({ 'portfolio=paper-1m': 115_000 });
      expect(series(scraped, 'trading_drawdown_ratio')['portfolio=paper-1m']).toBeCloseTo(
        1 - 115 / 121,
        12,
      );
      await admin.query('ALTER VIEW qcat_read.orders_elsewhere RENAME TO orders');
      const again = await scrape();
      expect(series(again, 'trading_orders')).toEqual(before);
      expect(series(again, 'business_metrics_errors_total')).toEqual({ 'query=orders': 1 });
    } finally {
      await admin.query('ALTER VIEW IF EXISTS qcat_read.orders_elsewhere RENAME TO orders');
      await admin.end();
    }
  });

  it('answers within its timeout with the last values when the database is busy', async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    const registry = new Registry();
    // A short timeout for the test; the default is 3 s.
    new BusinessMetrics(registry, { timeoutMs: 200 }).attach(pool);
    const draftsOf = async () => series(await scrape(registry), 'trading_strategies');
    try {
      // Under a loaded machine a first read may itself exceed 200 ms: wait for a fresh one, and
      // count timeouts from there.
      await expect.poll(async () => (await draftsOf())['status=draft'], { timeout: 5_000 }).toBe(3);
      const fresh = await draftsOf();
      const timeouts = async (scraped?: Scraped) =>
        series(scraped ?? (await scrape(registry)), 'business_metrics_errors_total')[
          'query=timeout'
        ] ?? 0;
      const timeoutsBefore = await timeouts();
      // The pool's only connection is taken: the read waits for it.
      const held = await pool.connect();
      let released = false;
      try {
        await strategy('s-draft-4', []);
        await project();
        // Held for good, the read would never end: the scrape answering at all is the timeout.
        const stale = await scrape(registry);
        expect(series(stale, 'trading_strategies')).toEqual(fresh);
        expect(await timeouts(stale)).toBe(timeoutsBefore + 1);
        held.release();
        released = true;
        // The read that was waiting finishes and the next scrape is fresh.
        await expect
          .poll(async () => (await draftsOf())['status=draft'], { timeout: 5_000 })
          .toBe(4);
      } finally {
        if (!released) held.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('counts a database it cannot reach, and /metrics still answers', async () => {
    const url = new URL(database.url);
    url.pathname = `/qcat_no_such_database_${randomUUID().slice(0, 8)}`;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 1 });
    pool.on('error', () => undefined);
    const unreachable = new Metrics({ readModels: pool });
    try {
      const text = await unreachable.registry.metrics();
      expect(text).toContain('business_metrics_errors_total{query="connection"} 1');
      expect(text).toContain('# TYPE trading_strategies gauge');
      expect(text).toContain('process_cpu_seconds_total');
    } finally {
      await pool.end();
    }
  });

  it('without a database (a CLI process), exposes the metric names and no values', async () => {
    const text = await new Metrics().registry.metrics();
    expect(text).toContain('# TYPE trading_drawdown_ratio gauge');
    expect(text).not.toMatch(/^trading_drawdown_ratio\{/m);
  });
});

describe('risk metrics from the risk read model', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let metrics: Metrics;
  const targets: PostgresTarget[] = [];
  /** 00:00 UTC today: the daily loss is measured from the last valuation before it. */
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;

  const project = async (): Promise<void> => {
    for (const target of targets) {
      for (;;) {
        const events = await store.readAll({ after: await target.checkpoint(), maxCount: 500 });
        if (events.length === 0) break;
        await target.apply(events);
      }
    }
  };
  const scrape = (): Promise<Scraped> => scrapeOf(metrics.registry);

  const append = async (streamId: string, type: string, data: JsonObject): Promise<void> => {
    await store.appendToStream(streamId, [
      {
        type,
        data,
        metadata: { actor, correlationId: randomUUID(), causationId: randomUUID() },
      },
    ]);
  };
  const valued = (portfolioId: string, time: number, equity: number): Promise<void> =>
    append(valuationStream(portfolioId), 'PortfolioValued', {
      portfolioId,
      currency: 'USDT',
      time,
      cycle: Math.floor(time / 60_000),
      cash: equity,
      equity,
      feesPaid: 0,
      realizedPnl: 0,
      unrealizedPnl: 0,
      positions: [],
    });

  /** A breaker's trigger, recorded as the engine records it (FireTrigger on the scope's stream). */
  const fire = async (
    rule: RiskRule,
    scope: RiskScope,
    action: TriggerAction,
    time: number,
    until: number | null,
  ): Promise<void> => {
    const trigger: RiskTriggerFiredData = {
      triggerId: triggerIdOf(rule, scope, time),
      rule,
      scopeType: scope.type,
      scopeId: scope.id,
      threshold: 0.05,
      observed: 0.06,
      reference: 100_000,
      value: 94_000,
      window: { from: time - 60_000, to: time },
      action,
      until,
      time,
    };
    await commands.handle(
      tradingStates,
      tradingStateStream(scope),
      { type: 'FireTrigger', trigger } as never,
      { actor: 'system:paper-engine' },
    );
  };
  const deny = async (id: string, reason: string): Promise<void> => {
    const run = (command: JsonObject & { type: string }) =>
      commands.handle(orders, orderStream(id), command as never, { actor });
    await run({
      type: 'SubmitOrder',
      order: {
        clientOrderId: id,
        portfolioId: 'paper-1m',
        strategyId: 's-1',
        symbol: 'BTCUSDT',
        side: 'buy',
        type: 'market',
        quantity: 1,
        limitPrice: null,
        stopPrice: null,
        reduceOnly: false,
      },
      time: today,
    });
    await run({ type: 'DenyOrder', clientOrderId: id, reason, time: today });
  };
  const killSwitchCommand = (command: JsonObject & { type: string }) =>
    commands.handle(killSwitch, KILL_SWITCH_STREAM, command as never, { actor });

  beforeAll(async () => {
    database = await createTestDatabase('business_metrics_risk');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    for (const projection of [
      strategiesProjection,
      approvalsProjection,
      tradingProjection,
      riskProjection,
      allocationsProjection,
    ]) {
      const target = new PostgresTarget(store.pool, projection);
      await target.ensure();
      targets.push(target);
    }
    metrics = new Metrics({ readModels: store.pool });
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('on an empty read model: every rule and denial code at 0, the kill switch released, no states', async () => {
    const scraped = await scrape();
    expect(series(scraped, 'risk_triggers_total')).toEqual({
      'rule=daily_loss': 0,
      'rule=portfolio_drawdown': 0,
      'rule=price_breaker': 0,
      'rule=strategy_drawdown': 0,
    });
    expect(series(scraped, 'risk_orders_denied_total')).toEqual(
      Object.fromEntries(DENIAL_CODES.map((code) => [`code=${code}`, 0])),
    );
    expect(series(scraped, 'risk_kill_switch_engaged')).toEqual({ '': 0 });
    expect(series(scraped, 'risk_trading_state')).toEqual({});
    expect(series(scraped, 'risk_temporary_state_until_timestamp_seconds')).toEqual({});
    expect(series(scraped, 'risk_daily_loss_ratio')).toEqual({});
    expect(series(scraped, 'business_metrics_errors_total')).toEqual({});
  });

  it('reports trading states one-hot, temporary states, triggers by rule and denials by code', async () => {
    const time = today + 5 * 60_000;
    const tomorrow = today + DAY_MS;
    // The portfolio drawdown breaker flattens paper-1m: HALTED until reset.
    await fire('portfolio_drawdown', { type: 'portfolio', id: 'paper-1m' }, 'FLATTEN', time, null);
    // The daily-loss breaker holds paper-5m REDUCING until 00:00 UTC.
    await fire('daily_loss', { type: 'portfolio', id: 'paper-5m' }, 'REDUCING', time, tomorrow);
    // A price breaker halts BTCUSDT for an hour.
    await fire(
      'price_breaker',
      { type: 'symbol', id: 'BTCUSDT' },
      'HALTED',
      time,
      time + 3_600_000,
    );
    // A risk officer moves a strategy to REDUCING.
    await commands.handle(
      tradingStates,
      tradingStateStream({ type: 'strategy', id: 's-1' }),
      {
        type: 'MoveTradingState',
        scope: { type: 'strategy', id: 's-1' },
        to: 'REDUCING',
        by: officer,
        reason: 'review',
        time,
      } as never,
      { actor },
    );
    await deny('d-1', 'TRADING_HALTED: scope=portfolio:paper-1m');
    await deny('d-2', 'KILL_SWITCH_ENGAGED: since=1');
    await deny('d-3', 'KILL_SWITCH_ENGAGED: since=1');
    await project();

    const scraped = await scrape();
    expect(series(scraped, 'risk_trading_state')).toEqual({
      'scope=BTCUSDT,scope_type=symbol,state=ACTIVE': 1,
      'scope=BTCUSDT,scope_type=symbol,state=HALTED': 0,
      'scope=BTCUSDT,scope_type=symbol,state=REDUCING': 0,
      'scope=paper-1m,scope_type=portfolio,state=ACTIVE': 0,
      'scope=paper-1m,scope_type=portfolio,state=HALTED': 1,
      'scope=paper-1m,scope_type=portfolio,state=REDUCING': 0,
      'scope=paper-5m,scope_type=portfolio,state=ACTIVE': 1,
      'scope=paper-5m,scope_type=portfolio,state=HALTED': 0,
      'scope=paper-5m,scope_type=portfolio,state=REDUCING': 0,
      'scope=s-1,scope_type=strategy,state=ACTIVE': 0,
      'scope=s-1,scope_type=strategy,state=HALTED': 0,
      'scope=s-1,scope_type=strategy,state=REDUCING': 1,
    });
    // The temporary states over the base, with the rule of the trigger that set them.
    expect(series(scraped, 'risk_temporary_state_until_timestamp_seconds')).toEqual({
      'rule=daily_loss,scope=paper-5m,scope_type=portfolio,state=REDUCING': tomorrow / 1000,
      'rule=price_breaker,scope=BTCUSDT,scope_type=symbol,state=HALTED': (time + 3_600_000) / 1000,
    });
    expect(series(scraped, 'risk_triggers_total')).toEqual({
      'rule=daily_loss': 1,
      'rule=portfolio_drawdown': 1,
      'rule=price_breaker': 1,
      'rule=strategy_drawdown': 0,
    });
    expect(series(scraped, 'risk_orders_denied_total')).toEqual({
      ...Object.fromEntries(DENIAL_CODES.map((code) => [`code=${code}`, 0])),
      'code=KILL_SWITCH_ENGAGED': 2,
      'code=TRADING_HALTED': 1,
    });
    expect(series(scraped, 'business_metrics_errors_total')).toEqual({});
  });

  it('follows the kill switch: engaged, escalated, released by an approved reset', async () => {
    await killSwitchCommand({
      type: 'EngageKillSwitch',
      by: officer,
      reason: 'exchange outage',
      flatten: false,
      time: today,
    });
    await project();
    expect(series(await scrape(), 'risk_kill_switch_engaged')).toEqual({ '': 1 });
    await killSwitchCommand({
      type: 'EngageKillSwitch',
      by: officer,
      reason: 'flatten everything',
      flatten: true,
      time: today + 1,
    });
    await project();
    expect(series(await scrape(), 'risk_kill_switch_engaged')).toEqual({ '': 1 });
    expect(await metrics.registry.metrics()).toMatch(/^risk_kill_switch_engaged 1$/m);
    await killSwitchCommand({
      type: 'ReleaseKillSwitch',
      requestId: randomUUID(),
      approvers: [officer],
      time: today + 2,
    });
    await project();
    expect(series(await scrape(), 'risk_kill_switch_engaged')).toEqual({ '': 0 });
  });

  it('measures the daily loss from the last valuation before the UTC day of the last valuation', async () => {
    // paper-5m: 100000 at the close of yesterday (an earlier 90000 does not count), then a gain
    // and a fall to 94000 today: 6% lost.
    await valued('paper-5m', today - 3_600_000, 90_000);
    await valued('paper-5m', today - 60_000, 100_000);
    await valued('paper-5m', today + 60_000, 103_000);
    await valued('paper-5m', today + 120_000, 94_000);
    // paper-1m: first valued today (its opening equity is its first valuation), and up.
    await valued('paper-1m', today + 60_000, 50_000);
    await valued('paper-1m', today + 120_000, 55_000);
    // paper-1h: down 20% yesterday and not valued since: the day is its last valuation's, as the
    // breaker and the risk API measure it (ADR 025), so yesterday's loss stands until it is valued.
    await valued('paper-1h', today - 2 * DAY_MS, 100_000);
    await valued('paper-1h', today - DAY_MS, 80_000);
    await project();
    const loss = series(await scrape(), 'risk_daily_loss_ratio');
    expect(Object.keys(loss)).toEqual([
      'portfolio=paper-1h',
      'portfolio=paper-1m',
      'portfolio=paper-5m',
    ]);
    expect(loss['portfolio=paper-1h']).toBeCloseTo(0.2, 12);
    expect(loss['portfolio=paper-1m']).toBe(0);
    expect(loss['portfolio=paper-5m']).toBeCloseTo(0.06, 12);
  });

  it('reports the daily loss and drawdown the breakers measure, and the risk API, after an approved reset', async () => {
    const portfolio = 'paper-4h';
    const scope: RiskScope = { type: 'portfolio', id: portfolio };
    const H = 3_600_000;
    const resetAt = today + 2.5 * H;
    // Yesterday's close 100000; down to 95000; a reset at 02:30; then 94000, 97000, 93120.
    const points: [number, number][] = [
      [today - 60_000, 100_000],
      [today + H, 96_000],
      [today + 2 * H, 95_000],
      [today + 3 * H, 94_000],
      [today + 4 * H, 97_000],
      [today + 5 * H, 93_120],
    ];
    for (const [time, equity] of points) await valued(portfolio, time, equity);
    await commands.handle(
      tradingStates,
      tradingStateStream(scope),
      { type: 'MoveTradingState', scope, to: 'REDUCING', by: officer, reason: 'test', time: today },
      { actor },
    );
    await commands.handle(
      tradingStates,
      tradingStateStream(scope),
      {
        type: 'ResetTradingState',
        scope,
        requestId: randomUUID(),
        approvers: [officer],
        time: resetAt,
      } as never,
      { actor: 'system:approval-flow' },
    );
    await project();

    // The engine: the breakers' trackers over the same valuations, the reset seen from 03:00 on.
    let drawdown: DrawdownTracker | undefined;
    let daily: DailyLossTracker | undefined;
    for (const [time, equity] of points) {
      const observation = { scope, equity, time, resetAt: time >= resetAt ? resetAt : null };
      drawdown = evaluateDrawdown(drawdown, { ...observation, maxDrawdown: null }).tracker;
      daily = evaluateDailyLoss(daily, { ...observation, dailyLossLimit: null }).tracker;
    }
    const equity = 93_120;
    const engine = {
      dailyLoss: dailyLossOf(daily?.opening ?? null, equity),
      drawdown: drawdownOf(drawdown?.highWater ?? null, equity),
    };
    // Opening 94000 (the first valuation after the reset), mark 97000 (the highest since).
    expect(engine.dailyLoss).toBeCloseTo((94_000 - equity) / 94_000, 12);
    expect(engine.drawdown).toBeCloseTo((97_000 - equity) / 97_000, 12);

    // The risk API's figures (GET /risk/overview reads these measures).
    const row = (await new RiskQueries(store.pool).portfolioMeasures()).find(
      (r) => r.portfolio_id === portfolio,
    );
    const api = riskMeasures({
      equity: row?.equity ?? null,
      openingEquity: row?.opening_equity ?? null,
      highWaterMark: row?.high_water_mark ?? null,
    });
    expect(api.dailyLoss).toBeCloseTo(engine.dailyLoss ?? NaN, 12);
    expect(api.drawdown).toBeCloseTo(engine.drawdown ?? NaN, 12);

    // Grafana's.
    const scraped = await scrape();
    const label = `portfolio=${portfolio}`;
    expect(series(scraped, 'risk_daily_loss_ratio')[label]).toBeCloseTo(
      engine.dailyLoss ?? NaN,
      12,
    );
    expect(series(scraped, 'trading_drawdown_ratio')[label]).toBeCloseTo(
      engine.drawdown ?? NaN,
      12,
    );
  });

  it('an approved reset clears a state and its temporary state', async () => {
    await commands.handle(
      tradingStates,
      tradingStateStream({ type: 'portfolio', id: 'paper-5m' }),
      {
        type: 'ResetTradingState',
        scope: { type: 'portfolio', id: 'paper-5m' },
        requestId: randomUUID(),
        approvers: [officer],
        time: today + 10 * 60_000,
      } as never,
      { actor: 'system:approval-flow' },
    );
    await commands.handle(
      tradingStates,
      tradingStateStream({ type: 'portfolio', id: 'paper-1m' }),
      {
        type: 'ResetTradingState',
        scope: { type: 'portfolio', id: 'paper-1m' },
        requestId: randomUUID(),
        approvers: [officer],
        to: 'REDUCING',
        time: today + 10 * 60_000,
      } as never,
      { actor: 'system:approval-flow' },
    );
    await project();
    const scraped = await scrape();
    expect(series(scraped, 'risk_temporary_state_until_timestamp_seconds')).toEqual({
      'rule=price_breaker,scope=BTCUSDT,scope_type=symbol,state=HALTED':
        (today + 5 * 60_000 + 3_600_000) / 1000,
    });
    const states = series(scraped, 'risk_trading_state');
    expect(states['scope=paper-1m,scope_type=portfolio,state=HALTED']).toBe(0);
    expect(states['scope=paper-1m,scope_type=portfolio,state=REDUCING']).toBe(1);
    expect(states['scope=paper-5m,scope_type=portfolio,state=ACTIVE']).toBe(1);
  });

  it('keeps the last trigger counts while their read model is missing, and reads the other risk families', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const before = series(await scrape(), 'risk_triggers_total');
      await admin.query('ALTER VIEW qcat_read.risk_triggers RENAME TO risk_triggers_elsewhere');
      await fire('strategy_drawdown', { type: 'strategy', id: 's-2' }, 'HALTED', today + 1, null);
      await deny('d-4', 'ORDER_RATE_EXCEEDED: scope=strategy:s-1, orders=5, max=5, windowMs=60000');
      await project();
      const scraped = await scrape();
      expect(series(scraped, 'risk_triggers_total')).toEqual(before);
      expect(series(scraped, 'business_metrics_errors_total')).toEqual({
        'query=risk_triggers': 1,
      });
      // The families before and after it are fresh.
      expect(
        series(scraped, 'risk_trading_state')['scope=s-2,scope_type=strategy,state=HALTED'],
      ).toBe(1);
      expect(series(scraped, 'risk_orders_denied_total')['code=ORDER_RATE_EXCEEDED']).toBe(1);
      await admin.query('ALTER VIEW qcat_read.risk_triggers_elsewhere RENAME TO risk_triggers');
      expect(series(await scrape(), 'risk_triggers_total')['rule=strategy_drawdown']).toBe(1);
    } finally {
      await admin.query(
        'ALTER VIEW IF EXISTS qcat_read.risk_triggers_elsewhere RENAME TO risk_triggers',
      );
      await admin.end();
    }
  });
});
