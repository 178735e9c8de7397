import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';

/**
 * Portfolio allocations over real PostgreSQL and HTTP, with the process managers running (serve):
 * a risk officer sets a policy, proposals name their trigger and figures, a proposal above the
 * threshold waits for a second person through the approvals API and is then applied. The paper
 * engine is off: its valuations are appended by hand, with its actor.
 */

type Json = Record<string, unknown>;
const P = 'paper-1h';
const DAY = 86_400_000;
// Valued over the last days, so the estimation window (up to now) holds them.
const D0 = Math.floor(Date.now() / DAY) * DAY - 16 * DAY;

describe('portfolio allocation API', () => {
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
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Json };
  };

  /** Day i's valuation: s1 and s2 with PnL paths of different volatility. */
  const valued = async (i: number): Promise<bigint> => {
    const s1 = 400 * Math.sin(i * 1.7) + 50 * i;
    const s2 = 150 * Math.cos(i * 2.3) + 20 * i;
    const position = (strategyId: string, pnl: number) => ({
      strategyId,
      symbol: 'BTCUSDT',
      quantity: 0,
      averageEntryPrice: 0,
      markPrice: 100,
      unrealizedPnl: 0,
      realizedPnl: pnl,
      feesPaid: 0,
    });
    const data: JsonObject = {
      portfolioId: P,
      currency: 'USDT',
      time: D0 + i * DAY,
      cycle: i,
      cash: 100_000 + s1 + s2,
      equity: 100_000 + s1 + s2,
      feesPaid: 0,
      realizedPnl: s1 + s2,
      unrealizedPnl: 0,
      positions: [position('s1', s1), position('s2', s2)],
    };
    const result = await api.server.runtime.eventStore.appendToStream(`position-${P}`, [
      { type: 'PortfolioValued', data, metadata: { actor: 'system:paper-engine' } },
    ]);
    return result.position;
  };

  beforeAll(async () => {
    api = await startTestServer('portfolio_api');
    let last = 0n;
    for (let i = 0; i < 15; i++) last = await valued(i);
    expect(await api.server.runtime.projections.waitFor('allocations', last, 10_000)).toBe(true);
    // Rebalancing (capability 3) acts only with its switch on in the automation policy.
    const on = await call('risk_officer', 'PUT', '/automation/rebalance', { enabled: true });
    expect(on.status).toBe(200);
  }, 60_000);
  afterAll(async () => api.stop());

  it('only risk officers and admins set a policy; bad input names its field and changes nothing', async () => {
    expect((await call('trader', 'PUT', `/portfolios/${P}/allocation/policy`, {})).status).toBe(
      403,
    );
    const zero = await call('risk_officer', 'PUT', `/portfolios/${P}/allocation/policy`, {
      method: 'volatility_target',
      targetVolatility: 0,
    });
    expect(zero.status).toBe(400);
    expect(zero.body).toMatchObject({ code: 'INVALID_ALLOCATION_POLICY' });
    expect(String(zero.body['detail'])).toMatch(/policy\.targetVolatility/);
    expect((await call('viewer', 'GET', `/portfolios/${P}/allocation`)).status).toBe(404);
  });

  it('policy and members set: the process manager proposes (membership), four eyes, then applied', async () => {
    const set = await call('risk_officer', 'PUT', `/portfolios/${P}/allocation/policy`, {
      method: 'risk_parity',
      estimationDays: 30,
    });
    expect(set.status).toBe(200);
    expect(
      (await call('risk_officer', 'POST', `/portfolios/${P}/members`, { strategyId: 's1' })).status,
    ).toBe(200);
    expect(
      (await call('risk_officer', 'POST', `/portfolios/${P}/members`, { strategyId: 's2' })).status,
    ).toBe(200);
    // The first membership change is proposed; 20% moves are above the 5 pp threshold: four eyes.
    const pending = await until(
      async () => {
        const { body } = await call('viewer', 'GET', `/portfolios/${P}/allocation/proposals`);
        const items = body['items'] as Json[];
        return items.find((p) => p['status'] === 'pending_approval');
      },
      (found) => found !== undefined,
      15_000,
    );
    if (!pending) throw new Error('no pending proposal');
    expect(pending).toMatchObject({ method: 'risk_parity', trigger: { type: 'membership' } });
    const requestId = String(pending['requestId']);
    const approved = await call('admin', 'POST', `/approvals/${requestId}/approve`, {
      comment: 'looks right',
    });
    expect(approved.body).toMatchObject({});
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const current = await until(
      async () => {
        const { status, body } = await call('viewer', 'GET', `/portfolios/${P}/allocation`);
        return status === 200 && body['allocation'] ? body : undefined;
      },
      (found) => found !== undefined,
      15_000,
    );
    if (!current) throw new Error('no allocation applied');
    expect(current['members']).toEqual(['s1', 's2']);
    const strategies = current['strategies'] as Json[];
    expect(strategies.map((s) => s['strategyId'])).toEqual(['s1', 's2']);
    expect(current['riskContributions']).not.toBeNull();
  });

  it('bad weights: a strategy not in the portfolio, weights over the cap; nothing applied', async () => {
    const before = (await call('viewer', 'GET', `/portfolios/${P}/allocation`)).body['allocation'];
    const stranger = await call('risk_officer', 'POST', `/portfolios/${P}/allocation/proposals`, {
      weights: { s1: 0.1, s2: 0.1, s3: 0.1 },
    });
    expect(stranger.status).toBe(400);
    expect(stranger.body).toMatchObject({ code: 'STRATEGY_NOT_IN_PORTFOLIO' });
    expect(String(stranger.body['detail'])).toMatch(/weights\.s3/);
    const over = await call('risk_officer', 'POST', `/portfolios/${P}/allocation/proposals`, {
      weights: { s1: 0.5, s2: 0.1 },
    });
    expect(over.status).toBe(400);
    expect(String(over.body['detail'])).toMatch(/weights\.s1: exceeds maxWeight 0\.2/);
    expect((await call('viewer', 'GET', `/portfolios/${P}/allocation`)).body['allocation']).toEqual(
      before,
    );
  });

  it('a position cursor beyond the largest position is a 400 naming it, not a 500', async () => {
    const answer = await call(
      'viewer',
      'GET',
      `/portfolios/${P}/allocation/proposals?before=9999999999999999999`,
    );
    expect(answer.status).toBe(400);
    expect(String(answer.body['detail'])).toMatch(/before/);
  });

  it('a computed proposal records every figure (printed for the closing note)', async () => {
    const proposed = await call('analyst', 'POST', `/portfolios/${P}/allocation/proposals`, {
      reason: 'quarterly review',
    });
    expect(proposed.status).toBe(200);
    const proposal = await until(
      async () => {
        const { body } = await call('viewer', 'GET', `/portfolios/${P}/allocation/proposals`);
        return (body['items'] as Json[]).find(
          (p) => p['proposalId'] === proposed.body['proposalId'],
        );
      },
      (found) => found !== undefined,
      10_000,
    );
    if (!proposal) throw new Error('no proposal');
    const inputs = proposal['inputs'] as Json;
    expect(inputs['observations']).toBe(14);
    expect(inputs['covariance']).toHaveLength(2);
    // Risk parity would give s2 (the calmer one) more; the 20% cap binds on both.
    expect(proposal['weights']).toEqual({ s1: 0.2, s2: 0.2 });
    const contributions = Object.values(inputs['riskContributions'] as Record<string, number>);
    expect(contributions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    console.log(JSON.stringify(proposal, null, 2));
  });
});
