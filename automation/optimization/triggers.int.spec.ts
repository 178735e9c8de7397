import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import { OptimizationQueries } from '../../projections/optimization-queries.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { until } from '../../test/support/until.js';
import { ProcessManagerTarget } from '../process-manager-target.js';
import { underperformanceOptimizer } from './automatic-optimizer.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
type Json = Record<string, unknown>;

/**
 * Capability 1 over real PostgreSQL: a paper strategy whose daily net PnL (the paper engine's
 * valuations in the allocations read model) falls for a month triggers one optimization by
 * itself, naming the figures; the optimizer runs it; the next tick requests nothing (cooldown).
 */
describe('optimize when profit falls short, end to end', () => {
  let api: TestServer;
  const call = async (
    role: keyof TestServer['tokens'],
    method: string,
    path: string,
    body?: unknown,
  ) => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
  };
  const NOW = Math.floor(Date.now() / HOUR) * HOUR;

  beforeAll(async () => {
    api = await startTestServer('optimization_triggers');
    const market = new MarketDataStore(api.server.runtime.pool);
    await market.upsertInstruments(DEFAULT_INSTRUMENTS);
    await market.insertCandles([
      ...generateCandles({
        seed: 11,
        from: NOW - 62 * DAY,
        to: NOW,
        instruments: DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT'),
        timeframe: '1h',
      }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await api.stop();
  });

  it('requests one optimization naming the figures, runs it, ends in a four-eyes request one correlation explains, then cools down', async () => {
    const created = await call('trader', 'POST', '/strategies', {
      name: 'falling',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1h',
      parameters: { fastPeriod: 10, slowPeriod: 40, positionFraction: 0.5 },
      capitalRequest: 10_000,
    });
    const strategyId = String(created.body['strategyId']);
    const submitted = await call('trader', 'POST', `/strategies/${strategyId}/submit`);
    const requestId = String(submitted.body['approvalRequestId']);
    await until(
      async () =>
        (await call('risk_officer', 'POST', `/approvals/${requestId}/approve`, { comment: 'ok' }))
          .status,
      (status) => status === 200,
    );
    const paper = await until(
      async () => (await call('trader', 'POST', `/strategies/${strategyId}/start-paper`)).status,
      (status) => status === 200,
    );
    expect(paper).toBe(200);
    await until(
      async () => (await call('viewer', 'GET', `/strategies/${strategyId}`)).body['status'],
      (status) => status === 'paper',
    );

    // Given a month of valuations losing 40 a day (with some noise) in the allocations read model.
    const pool = api.server.runtime.pool;
    for (let i = 0; i <= 31; i++) {
      const day = new Date(NOW - (31 - i) * DAY).toISOString().slice(0, 10);
      await pool.query(
        `INSERT INTO qcat_read.allocation_strategy_pnl (portfolio_id, strategy_id, day, net_pnl, equity, valued_at, position)
         VALUES ('paper-1h', $1, $2, $3, 100000, now(), $4)`,
        [strategyId, day, -40 * i + (i % 2) * 15, 1_000_000 + i],
      );
    }
    // A gate any result passes, so that the run ends in a parameter-change request.
    const gate = await call('risk_officer', 'PUT', '/automation/adopt_parameters', {
      enabled: true,
      thresholds: {
        minOutOfSampleSharpe: -10,
        minDeflatedSharpe: 0,
        maxOverfitProbability: 1,
        minTrades: 0,
      },
    });
    expect(gate.status).toBe(200);
    const switched = await call('risk_officer', 'PUT', '/automation/optimize_on_underperformance', {
      enabled: true,
      thresholds: { dataDays: 60, trials: 8 },
    });
    expect(switched.status, JSON.stringify(switched.body)).toBe(200);

    const { commands, eventStore } = api.server.runtime;
    const manager = underperformanceOptimizer({
      commands,
      market: new MarketDataStore(pool),
      reads: new OptimizationQueries(pool),
    });
    const target = new ProcessManagerTarget(pool, manager, commands, { eventStore });
    await target.tick(new Date(NOW));

    const listed = await until(
      async () => (await call('viewer', 'GET', `/optimizations?strategyId=${strategyId}`)).body,
      (body) => (body['optimizations'] as Json[]).length > 0,
    );
    const [run] = listed['optimizations'] as Json[];
    expect(run).toMatchObject({
      strategyId,
      method: 'bayesian',
      requestedBy: 'automation:underperformance-optimizer',
      budget: { trials: 8 },
      trigger: {
        type: 'underperformance',
        // The window is the 30 days up to today: 31 valuations, 30 daily returns; peak 9,975, low 8,775.
        figures: { days: 30, maxDrawdown: expect.closeTo(1200 / 9975, 4) as number },
        thresholds: { sharpeBelow: 0.5, drawdownAbove: 0.1, windowDays: 30 },
      },
    });
    const settled = await until(
      async () =>
        (await call('viewer', 'GET', `/optimizations/${String(run?.['optimizationId'])}`)).body,
      (body) => ['completed', 'failed', 'cancelled'].includes(String(body['status'])),
      90_000,
    );
    expect(settled['status']).toBe('completed');

    // It ends in a four-eyes request, and one correlation explains the chain in the audit trail.
    const cause = `tick:underperformance-optimizer:${new Date(NOW).toISOString().slice(0, 10)}`;
    const chain = await until(
      async () =>
        (await eventStore.readAll({ after: 0n, maxCount: 100_000 }))
          .filter((e) => e.metadata.correlationId === cause)
          .map((e) => `${e.type} by ${e.metadata.actor}`),
      (types) => types.some((t) => t.startsWith('ApprovalRequested')),
      30_000,
    );
    expect(chain).toEqual(
      expect.arrayContaining([
        'OptimizationRequested by automation:underperformance-optimizer',
        'OptimizationCompleted by automation:optimizer',
        'StrategyParameterChangeRequested by automation:optimization-adoption',
        'ApprovalRequested by system:approval-flow',
      ]),
    );

    // The next tick, the same day or the next: cooling down, nothing more is requested.
    await target.tick(new Date(NOW + 60_000));
    await target.tick(new Date(NOW + DAY));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const again = await call('viewer', 'GET', `/optimizations?strategyId=${strategyId}`);
    expect(again.body['optimizations']).toHaveLength(1);
  }, 150_000);
});
