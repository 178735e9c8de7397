import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { strategies, strategyStream } from '../core/strategies/strategy.js';
import { orderStream } from '../core/trading/orders.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';

/**
 * Every command route, walked in an order that makes each request valid: a stale If-Match is 412
 * and writes nothing; the same Idempotency-Key twice gives the same answer and writes once.
 * Routes come from the app itself, so a new command route without a step here fails the walk.
 */

type Json = Record<string, unknown>;
type Role = 'admin' | 'trader' | 'risk_officer' | 'analyst';
interface Step {
  /** The route as declared, e.g. `POST /api/v1/strategies/:strategyId/submit`. */
  route: string;
  role: Role;
  path: () => string;
  body?: () => unknown;
  status: number;
  then?: (answer: Json) => Promise<void> | void;
}

const D0 = Date.UTC(2025, 5, 1);
/** The last full hour when the spec starts: the candles below end there. */
const NOW = Math.floor(Date.now() / 3_600_000) * 3_600_000;

describe('every command route honours If-Match and Idempotency-Key', () => {
  let api: TestServer;
  beforeAll(async () => {
    api = await startTestServer('command_routes');
    const market = new MarketDataStore(api.server.runtime.pool);
    await market.upsertInstruments(DEFAULT_INSTRUMENTS);
    // 60 days of hourly BTC candles up to now: for the hot-symbol ranking and the optimization.
    const hour = 3_600_000;
    const now = NOW;
    await market.insertCandles([
      ...generateCandles({
        seed: 3,
        from: now - 60 * 24 * hour,
        to: now,
        instruments: DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT'),
        timeframe: '1h',
      }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await api.stop();
  });

  const send = async (
    role: Role,
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; etag: string | null; location: string | null }> => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
      headers,
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === '' ? {} : (JSON.parse(text) as Json),
      etag: response.headers.get('etag'),
      location: response.headers.get('location'),
    };
  };

  /** Events written since `after` by the API key of `role` (process managers act as others). */
  const writtenBy = async (role: Role, after: bigint): Promise<number> => {
    const events = await api.server.runtime.eventStore.readAll({ after, maxCount: 10_000 });
    return events.filter((e) => e.metadata.actor.endsWith(`(test-${role})`)).length;
  };

  const ids: Record<string, string> = {};
  const id = (name: string) => () => {
    const value = ids[name];
    if (value === undefined) throw new Error(`no ${name} yet`);
    return value;
  };
  const strategy = id('strategy');
  const statusOf = async (strategyId: string): Promise<unknown> =>
    (await send('trader', 'GET', `/strategies/${strategyId}`, undefined)).body['status'];

  const steps: Step[] = [
    {
      route: 'POST /keys',
      role: 'admin',
      path: () => '/keys',
      body: () => ({ name: 'walked', role: 'viewer' }),
      status: 201,
      then: (a) => void (ids['key'] = String(a['keyId'])),
    },
    {
      route: 'POST /keys/:keyId/rotate',
      role: 'admin',
      path: () => `/keys/${id('key')()}/rotate`,
      status: 200,
    },
    {
      route: 'DELETE /keys/:keyId',
      role: 'admin',
      path: () => `/keys/${id('key')()}`,
      status: 200,
    },
    {
      route: 'POST /strategies',
      role: 'trader',
      path: () => '/strategies',
      body: () => ({
        name: 'walked',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1m',
        parameters: { fastPeriod: 5, slowPeriod: 20 },
        capitalRequest: 1000,
      }),
      status: 201,
      then: (a) => void (ids['strategy'] = String(a['strategyId'])),
    },
    {
      route: 'PATCH /strategies/:strategyId',
      role: 'trader',
      path: () => `/strategies/${strategy()}`,
      body: () => ({ description: 'walked through every command route' }),
      status: 200,
    },
    {
      route: 'POST /strategies/:strategyId/submit',
      role: 'trader',
      path: () => `/strategies/${strategy()}/submit`,
      status: 200,
      then: (a) => void (ids['activation'] = String(a['approvalRequestId'])),
    },
    {
      route: 'POST /approvals/:requestId/approve',
      role: 'risk_officer',
      path: () => `/approvals/${id('activation')()}/approve`,
      body: () => ({ comment: 'fine' }),
      status: 200,
      then: async () => {
        expect(
          await until(
            () => statusOf(strategy()),
            (s) => s === 'approved',
          ),
        ).toBe('approved');
      },
    },
    {
      route: 'POST /strategies/:strategyId/start-paper',
      role: 'trader',
      path: () => `/strategies/${strategy()}/start-paper`,
      status: 200,
      then: async () => {
        expect(
          await until(
            () => statusOf(strategy()),
            (s) => s === 'paper',
          ),
        ).toBe('paper');
      },
    },
    {
      route: 'POST /strategies/:strategyId/request-live',
      role: 'trader',
      path: () => `/strategies/${strategy()}/request-live`,
      status: 200,
      then: (a) => void (ids['promotion'] = String(a['approvalRequestId'])),
    },
    {
      route: 'POST /approvals/:requestId/reject',
      role: 'risk_officer',
      path: () => `/approvals/${id('promotion')()}/reject`,
      body: () => ({ reason: 'not yet' }),
      status: 200,
    },
    {
      route: 'POST /strategies/:strategyId/parameters',
      role: 'trader',
      path: () => `/strategies/${strategy()}/parameters`,
      body: () => ({ parameters: { fastPeriod: 6, slowPeriod: 20 } }),
      status: 200,
      then: (a) => void (ids['change'] = String(a['approvalRequestId'])),
    },
    {
      route: 'POST /approvals/:requestId/withdraw',
      role: 'trader',
      path: () => `/approvals/${id('change')()}/withdraw`,
      body: () => ({ reason: 'changed my mind' }),
      status: 200,
    },
    {
      route: 'POST /backtests',
      role: 'analyst',
      path: () => '/backtests',
      body: () => ({
        kind: 'sma_crossover',
        symbol: 'BTCUSDT',
        timeframe: '1h',
        from: new Date(D0).toISOString(),
        to: new Date(D0 + 86_400_000).toISOString(),
      }),
      status: 202,
    },
    {
      route: 'POST /orders',
      role: 'trader',
      path: () => '/orders',
      body: () => ({
        strategyId: strategy(),
        symbol: 'BTCUSDT',
        side: 'buy',
        type: 'limit',
        quantity: 0.5,
        limitPrice: 3000,
      }),
      status: 202,
      then: async (a) => {
        // The engine's answer (it is off here), written by hand: the order is open.
        const clientOrderId = String(a['clientOrderId']);
        ids['order'] = clientOrderId;
        const order = {
          clientOrderId,
          portfolioId: String(a['portfolioId']),
          strategyId: strategy(),
          symbol: 'BTCUSDT',
          side: 'buy',
          type: 'limit',
          quantity: 0.5,
          limitPrice: 3000,
          stopPrice: null,
          reduceOnly: false,
        };
        const written = await api.server.runtime.eventStore.appendToStream(
          orderStream(clientOrderId),
          [
            { type: 'OrderSubmitted', data: { ...order, time: D0 }, metadata: { actor: 'engine' } },
            {
              type: 'OrderAccepted',
              data: {
                clientOrderId,
                venueOrderId: 'paper-1',
                quantity: 0.5,
                limitPrice: 3000,
                stopPrice: null,
                time: D0,
              },
              metadata: { actor: 'engine' },
            },
          ],
        );
        await api.server.runtime.projections.waitFor('trading', written.position, 5000);
      },
    },
    {
      route: 'DELETE /orders/:clientOrderId',
      role: 'risk_officer',
      path: () => `/orders/${id('order')()}`,
      body: () => ({ reason: 'too big' }),
      status: 202,
    },
    {
      route: 'PUT /risk/limits/:scopeType/:scopeId',
      role: 'risk_officer',
      path: () => `/risk/limits/strategy/${strategy()}`,
      body: () => ({}),
      status: 200,
    },
    {
      route: 'POST /risk/limits/:scopeType/:scopeId/change-requests',
      role: 'risk_officer',
      path: () => `/risk/limits/strategy/${strategy()}/change-requests`,
      body: () => ({ changes: { maxLeverage: 2 }, reason: 'tighter' }),
      status: 201,
    },
    {
      route: 'POST /risk/states/:scopeType/:scopeId',
      role: 'risk_officer',
      path: () => `/risk/states/strategy/${strategy()}`,
      body: () => ({ state: 'REDUCING', reason: 'walk' }),
      status: 200,
    },
    {
      route: 'POST /risk/states/:scopeType/:scopeId/reset-requests',
      role: 'risk_officer',
      path: () => `/risk/states/strategy/${strategy()}/reset-requests`,
      body: () => ({ to: 'ACTIVE', reason: 'fixed' }),
      status: 201,
    },
    {
      route: 'PUT /risk/exits/:portfolioId/:strategyId/:symbol',
      role: 'risk_officer',
      path: () => `/risk/exits/paper-1m/${strategy()}/BTCUSDT`,
      body: () => ({ stopLoss: 0.05 }),
      status: 200,
    },
    {
      route: 'POST /risk/exits/:portfolioId/:strategyId/:symbol/levels',
      role: 'risk_officer',
      path: () => `/risk/exits/paper-1m/${strategy()}/BTCUSDT/levels`,
      body: () => ({ openedAt: new Date(D0).toISOString(), stopPrice: 2500, reason: 'tighter' }),
      status: 200,
    },
    {
      route: 'POST /strategies/:strategyId/pause',
      role: 'trader',
      path: () => `/strategies/${strategy()}/pause`,
      body: () => ({ reason: 'walk' }),
      status: 200,
    },
    {
      route: 'POST /strategies/:strategyId/resume',
      role: 'trader',
      path: () => `/strategies/${strategy()}/resume`,
      status: 200,
    },
    {
      route: 'POST /strategies/:strategyId/retire',
      role: 'trader',
      path: () => `/strategies/${strategy()}/retire`,
      body: () => ({ reason: 'walked' }),
      status: 200,
    },
    {
      route: 'PUT /portfolios/:portfolioId/allocation/policy',
      role: 'risk_officer',
      path: () => '/portfolios/walk-1/allocation/policy',
      body: () => ({ method: 'equal_weight' }),
      status: 200,
    },
    {
      route: 'POST /portfolios/:portfolioId/members',
      role: 'risk_officer',
      path: () => '/portfolios/walk-1/members',
      body: () => ({ strategyId: strategy() }),
      status: 200,
    },
    {
      route: 'POST /portfolios/:portfolioId/allocation/proposals',
      role: 'analyst',
      path: () => '/portfolios/walk-1/allocation/proposals',
      body: () => ({ reason: 'walk' }),
      status: 200,
    },
    {
      route: 'DELETE /portfolios/:portfolioId/members/:strategyId',
      role: 'risk_officer',
      path: () => `/portfolios/walk-1/members/${strategy()}`,
      status: 200,
    },
    {
      route: 'POST /optimization-policy/standing-approvals',
      role: 'risk_officer',
      path: () => '/optimization-policy/standing-approvals',
      body: () => ({
        strategyId: null,
        maxRelativeChange: 0.25,
        expiresAt: new Date(NOW + 30 * 24 * 3_600_000).toISOString(),
        reason: 'walk',
      }),
      status: 202,
      then: (a) => void (ids['standing'] = String(a['standingApprovalId'])),
    },
    {
      route: 'POST /optimization-policy/standing-approvals/:standingApprovalId/revoke',
      role: 'risk_officer',
      path: () => `/optimization-policy/standing-approvals/${id('standing')()}/revoke`,
      body: () => ({ reason: 'walk' }),
      status: 200,
    },
    {
      route: 'POST /optimizations',
      role: 'analyst',
      path: () => '/optimizations',
      // A long random search, so that the cancel below finds it running.
      body: () => ({
        kind: 'sma_crossover',
        symbol: 'BTCUSDT',
        timeframe: '1h',
        from: new Date(NOW - 59 * 24 * 3_600_000).toISOString(),
        to: new Date(NOW).toISOString(),
        space: {
          fastPeriod: { type: 'int', low: 2, high: 10 },
          slowPeriod: { type: 'int', low: 11, high: 40 },
        },
        method: 'random',
        objective: { name: 'netPnl', minTrades: 1 },
        walkForward: { scheme: 'anchored', folds: 3, inSampleBlocks: 2 },
        budget: { trials: 10_000 },
        batchSize: 2,
      }),
      status: 202,
      then: (answer) => {
        ids['optimization'] = String(answer['optimizationId']);
      },
    },
    {
      route: 'POST /optimizations/:optimizationId/cancel',
      role: 'analyst',
      path: () => `/optimizations/${id('optimization')()}/cancel`,
      body: () => ({ reason: 'walk' }),
      status: 200,
    },
    {
      route: 'PUT /automation/:capability',
      role: 'risk_officer',
      path: () => '/automation/elimination',
      body: () => ({ enabled: true, thresholds: { losingWeeksInARow: 3 } }),
      status: 200,
      then: async () => {
        // One symbol has candles: its centred score is 0, recommended with a minimum of 0.
        const set = await send('risk_officer', 'PUT', '/automation/hot_symbols', {
          thresholds: { minScore: 0 },
        });
        expect(set.status, JSON.stringify(set.body)).toBe(200);
      },
    },
    {
      route: 'POST /hot-symbols/rankings',
      role: 'analyst',
      path: () => '/hot-symbols/rankings',
      status: 201,
    },
    {
      route: 'POST /hot-symbols/proposals',
      role: 'analyst',
      path: () => '/hot-symbols/proposals',
      body: () => ({ symbol: 'BTCUSDT', reason: 'walk' }),
      status: 201,
      then: (answer) => {
        ids['hotSymbol'] = String(answer['proposalId']);
      },
    },
    {
      route: 'POST /hot-symbols/:symbol/approve',
      role: 'risk_officer',
      path: () => '/hot-symbols/BTCUSDT/approve',
      body: () => ({ proposalId: id('hotSymbol')(), comment: 'walk' }),
      status: 200,
      then: async () => {
        // A second proposal, for the reject step.
        const again = await send('analyst', 'POST', '/hot-symbols/proposals', {
          symbol: 'BTCUSDT',
          reason: 'walk again',
        });
        expect(again.status, JSON.stringify(again.body)).toBe(201);
        ids['hotSymbol'] = String(again.body['proposalId']);
      },
    },
    {
      route: 'POST /hot-symbols/:symbol/reject',
      role: 'risk_officer',
      path: () => '/hot-symbols/BTCUSDT/reject',
      body: () => ({ proposalId: id('hotSymbol')(), reason: 'walk' }),
      status: 200,
    },
    {
      route: 'POST /risk/kill-switch',
      role: 'risk_officer',
      path: () => '/risk/kill-switch',
      body: () => ({ reason: 'walk' }),
      status: 200,
    },
    {
      route: 'POST /risk/kill-switch/release-requests',
      role: 'risk_officer',
      path: () => '/risk/kill-switch/release-requests',
      body: () => ({ reason: 'calm again' }),
      status: 201,
    },
  ];

  it('has a step for every write route of the API (but the read-model rebuild)', () => {
    const writes = api.server.fastify.qcatRoutes
      .filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method))
      .filter((r) => r.url.startsWith('/api/v1/') && !r.url.includes('/projections/'))
      .map((r) => `${r.method} ${r.url.slice('/api/v1'.length)}`);
    expect(steps.map((s) => s.route).sort()).toEqual([...new Set(writes)].sort());
  });

  it('walks them: a stale If-Match is 412; one key twice is one write and the same answer', async () => {
    const events = api.server.runtime.eventStore;
    for (const [index, step] of steps.entries()) {
      const [method = ''] = step.route.split(' ');
      const what = `${step.route} (${step.path()})`;

      const before = await events.headPosition();
      const stale = await send(step.role, method, step.path(), step.body?.(), {
        'if-match': '"999999"',
      });
      expect(stale.status, `${what}: ${JSON.stringify(stale.body)}`).toBe(412);
      expect(stale.body['code']).toBe('PRECONDITION_FAILED');
      expect(await writtenBy(step.role, before), what).toBe(0);

      const headers = { 'idempotency-key': `walk-${index.toString()}-0123456789` };
      const start = await events.headPosition();
      const first = await send(step.role, method, step.path(), step.body?.(), headers);
      expect(first.status, `${what}: ${JSON.stringify(first.body)}`).toBe(step.status);
      const wrote = await writtenBy(step.role, start);
      expect(wrote, what).toBeGreaterThan(0);
      const second = await send(step.role, method, step.path(), step.body?.(), headers);
      expect(second.status, `${what}: ${JSON.stringify(second.body)}`).toBe(step.status);
      expect(await writtenBy(step.role, start), what).toBe(wrote);
      // A token is shown once: the retry of an issue or rotation names the key, without it.
      const { token, ...rest } = first.body;
      if (token !== undefined) {
        expect(typeof token).toBe('string');
        expect(second.body).toEqual({ ...rest, token: null });
      } else expect(second.body, what).toEqual(first.body);
      expect([second.etag, second.location]).toEqual([first.etag, first.location]);
      await step.then?.(first.body);
    }
  }, 120_000);

  it('answers a retry after a crash between the append and the key completion with the first result', async () => {
    const { eventStore, pool } = api.server.runtime;
    // The crash point: the append is committed, then the process dies (no completion, no release).
    const dying = new PostgresIdempotencyStore(pool, 0);
    dying.complete = () => Promise.reject(new Error('kill -9'));
    dying.release = () => Promise.resolve();
    const command = {
      type: 'CreateStrategy' as const,
      strategyId: 'crash-window',
      owner: { id: 'apikey:x', role: 'trader' as const },
      name: 'crash window',
      description: '',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1m' as const,
      parameters: { fastPeriod: 5, slowPeriod: 20 },
      capitalRequest: 1000,
    };
    const context = {
      actor: 'apikey:x(crash)',
      idempotencyKey: 'crash-window-1',
      clientInput: { route: 'POST /strategies', body: { name: 'crash window' } },
    };
    const stream = strategyStream('crash-window');
    await expect(
      new CommandHandler({ eventStore, idempotency: dying }).handle(
        strategies,
        stream,
        command,
        context,
      ),
    ).rejects.toThrow('kill -9');
    const [written] = await eventStore.readStream(stream);

    // Another process, once the lease (0 s here) is over: the first result, not STRATEGY_EXISTS.
    const retry = new CommandHandler({
      eventStore,
      idempotency: new PostgresIdempotencyStore(pool, 0),
    });
    const again = await retry.handle(strategies, stream, command, context);
    expect(again).toEqual({
      streamId: stream,
      nextExpectedRevision: 0n,
      position: written?.position,
      eventCount: 1,
      replayed: true,
    });
    expect(await eventStore.readStream(stream)).toHaveLength(1);
    // And the key is completed now: the next retry reads it from the key.
    expect(await retry.handle(strategies, stream, command, context)).toEqual(again);
  });
});
