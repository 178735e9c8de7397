import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { strategyStream } from '../core/strategies/strategy.js';
import { ApiKeyService } from './auth/api-key-service.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';

const DAY = 86_400_000;
const ORIGIN = Date.UTC(2025, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Optimizations end to end over real HTTP and PostgreSQL: candles seeded, an optimization
 * requested, run by the optimizer (worker threads) batch by batch, and read back: detail, trials
 * by score, folds and stitched equity; bad input refused naming the field; cancellation.
 */
describe('optimizations over HTTP', () => {
  let api: TestServer;
  type Json = Record<string, unknown>;
  const call = async (
    role: keyof TestServer['tokens'],
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
  };
  const ok = (answer: { status: number; body: Json }, status = 200): Json => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return answer.body;
  };

  const request = {
    kind: 'sma_crossover',
    symbol: 'BTCUSDT',
    timeframe: '1h',
    from: iso(ORIGIN),
    to: iso(ORIGIN + 90 * DAY),
    space: {
      fastPeriod: { type: 'int', low: 4, high: 16, step: 4 },
      slowPeriod: { type: 'int', low: 24, high: 72, step: 24 },
    },
    method: 'grid',
    objective: { name: 'sharpe', minTrades: 1 },
    walkForward: { scheme: 'anchored', folds: 3, inSampleBlocks: 2 },
    budget: { trials: 12 },
    batchSize: 4,
  };

  beforeAll(async () => {
    api = await startTestServer('optimizations_api');
    const store = new MarketDataStore(api.server.runtime.pool);
    await store.upsertInstruments(DEFAULT_INSTRUMENTS);
    const instruments = DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT');
    await store.insertCandles([
      ...generateCandles({
        seed: 5,
        from: ORIGIN,
        to: ORIGIN + 90 * DAY,
        instruments,
        timeframe: '1h',
      }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await api.stop();
  });

  /** Reads the run (its request first: minPosition) until `done` holds. */
  const watch = (accepted: Json, done: (run: Json) => boolean, ms = 60_000) =>
    until(
      async () =>
        ok(
          await call(
            'viewer',
            'GET',
            `/optimizations/${String(accepted['optimizationId'])}?minPosition=${String(accepted['position'])}`,
          ),
        ),
      done,
      ms,
    );
  const settled = (accepted: Json) =>
    watch(accepted, (run) => ['completed', 'failed', 'cancelled'].includes(String(run['status'])));

  it('runs a grid search in batches and reads back its trials, folds and verdict', async () => {
    const accepted = ok(await call('analyst', 'POST', '/optimizations', request), 202);
    const optimizationId = String(accepted['optimizationId']);
    const run = await settled(accepted);
    expect(run).toMatchObject({
      status: 'completed',
      method: 'grid',
      trialsDone: 12,
      budget: { trials: 12, wallSeconds: 3600 },
      trigger: { type: 'manual' },
    });
    const outcome = run['outcome'] as Json;
    expect(outcome).toMatchObject({ trialsRun: 12, stoppedBy: 'budget' });
    expect(outcome['deflatedSharpe']).toMatchObject({ trials: 12 });
    expect(outcome['pbo']).toMatchObject({ blocks: expect.any(Number) as number });
    const verdict = run['verdict'] as { passed: boolean; reasons: string[] };
    expect(verdict.passed).toBe(verdict.reasons.length === 0);

    const page = ok(await call('viewer', 'GET', `/optimizations/${optimizationId}/trials?limit=5`));
    const trials = page['trials'] as { trial: number; score: number | null; batch: number }[];
    expect(trials).toHaveLength(5);
    expect(page['nextOffset']).toBe(5);
    const scores = trials.map((t) => t.score ?? -Infinity);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(trials[0]?.trial).toBe(run['bestTrial']);
    const byTrial = ok(
      await call('viewer', 'GET', `/optimizations/${optimizationId}/trials?sort=trial&limit=500`),
    );
    const all = byTrial['trials'] as { trial: number; batch: number }[];
    expect(all.map((t) => t.trial)).toEqual([...Array(12).keys()]);
    expect(new Set(all.map((t) => t.batch))).toEqual(new Set([0, 1, 2]));

    const folds = ok(await call('viewer', 'GET', `/optimizations/${optimizationId}/folds`));
    expect(folds['folds']).toHaveLength(3);
    const equity = folds['equity'] as { date: string }[];
    // 90 days in 5 blocks of 18: the three out-of-sample blocks are the last 54 days.
    expect(equity).toHaveLength(54);
    expect(equity[0]?.date).toBe(iso(ORIGIN + 36 * DAY).slice(0, 10));

    const again = await call('analyst', 'POST', `/optimizations/${optimizationId}/cancel`, {
      reason: 'too late',
    });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'OPTIMIZATION_FINISHED', currentState: 'completed' });
  }, 90_000);

  it.each([
    [
      { space: { fastPeriod: { type: 'int', low: 20, high: 4 } } },
      'INVERTED_RANGE',
      'space.fastPeriod.high',
    ],
    [{ space: { speed: { type: 'int', low: 1, high: 4 } } }, 'UNKNOWN_PARAMETER', 'space.speed'],
    [{ budget: { trials: 5 } }, 'GRID_LARGER_THAN_BUDGET', 'budget.trials'],
    [{ from: iso(ORIGIN + 200 * DAY), to: iso(ORIGIN + 300 * DAY) }, 'NO_MARKET_DATA', 'from'],
    [{ objective: { name: 'sharpe', minTrades: 0 } }, 'INVALID_OBJECTIVE', 'objective.minTrades'],
  ])('refuses %j with %s naming %s, and writes nothing', async (overrides, code, path) => {
    const before = ok(await call('viewer', 'GET', '/optimizations'));
    const answer = await call('analyst', 'POST', '/optimizations', { ...request, ...overrides });
    expect(answer.status, JSON.stringify(answer.body)).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    expect(answer.body).toMatchObject({ code, errors: [{ path }] });
    const after = ok(await call('viewer', 'GET', '/optimizations'));
    expect(after['optimizations']).toHaveLength((before['optimizations'] as unknown[]).length);
  });

  it('lets analysts and traders run optimizations, not viewers or risk officers', async () => {
    expect((await call('viewer', 'POST', '/optimizations', request)).status).toBe(403);
    expect((await call('risk_officer', 'POST', '/optimizations', request)).status).toBe(403);
  });

  it('cancels a running optimization; it stops and stays cancelled', async () => {
    const accepted = ok(
      await call('trader', 'POST', '/optimizations', {
        ...request,
        method: 'random',
        space: {
          fastPeriod: { type: 'int', low: 2, high: 30 },
          slowPeriod: { type: 'int', low: 31, high: 200 },
        },
        budget: { trials: 2000 },
        batchSize: 2,
      }),
      202,
    );
    const optimizationId = String(accepted['optimizationId']);
    await watch(accepted, (run) => Number(run['trialsDone']) > 0);
    ok(
      await call('trader', 'POST', `/optimizations/${optimizationId}/cancel`, { reason: 'enough' }),
    );
    const run = await settled(accepted);
    expect(run['status']).toBe('cancelled');
    const done = Number(run['trialsDone']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const later = ok(await call('viewer', 'GET', `/optimizations/${optimizationId}`));
    expect(later).toMatchObject({ status: 'cancelled', trialsDone: done });
    expect(done).toBeLessThan(2000);
  }, 90_000);

  it('uses the adoption gate a risk officer set in the automation policy (its one source)', async () => {
    const thresholds = {
      minOutOfSampleSharpe: -10,
      minDeflatedSharpe: 0,
      maxOverfitProbability: 1,
      minTrades: 0,
    };
    expect(
      (await call('analyst', 'PUT', '/automation/adopt_parameters', { thresholds })).status,
    ).toBe(403);
    const refused = await call('risk_officer', 'PUT', '/automation/adopt_parameters', {
      thresholds: { ...thresholds, maxOverfitProbability: 2 },
    });
    expect(refused.status).toBe(400);
    ok(await call('risk_officer', 'PUT', '/automation/adopt_parameters', { thresholds }));
    const gate = { minOutOfSampleSharpe: -10, minDeflatedSharpe: 0, maxPbo: 1, minTrades: 0 };
    expect(ok(await call('viewer', 'GET', '/optimization-policy'))).toMatchObject({
      gate,
      gateChangedBy: expect.stringMatching(/^apikey:/) as string,
    });
    const accepted = ok(await call('analyst', 'POST', '/optimizations', request), 202);
    const run = await settled(accepted);
    expect(run['verdict']).toEqual({ passed: true, reasons: [], gate });
  }, 90_000);

  it('adopts a passing result at once inside a standing approval granted with four eyes, as automation with that authority', async () => {
    const created = ok(
      await call('trader', 'POST', '/strategies', {
        name: 'standing',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        parameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
        capitalRequest: 10_000,
      }),
      201,
    );
    const strategyId = String(created['strategyId']);
    const submitted = ok(await call('trader', 'POST', `/strategies/${strategyId}/submit`));
    const approve = (role: keyof TestServer['tokens'], requestId: string, token?: string) =>
      until(
        async () => {
          const response = await api.request('POST', `/api/v1/approvals/${requestId}/approve`, {
            token: token ?? api.tokens[role],
            body: { comment: 'ok' },
          });
          return { status: response.status, body: (await response.json()) as Json };
        },
        // 404: the request is not opened yet; 401: a new key not yet in the read model.
        (answer) => answer.status !== 404 && answer.status !== 401,
      );
    expect((await approve('risk_officer', String(submitted['approvalRequestId']))).status).toBe(
      200,
    );

    // A risk officer asks; the same one may not approve; a second risk officer does.
    const asked = ok(
      await call('risk_officer', 'POST', '/optimization-policy/standing-approvals', {
        strategyId,
        maxRelativeChange: 0.5,
        expiresAt: iso(Date.now() + 30 * DAY),
        reason: 'let the optimizer tune it',
      }),
      202,
    );
    const requestId = String(asked['requestId']);
    expect((await approve('risk_officer', requestId)).body).toMatchObject({
      code: 'SELF_APPROVAL_FORBIDDEN',
    });
    const second = await new ApiKeyService(api.server.runtime.commands).issue(
      'risk-2',
      'risk_officer',
      'test-setup',
    );
    expect((await approve('risk_officer', requestId, second.token)).status).toBe(200);
    const active = await until(
      async () => ok(await call('viewer', 'GET', '/optimization-policy')),
      (policy) =>
        (policy['standingApprovals'] as Json[]).some(
          (s) =>
            s['standingApprovalId'] === asked['standingApprovalId'] && s['status'] === 'active',
        ),
    );
    expect(active['standingApprovals']).toContainEqual(
      expect.objectContaining({ status: 'active', strategyId, maxRelativeChange: 0.5 }),
    );

    ok(
      // Switched on too: adoption may be gated by capability 2's switch.
      await call('risk_officer', 'PUT', '/automation/adopt_parameters', {
        enabled: true,
        thresholds: {
          minOutOfSampleSharpe: -10,
          minDeflatedSharpe: 0,
          maxOverfitProbability: 1,
          minTrades: 0,
        },
      }),
    );
    // Every point of the space is within ±40 % of the live 10 / 50, and none is the live one.
    const accepted = ok(
      await call('analyst', 'POST', '/optimizations', {
        ...request,
        kind: undefined,
        symbol: undefined,
        timeframe: undefined,
        strategyId,
        space: {
          fastPeriod: { type: 'set', values: [6, 14] },
          slowPeriod: { type: 'set', values: [30, 70] },
        },
        budget: { trials: 4 },
      }),
      202,
    );
    const run = await settled(accepted);
    expect(run).toMatchObject({ status: 'completed', verdict: { passed: true } });
    const changed = await until(
      async () =>
        (await api.server.runtime.eventStore.readStream(strategyStream(strategyId))).find(
          (e) => e.type === 'StrategyParametersChanged',
        ),
      (event) => event !== undefined,
      30_000,
    );
    expect(changed?.metadata.actor).toBe('automation:optimization-adoption');
    expect(changed?.data).toMatchObject({
      version: 2,
      approvers: [],
      authority: {
        type: 'standing_approval',
        standingApprovalId: asked['standingApprovalId'],
        maxRelativeChange: 0.5,
        grantedBy: [{ role: 'risk_officer' }],
        optimizationId: accepted['optimizationId'],
      },
    });
    // No approval request of a parameter change was opened.
    const stream = await api.server.runtime.eventStore.readStream(strategyStream(strategyId));
    expect(stream.map((e) => e.type)).not.toContain('StrategyParameterChangeRequested');
  }, 120_000);
});
