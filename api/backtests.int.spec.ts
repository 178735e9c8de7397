import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { backtestStream } from '../core/backtests/backtest-run.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import type { Candle } from '../core/market/types.js';
import { backtest } from '../core/trading/backtest.js';
import type { StepperConfig } from '../core/trading/stepper.js';
import { BACKTEST_RUNNER_ACTOR, backtestRunner } from '../automation/backtests/runner.js';
import { ProcessManagerTarget, type Outcome } from '../automation/process-manager-target.js';
import { BacktestResultsStore } from '../core/adapters/postgres/backtest-results-store.js';
import type { PostgresTarget } from '../projections/postgres-target.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';

const DAY = 86_400_000;
/** Candles are stored for 40 days from here; the runs below cover parts of them. */
const ORIGIN = Date.UTC(2025, 0, 1);
const FROM = ORIGIN + 5 * DAY;
const TO = ORIGIN + 35 * DAY;
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Backtests end to end over real HTTP and PostgreSQL: candles seeded with the market data store,
 * a run requested, completed by the runner, and its summary, trades and equity checked against a
 * direct call of the pure backtest over the same candles.
 */
describe('backtests over HTTP', () => {
  let api: TestServer;
  let candles: Candle[];

  type Json = Record<string, unknown>;
  const call = async (
    role: keyof TestServer['tokens'],
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
      headers,
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === '' ? {} : (JSON.parse(text) as Json),
      headers: response.headers,
    };
  };
  const ok = (answer: { status: number; body: Json }, status = 200): Json => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return answer.body;
  };

  /** Polls the run (first reading its own write) until the runner has finished it. */
  const finished = async (accepted: Json): Promise<Json> => {
    const backtestId = accepted['backtestId'] as string;
    const position = accepted['position'] as string;
    return vi.waitFor(
      async () => {
        const run = ok(
          await call('viewer', 'GET', `/backtests/${backtestId}?minPosition=${position}`),
        );
        if (run['status'] === 'requested') throw new Error(`backtest ${backtestId} did not finish`);
        return run;
      },
      { timeout: 30_000, interval: 100 },
    );
  };

  const request = {
    kind: 'sma_crossover',
    parameters: { fastPeriod: 6, slowPeriod: 24 },
    symbol: 'BTCUSDT',
    timeframe: '1h',
    from: iso(FROM),
    to: iso(TO),
  };
  /** The same run, configured by hand for the pure backtest. */
  const direct = (overrides: Partial<StepperConfig> = {}) =>
    backtest(
      {
        portfolioId: 'direct',
        currency: 'USDT',
        initialCash: 100_000,
        timeframe: '1h',
        instruments: DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT'),
        books: [
          {
            strategyId: 'direct',
            symbol: 'BTCUSDT',
            kind: 'sma_crossover',
            parameters: { fastPeriod: 6, slowPeriod: 24, positionFraction: 0.5 },
            allocation: 1,
          },
        ],
        ...overrides,
      },
      candles,
      { from: FROM, to: TO },
    );

  beforeAll(async () => {
    api = await startTestServer('backtests_api');
    const store = new MarketDataStore(api.server.runtime.pool);
    await store.upsertInstruments(DEFAULT_INSTRUMENTS);
    const instruments = DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT');
    candles = [
      ...generateCandles({
        seed: 7,
        from: ORIGIN,
        to: ORIGIN + 40 * DAY,
        instruments,
        timeframe: '1h',
      }),
    ];
    await store.insertCandles(candles);
  }, 60_000);
  afterAll(async () => {
    await api.stop();
  });

  let completedId: string;

  it('runs a requested backtest: the summary, trades and equity are those of the pure backtest', async () => {
    const answer = await call('analyst', 'POST', '/backtests', request);
    const accepted = ok(answer, 202);
    const backtestId = accepted['backtestId'] as string;
    completedId = backtestId;
    expect(answer.headers.get('location')).toBe(`/api/v1/backtests/${backtestId}`);
    expect(accepted).toMatchObject({ streamId: backtestStream(backtestId), eventCount: 1 });

    const run = await finished(accepted);
    const expected = direct();
    expect(expected.trades.length).toBeGreaterThan(2);
    expect(run).toMatchObject({
      status: 'completed',
      kind: 'sma_crossover',
      parameters: { fastPeriod: 6, slowPeriod: 24, positionFraction: 0.5 },
      symbol: 'BTCUSDT',
      timeframe: '1h',
      from: iso(FROM),
      to: iso(TO),
      initialCash: 100_000,
      costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
      strategyId: null,
      requester: { role: 'analyst' },
      failureReason: null,
    });
    expect(run['requestedBy']).toMatch(/^apikey:.*\(test-analyst\)$/);
    const summary = run['summary'] as Json;
    expect(summary['statistics']).toEqual(expected.statistics);
    expect(summary).toMatchObject({
      trades: expected.trades.length,
      finalEquity: expected.statistics.finalEquity,
      bars: 30 * 24,
      firstBar: iso(FROM),
      lastBar: iso(TO - 3_600_000),
      equityDays: 30,
    });
    expect(summary['durationMs']).toEqual(expect.any(Number));

    // The trades, page by page.
    const trades: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?limit=2${cursor ? `&after=${cursor}` : ''}`;
      const page = ok(await call('viewer', 'GET', `/backtests/${backtestId}/trades${query}`));
      trades.push(...(page['trades'] as Json[]));
      cursor = page['nextCursor'] as string | null;
      pages++;
    } while (cursor !== null && pages < 100);
    expect(pages).toBe(Math.ceil(expected.trades.length / 2));
    expect(trades).toEqual(
      expected.trades.map((t, i) => ({
        seq: i + 1,
        side: t.side,
        openedAt: iso(t.openedAt),
        closedAt: iso(t.closedAt),
        quantity: t.quantity,
        entryPrice: t.entryPrice,
        exitPrice: t.exitPrice,
        realizedPnl: t.realizedPnl,
        fees: t.fees,
        netPnl: t.netPnl,
      })),
    );

    const equity = ok(await call('auditor', 'GET', `/backtests/${backtestId}/equity`));
    expect(equity).toEqual({ backtestId, initialCash: 100_000, equity: expected.equity });

    // Completed by the runner, caused by the request, in the request's correlation.
    const events = await api.server.runtime.eventStore.readStream(backtestStream(backtestId));
    expect(events.map((e) => e.type)).toEqual(['BacktestRequested', 'BacktestCompleted']);
    const [requested, completed] = events;
    expect(completed?.metadata).toMatchObject({
      actor: BACKTEST_RUNNER_ACTOR,
      causationId: requested?.eventId,
      correlationId: requested?.metadata.correlationId,
    });
  });

  it('gives the same results for the same request, and charges the costs asked for', async () => {
    const again = ok(await call('trader', 'POST', '/backtests', request), 202);
    const free = ok(
      await call('trader', 'POST', '/backtests', {
        ...request,
        initialCash: 20_000,
        costs: { slippageBps: 0, takerFeeBps: 0, makerFeeBps: 0, maxVolumeShare: null },
      }),
      202,
    );
    const first = ok(await call('viewer', 'GET', `/backtests/${completedId}`));
    const second = await finished(again);
    const { durationMs: _a, ...firstSummary } = first['summary'] as Json;
    const { durationMs: _b, ...secondSummary } = second['summary'] as Json;
    expect(secondSummary).toEqual(firstSummary);
    const trades = async (id: string): Promise<unknown> =>
      ok(await call('viewer', 'GET', `/backtests/${id}/trades?limit=1000`))['trades'];
    expect(await trades(again['backtestId'] as string)).toEqual(await trades(completedId));

    const costless = await finished(free);
    const expected = direct({
      initialCash: 20_000,
      venue: { slippageBps: 0, takerFeeBps: 0, makerFeeBps: 0, maxVolumeShare: null },
    });
    expect((costless['summary'] as Json)['statistics']).toEqual(expected.statistics);
    expect(expected.trades.every((t) => t.fees === 0)).toBe(true);
  });

  it('reads candles beyond one page (10,000) for a run on minute bars', async () => {
    const instruments = DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT');
    const minutes = [
      ...generateCandles({ seed: 8, from: ORIGIN, to: ORIGIN + 8 * DAY, instruments }),
    ];
    await new MarketDataStore(api.server.runtime.pool).insertCandles(minutes);
    const body = {
      ...request,
      timeframe: '1m',
      from: iso(ORIGIN + 3_600_000),
      to: iso(ORIGIN + 8 * DAY),
    };
    const run = await finished(ok(await call('analyst', 'POST', '/backtests', body), 202));
    const expected = backtest(
      {
        portfolioId: 'direct',
        currency: 'USDT',
        initialCash: 100_000,
        timeframe: '1m',
        instruments,
        books: [
          {
            strategyId: 'direct',
            symbol: 'BTCUSDT',
            kind: 'sma_crossover',
            parameters: { fastPeriod: 6, slowPeriod: 24, positionFraction: 0.5 },
            allocation: 1,
          },
        ],
      },
      minutes,
      { from: ORIGIN + 3_600_000, to: ORIGIN + 8 * DAY },
    );
    expect(expected.bars).toBe(8 * 1440 - 60);
    expect(run['summary']).toMatchObject({
      statistics: expected.statistics,
      bars: expected.bars,
      trades: expected.trades.length,
    });
  });

  it('fails a run over a range without candles with NO_MARKET_DATA', async () => {
    const from = iso(ORIGIN + 100 * DAY);
    const to = iso(ORIGIN + 110 * DAY);
    const accepted = ok(await call('analyst', 'POST', '/backtests', { ...request, from, to }), 202);
    const run = await finished(accepted);
    expect(run).toMatchObject({ status: 'failed', summary: null });
    expect(run['failureReason']).toBe(
      `NO_MARKET_DATA: symbol=BTCUSDT, timeframe=1h, from=${from}, to=${to}`,
    );
    expect(run['finishedAt']).toEqual(expect.any(String));
    const trades = await call(
      'viewer',
      'GET',
      `/backtests/${String(accepted['backtestId'])}/trades`,
    );
    expect(trades.status).toBe(409);
    expect(trades.body['code']).toBe('BACKTEST_NOT_COMPLETED');
  });

  it('refuses invalid requests with a problem naming the field, and writes nothing', async () => {
    const head = await api.server.runtime.eventStore.headPosition();
    const problem = async (body: unknown, status: number, code: string): Promise<Json> => {
      const answer = await call('analyst', 'POST', '/backtests', body);
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(answer.body['code']).toBe(code);
      return answer.body;
    };
    const paths = (body: Json): string[] =>
      (body['errors'] as { path: string }[]).map((e) => e.path).sort();

    const parameters = await problem(
      { ...request, parameters: { fastPeriod: 1, slowPeriod: 'slow' } },
      400,
      'INVALID_PARAMETERS',
    );
    expect(paths(parameters)).toEqual(['parameters.fastPeriod', 'parameters.slowPeriod']);
    const crossed = await problem(
      { ...request, parameters: { fastPeriod: 30, slowPeriod: 20 } },
      400,
      'INVALID_PARAMETERS',
    );
    expect(paths(crossed)).toEqual(['parameters.fastPeriod']);
    const { kind: _kind, symbol: _symbol, ...bare } = request;
    expect(paths(await problem(bare, 400, 'VALIDATION_FAILED'))).toEqual([
      'body.kind',
      'body.symbol',
    ]);
    expect(paths(await problem({ ...request, to: request.from }, 400, 'INVALID_RANGE'))).toEqual([
      'to',
    ]);
    await problem({ ...request, from: iso(ORIGIN - 800 * DAY) }, 400, 'RANGE_TOO_LONG');
    await problem({ ...request, from: '2025-01-06' }, 400, 'VALIDATION_FAILED');
    await problem({ ...request, costs: { takerFeeBps: -1 } }, 400, 'VALIDATION_FAILED');
    await problem({ ...request, symbol: 'NOPEUSDT' }, 422, 'INSTRUMENT_NOT_FOUND');
    await problem({ ...request, strategyId: crypto.randomUUID() }, 404, 'STRATEGY_NOT_FOUND');
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('lets analysts, traders and admins run backtests, and every role read them', async () => {
    for (const role of ['viewer', 'auditor', 'risk_officer', 'operator'] as const) {
      const denied = await call(role, 'POST', '/backtests', request);
      expect(denied.status, role).toBe(403);
      expect(denied.body['code']).toBe('FORBIDDEN');
      expect((await call(role, 'GET', '/backtests')).status, role).toBe(200);
    }
    await finished(ok(await call('admin', 'POST', '/backtests', request), 202));
  });

  it('answers a retry with the same Idempotency-Key with the same run, once', async () => {
    const headers = { 'idempotency-key': 'backtest-retry-0001' };
    const first = ok(await call('trader', 'POST', '/backtests', request, headers), 202);
    const retry = ok(await call('trader', 'POST', '/backtests', request, headers), 202);
    expect(retry).toEqual(first);
    const events = await api.server.runtime.eventStore.readStream(
      backtestStream(first['backtestId'] as string),
    );
    expect(events.filter((e) => e.type === 'BacktestRequested')).toHaveLength(1);
    const other = await call(
      'trader',
      'POST',
      '/backtests',
      { ...request, symbol: 'ETHUSDT' },
      headers,
    );
    expect(other.status).toBe(422);
    expect(other.body['code']).toBe('IDEMPOTENCY_KEY_REUSED');
    await finished(first);
  });

  it('copies a strategy into the request, and lists runs by strategy, status and symbol', async () => {
    const created = ok(
      await call('trader', 'POST', '/strategies', {
        name: 'BTC hourly',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        parameters: { fastPeriod: 6, slowPeriod: 24 },
        capitalRequest: 10_000,
      }),
      201,
    );
    const strategyId = created['strategyId'] as string;
    expect(
      await api.server.runtime.projections.waitFor(
        'strategies',
        BigInt(created['position'] as string),
        5000,
      ),
    ).toBe(true);
    const accepted = ok(
      await call('analyst', 'POST', '/backtests', { strategyId, from: iso(FROM), to: iso(TO) }),
      202,
    );
    const run = await finished(accepted);
    expect(run).toMatchObject({
      status: 'completed',
      strategyId,
      strategyParameterVersion: 1,
      kind: 'sma_crossover',
      parameters: { fastPeriod: 6, slowPeriod: 24, positionFraction: 0.5 },
      symbol: 'BTCUSDT',
      timeframe: '1h',
    });
    // Same kind, parameters, candles and costs as the first run: the same statistics.
    expect((run['summary'] as Json)['statistics']).toEqual(direct().statistics);
    const kindGiven = await call('analyst', 'POST', '/backtests', {
      strategyId,
      kind: 'donchian_breakout',
      from: iso(FROM),
      to: iso(TO),
    });
    expect(kindGiven.status).toBe(400);
    expect(kindGiven.body['errors']).toEqual([
      { path: 'body.kind', message: expect.any(String) as string },
    ]);

    const list = async (query: string): Promise<Json[]> =>
      ok(await call('viewer', 'GET', `/backtests?${query}`))['backtests'] as Json[];
    expect((await list(`strategyId=${strategyId}`)).map((r) => r['backtestId'])).toEqual([
      accepted['backtestId'],
    ]);
    const failed = await list('status=failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.['failureReason']).toMatch(/^NO_MARKET_DATA: /);
    expect(await list('symbol=ETHUSDT')).toEqual([]);
    expect(await list('kind=rsi_mean_reversion')).toEqual([]);

    // Newest first, page by page.
    const all = await list('limit=500');
    const seen: unknown[] = [];
    let cursor: string | null = null;
    do {
      const page: Json = ok(
        await call('viewer', 'GET', `/backtests?limit=2${cursor ? `&after=${cursor}` : ''}`),
      );
      seen.push(...(page['backtests'] as Json[]).map((r) => r['backtestId']));
      cursor = page['nextCursor'] as string | null;
    } while (cursor !== null);
    expect(seen).toEqual(all.map((r) => r['backtestId']));
    expect(all.length).toBeGreaterThanOrEqual(7);
    expect(all[0]?.['backtestId']).toBe(accepted['backtestId']);
    expect(all.at(-1)?.['backtestId']).toBe(completedId);
  });

  it('keeps the results through a rebuild of the read model and of the runner', async () => {
    const runtime = api.server.runtime;
    const runs = ok(await call('viewer', 'GET', '/backtests?limit=500'))['backtests'] as Json[];
    for (const run of runs) await finished(run);
    const trades = `/backtests/${completedId}/trades?limit=1000`;
    const equity = `/backtests/${completedId}/equity`;
    const before = [
      ok(await call('viewer', 'GET', trades)),
      ok(await call('viewer', 'GET', equity)),
    ];
    const head = await runtime.eventStore.headPosition();

    await (runtime.projections.target('backtests') as PostgresTarget).rebuild(runtime.eventStore);
    expect(ok(await call('viewer', 'GET', `/backtests/${completedId}`))['status']).toBe(
      'completed',
    );
    expect([
      ok(await call('viewer', 'GET', trades)),
      ok(await call('viewer', 'GET', equity)),
    ]).toEqual(before);

    // A crash between the BacktestCompleted append and the runner's commit leaves a completed run
    // without rows: here, one whose rows are gone. The API says so rather than answer nothing.
    for (const table of ['runs', 'trades', 'equity'])
      await runtime.pool.query(`DELETE FROM qcat_backtest.${table} WHERE backtest_id = $1`, [
        completedId,
      ]);
    const missing = await call('viewer', 'GET', trades);
    expect(missing.status).toBe(503);
    expect(missing.body['code']).toBe('BACKTEST_RESULTS_NOT_STORED');

    // Handling every request again (the runner's replay after a crash; a process manager is
    // never rebuilt, ADR 027) recomputes that run's rows (the same ones) and nothing else, and
    // writes no event: every run is finished, and completing a completed run is [].
    const outcomes: Outcome[] = [];
    const replay = new ProcessManagerTarget(
      runtime.pool,
      backtestRunner({
        commands: runtime.commands,
        results: new BacktestResultsStore(runtime.pool),
      }),
      runtime.commands,
      { onOutcome: (outcome) => outcomes.push(outcome) },
    );
    const log = await runtime.eventStore.readAll({ after: 0n, maxCount: 100_000 });
    expect(await replay.apply(log)).toBe(head);
    expect(await runtime.eventStore.headPosition()).toBe(head);
    // Its completion was issued before under the same key, and nothing is written either way
    // (the head did not move, above): `repeated` when the new command differs in its duration
    // (the key's request differs), `acted` with the first answer replayed when the two runs took
    // the same milliseconds (the same request) — a fast run on a quiet machine often does.
    expect(outcomes.map((o) => [o.streamId, o.command])).toEqual([
      [backtestStream(completedId), 'CompleteBacktest'],
    ]);
    expect(['repeated', 'acted']).toContain(outcomes[0]?.result);
    expect(runs.length).toBeGreaterThan(1);
    expect([
      ok(await call('viewer', 'GET', trades)),
      ok(await call('viewer', 'GET', equity)),
    ]).toEqual(before);
  });

  it('answers 404 for an unknown run and 400 for a malformed id', async () => {
    const unknown = await call('viewer', 'GET', `/backtests/${crypto.randomUUID()}/equity`);
    expect(unknown.status).toBe(404);
    expect(unknown.body['code']).toBe('BACKTEST_NOT_FOUND');
    expect((await call('viewer', 'GET', '/backtests/not-a-uuid')).status).toBe(400);
  });

  it('documents the routes in the OpenAPI description', async () => {
    const openapi = (await (await api.request('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { tags?: string[] }>>;
    };
    expect(openapi.paths['/api/v1/backtests']?.['post']?.tags).toEqual(['backtests']);
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/backtests/{backtestId}',
        '/api/v1/backtests/{backtestId}/trades',
        '/api/v1/backtests/{backtestId}/equity',
      ]),
    );
  });

  it('answers the run list from the read-model cache, never stale after a change', async () => {
    const runtime = api.server.runtime;
    // Quiet: every run is finished, and the read model holds everything.
    let head = await runtime.eventStore.headPosition();
    expect(await runtime.automation.waitFor('backtest-runner', head, 30_000)).toBe(true);
    head = await runtime.eventStore.headPosition();
    expect(await runtime.projections.waitFor('backtests', head, 5000)).toBe(true);
    const read = async (path: string) => {
      const response = await api.request('GET', `/api/v1${path}`, { token: api.tokens.viewer });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const ids = (JSON.parse(text) as { backtests: Json[] }).backtests.map(
        (b) => b['backtestId'] as string,
      );
      return { cache: response.headers.get('x-qcat-read-cache'), text, ids };
    };
    // A hit with minPosition=head: the cache has heard of every change up to the head.
    const warm = await until(
      () => read(`/backtests?limit=1&minPosition=${head.toString()}`),
      (r) => r.cache === 'hit',
    );
    expect(warm.cache).toBe('hit');

    const path = '/backtests?symbol=BTCUSDT&limit=500';
    const first = await read(path);
    expect(first.cache).toBe('miss');
    expect(first.ids.length).toBeGreaterThan(0);
    const second = await read(path);
    expect(second.cache).toBe('hit');
    expect(second.text).toBe(first.text);

    const accepted = ok(
      await call('analyst', 'POST', '/backtests', { ...request, to: iso(FROM + 2 * DAY) }),
      202,
    );
    const backtestId = accepted['backtestId'] as string;
    // Reading one's own write: never the answer cached before it (newest first).
    const own = await read(`${path}&minPosition=${String(accepted['position'])}`);
    expect(own.cache).toBe('miss');
    expect(own.ids).toEqual([backtestId, ...first.ids]);
    // The plain URL drops its cached answer once the change is projected, then caches the new one.
    const plain = await until(
      () => read(path),
      (r) => r.ids.includes(backtestId) && r.cache === 'hit',
    );
    expect(plain.ids).toEqual([backtestId, ...first.ids]);
    expect(plain.cache).toBe('hit');
    expect((await finished(accepted))['status']).toBe('completed');
  });
});
