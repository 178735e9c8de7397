import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ROLES, allows } from '../core/access/roles.js';
import { deskStream } from '../core/engine/desk.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import {
  accountStream,
  positionStream,
  unrealizedPnl,
  type ClosedTrade,
} from '../core/trading/accounting.js';
import { isOpen, orderStream, orders, type OrderState } from '../core/trading/orders.js';
import {
  closedTrades,
  Stepper,
  type EngineState,
  type TradingEvent,
} from '../core/trading/stepper.js';
import type { Runtime } from '../ops/runtime.js';
import { activeGenerationKey, redisViewKeys } from '../projections/redis-target.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { archiveTrading } from '../projections/retention-queries.js';
import { livePositionField } from '../projections/trading-live.js';
import { tradingProjection, type PortfolioValuedData } from '../projections/trading.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';
import { tableChecksum } from '../test/support/read-model-checksums.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { describeNeeding } from '../test/support/tools.js';

/**
 * The trading read side over real PostgreSQL, Redis and HTTP: a Stepper runs 300 bars of two
 * symbols for two paper strategies in `paper-1m`, its events are appended to their streams as
 * the engine would, with PortfolioValued every 100 candles; then orders, fills, trades,
 * positions, portfolio, equity and PnL are read back over HTTP and compared with the stepper's
 * own state. Manual orders and cancels go to the desk stream with the caller as actor.
 */

type Json = Record<string, unknown>;
const PORTFOLIO = 'paper-1m';
const ENGINE = 'engine:paper-1m';
const FROM = Date.UTC(2025, 5, 1);
const MINUTE = 60_000;
const instruments = DEFAULT_INSTRUMENTS.filter(
  (i) => i.symbol === 'BTCUSDT' || i.symbol === 'ETHUSDT',
);

/** The stream an engine appends each trading event to (docs/trading.md). */
function streamOf(event: TradingEvent): string {
  switch (event.type) {
    case 'PositionChanged':
    case 'PositionClosed':
      return positionStream(event.data.portfolioId, event.data.strategyId, event.data.symbol);
    case 'CashBalanceChanged':
      return accountStream(event.data.portfolioId);
    default:
      return orderStream(event.data.clientOrderId);
  }
}

/** PortfolioValued as contracts.md describes it, from the stepper's state after a bar. */
function valuation(stepper: Stepper, state: EngineState, time: number, cycle: number) {
  const positions = state.account.positions.map((p) => {
    const markPrice = state.marks[p.symbol] ?? p.averageEntryPrice;
    return {
      strategyId: p.strategyId,
      symbol: p.symbol,
      quantity: p.quantity,
      averageEntryPrice: p.averageEntryPrice,
      markPrice,
      unrealizedPnl: unrealizedPnl(p, markPrice),
      realizedPnl: p.realizedPnl,
      feesPaid: p.feesPaid,
    };
  });
  return {
    portfolioId: PORTFOLIO,
    currency: 'USDT',
    time,
    cycle,
    cash: state.account.cash,
    equity: stepper.equity(state),
    feesPaid: state.account.feesPaid,
    realizedPnl: positions.reduce((sum, p) => sum + p.realizedPnl, 0),
    unrealizedPnl: positions.reduce((sum, p) => sum + p.unrealizedPnl, 0),
    positions,
  } satisfies PortfolioValuedData;
}

describeNeeding(['redis'], 'trading read models and API', () => {
  let api: TestServer;
  let redis: TestRedis;
  let runtime: Runtime;
  let strategyA: string;
  let strategyB: string;
  let draft: string;
  let events: TradingEvent[];
  let state: EngineState;
  let valuations: PortfolioValuedData[];

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
  const get = async <T = Json>(path: string, role: keyof TestServer['tokens'] = 'viewer') =>
    ok(await call(role, 'GET', path)) as T;

  /** A strategy created, approved and (unless `keepDraft`) paper trading. */
  const strategy = async (
    kind: string,
    symbol: string,
    parameters: JsonObject,
    keepDraft = false,
  ): Promise<string> => {
    const created = ok(
      await call('trader', 'POST', '/strategies', {
        name: `${kind} ${symbol}`,
        kind,
        symbols: [symbol],
        timeframe: '1m',
        parameters,
        capitalRequest: 50_000,
      }),
      201,
    );
    const id = created['strategyId'] as string;
    if (keepDraft) return id;
    const request = ok(await call('trader', 'POST', `/strategies/${id}/submit`))[
      'approvalRequestId'
    ] as string;
    ok(await call('risk_officer', 'POST', `/approvals/${request}/approve`));
    const paper = ok(await call('trader', 'POST', `/strategies/${id}/start-paper`));
    await runtime.projections.waitFor('strategies', BigInt(paper['position'] as string), 5000);
    return id;
  };

  const caughtUp = async (): Promise<void> => {
    const head = await runtime.eventStore.headPosition();
    expect(await runtime.projections.waitFor('trading', head, 15_000)).toBe(true);
    expect(await runtime.projections.waitFor('live_positions', head, 15_000)).toBe(true);
  };

  beforeAll(async () => {
    redis = await connectTestRedis('trading');
    api = await startTestServer('trading', {
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: redis.prefix,
    });
    runtime = api.server.runtime;
    strategyA = await strategy('sma_crossover', 'BTCUSDT', { fastPeriod: 5, slowPeriod: 20 });
    strategyB = await strategy('donchian_breakout', 'ETHUSDT', { entryPeriod: 10, exitPeriod: 5 });
    draft = await strategy('sma_crossover', 'BTCUSDT', {}, true);

    // 300 one-minute bars of each symbol through the step function, as the engine runs them.
    const stepper = new Stepper({
      portfolioId: PORTFOLIO,
      currency: 'USDT',
      initialCash: 100_000,
      timeframe: '1m',
      instruments,
      books: [
        {
          strategyId: strategyA,
          symbol: 'BTCUSDT',
          kind: 'sma_crossover',
          parameters: { fastPeriod: 5, slowPeriod: 20 },
          allocation: 0.5,
        },
        {
          strategyId: strategyB,
          symbol: 'ETHUSDT',
          kind: 'donchian_breakout',
          parameters: { entryPeriod: 10, exitPeriod: 5 },
          allocation: 0.5,
        },
      ],
      // A small volume share, for partial fills; a deterministic risk check, for denials.
      venue: { maxVolumeShare: 0.01 },
      risk: (_order, context) =>
        (context.time / MINUTE) % 7 === 3
          ? { ok: false, reason: 'TEST_LIMIT: rule=every-7th-minute' }
          : { ok: true },
    });
    state = stepper.initialState();
    events = [];
    valuations = [];
    const candles = [
      ...generateCandles({ seed: 7, from: FROM, to: FROM + 300 * MINUTE, instruments }),
    ];
    const batches: { streamId: string; events: TradingEvent[] }[] = [];
    const push = (streamId: string, event: TradingEvent): void => {
      const last = batches.at(-1);
      if (last?.streamId === streamId) last.events.push(event);
      else batches.push({ streamId, events: [event] });
    };
    candles.forEach((candle, index) => {
      const result = stepper.step(state, candle);
      state = result.state;
      for (const event of result.events) {
        events.push(event);
        push(streamOf(event), event);
      }
      if ((index + 1) % 100 === 0) {
        const valued = valuation(stepper, state, candle.openTime + MINUTE, valuations.length + 1);
        valuations.push(valued);
        batches.push({
          streamId: `position-${PORTFOLIO}`,
          events: [{ type: 'PortfolioValued', data: valued } as unknown as TradingEvent],
        });
      }
    });
    for (const batch of batches)
      await runtime.eventStore.appendToStream(
        batch.streamId,
        batch.events.map((event) => ({
          type: event.type,
          data: event.data,
          metadata: { actor: ENGINE },
        })),
      );
    await caughtUp();
  }, 120_000);
  afterAll(async () => {
    await api.stop();
    await redis.cleanup();
  });

  /** Every order's final state, folded with the order decider. */
  const expectedOrders = (): Map<string, Exclude<OrderState, { status: 'none' }>> => {
    const folded = new Map<string, OrderState>();
    for (const event of events) {
      if (!event.type.startsWith('Order')) continue;
      const id = (event.data as { clientOrderId: string }).clientOrderId;
      folded.set(
        id,
        orders.evolve(folded.get(id) ?? orders.initialState(), orders.parseEvent(event)),
      );
    }
    return folded as Map<string, Exclude<OrderState, { status: 'none' }>>;
  };

  it('produced a realistic run: fills, partial fills, cancels, denials, round trips, an open order', () => {
    const types = new Set(events.map((e) => e.type));
    for (const type of [
      'OrderFilled',
      'OrderPartiallyFilled',
      'OrderCancelled',
      'OrderDenied',
      'PositionClosed',
    ])
      expect(types, type).toContain(type);
    expect([...expectedOrders().values()].some((o) => isOpen(o.status))).toBe(true);
    expect(valuations).toHaveLength(6);
  });

  it('lists orders with the status, quantities and reasons of the log, oldest first', async () => {
    const expected = expectedOrders();
    const { orders: listed, nextCursor } = await get<{ orders: Json[]; nextCursor: null }>(
      `/orders?portfolioId=${PORTFOLIO}&limit=1000`,
    );
    expect(nextCursor).toBeNull();
    expect(listed.map((o) => o['clientOrderId'])).toEqual([...expected.keys()]);
    for (const o of listed) {
      const want = expected.get(o['clientOrderId'] as string)!;
      expect(o).toMatchObject({
        portfolioId: PORTFOLIO,
        strategyId: want.request.strategyId,
        symbol: want.request.symbol,
        side: want.request.side,
        type: 'market',
        quantity: want.quantity,
        status: want.status,
        filledQuantity: want.filledQuantity,
        averagePrice: want.filledQuantity > 0 ? want.averagePrice : null,
        reason: want.reason,
        source: 'strategy',
        actor: ENGINE,
        submittedAt: new Date(want.submittedAt).toISOString(),
        updatedAt: new Date(want.updatedAt).toISOString(),
      });
    }
    const denied = [...expected.values()].filter((o) => o.status === 'denied');
    const onlyDenied = await get<{ orders: Json[] }>('/orders?status=denied');
    expect(onlyDenied.orders.map((o) => o['clientOrderId'])).toEqual(
      denied.map((o) => o.request.clientOrderId),
    );
    expect(onlyDenied.orders[0]?.['reason']).toBe('TEST_LIMIT: rule=every-7th-minute');
  });

  it('filters orders by strategy, symbol, source and time, and pages with the cursor', async () => {
    const all = [...expectedOrders().values()];
    const ofA = await get<{ orders: Json[] }>(`/orders?strategyId=${strategyA}&limit=1000`);
    expect(ofA.orders).toHaveLength(all.filter((o) => o.request.strategyId === strategyA).length);
    const eth = await get<{ orders: Json[] }>('/orders?symbol=ETHUSDT&limit=1000');
    expect(eth.orders.map((o) => o['strategyId'])).toEqual(
      all.filter((o) => o.request.symbol === 'ETHUSDT').map(() => strategyB),
    );
    expect((await get<{ orders: Json[] }>('/orders?source=manual')).orders).toEqual([]);
    const from = FROM + 100 * MINUTE;
    const to = FROM + 200 * MINUTE;
    const inRange = await get<{ orders: Json[] }>(
      `/orders?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&limit=1000`,
    );
    expect(inRange.orders.map((o) => o['clientOrderId'])).toEqual(
      all
        .filter((o) => o.submittedAt >= from && o.submittedAt < to)
        .map((o) => o.request.clientOrderId),
    );

    const seen: unknown[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { orders: Json[]; nextCursor: string | null } = await get(
        `/orders?limit=7${cursor ? `&after=${cursor}` : ''}`,
      );
      expect(page.orders.length).toBeLessThanOrEqual(7);
      seen.push(...page.orders.map((o) => o['clientOrderId']));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 50);
    expect(seen).toEqual(all.map((o) => o.request.clientOrderId));
    expect(pages).toBe(Math.ceil(all.length / 7));

    for (const query of ['status=open', 'source=robot', 'limit=0', 'from=yesterday', 'extra=1']) {
      const bad = await call('viewer', 'GET', `/orders?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });

  it('shows one order with its fills, and lists fills with filters and pages', async () => {
    const fillEvents = events.filter(
      (e) => e.type === 'OrderFilled' || e.type === 'OrderPartiallyFilled',
    );
    const fillsOf = (id: string) =>
      fillEvents.filter((e) => (e.data as { clientOrderId: string }).clientOrderId === id);
    const partial = [...expectedOrders().values()].find(
      (o) => o.status === 'filled' && o.fillIds.length > 1,
    )!;
    const id = partial.request.clientOrderId;
    const detail = await get(`/orders/${id}`);
    expect(detail).toMatchObject({ clientOrderId: id, status: 'filled' });
    const fills = detail['fills'] as Json[];
    expect(fills.map((f) => f['fillId'])).toEqual(partial.fillIds);
    const first = fillsOf(id)[0]!;
    expect(fills[0]).toMatchObject({
      fillId: first.data.fill.fillId,
      price: first.data.fill.price,
      quantity: first.data.fill.quantity,
      notional: first.data.fill.price * first.data.fill.quantity,
      fee: first.data.fill.fee,
      feeCurrency: 'USDT',
      liquidity: first.data.fill.liquidity,
      slippage: first.data.fill.slippage,
      time: new Date(first.data.time).toISOString(),
    });
    const missing = await call('viewer', 'GET', '/orders/nope-1');
    expect(missing.status).toBe(404);
    expect(missing.body['code']).toBe('ORDER_NOT_FOUND');

    const all = await get<{ fills: Json[] }>('/fills?limit=1000');
    expect(all.fills.map((f) => f['fillId'])).toEqual(
      fillEvents.map((e) => (e.data as { fill: { fillId: string } }).fill.fillId),
    );
    const ofB = await get<{ fills: Json[] }>(`/fills?strategyId=${strategyB}&limit=1000`);
    expect(ofB.fills.every((f) => f['symbol'] === 'ETHUSDT')).toBe(true);
    expect(ofB.fills.length).toBe(all.fills.filter((f) => f['strategyId'] === strategyB).length);
    const byOrder = await get<{ fills: Json[] }>(`/fills?clientOrderId=${id}`);
    expect(byOrder.fills).toEqual(fills);
    const page1 = await get<{ fills: Json[]; nextCursor: string }>('/fills?limit=10');
    const page2 = await get<{ fills: Json[] }>(`/fills?limit=10&after=${page1.nextCursor}`);
    expect([...page1.fills, ...page2.fills]).toEqual(all.fills.slice(0, 20));
  });

  it("lists the stepper's round trips as trades", async () => {
    const want: ClosedTrade[] = closedTrades(events);
    const closing = events.filter((e) => e.type === 'PositionClosed');
    const { trades } = await get<{ trades: Json[] }>('/trades?limit=1000');
    expect(trades.map(({ position: _position, ...t }) => t)).toEqual(
      want.map((t, index) => ({
        ...t,
        fillId: closing[index]!.data.fillId,
        clientOrderId: closing[index]!.data.clientOrderId,
        portfolioId: PORTFOLIO,
        openedAt: new Date(t.openedAt).toISOString(),
        closedAt: new Date(t.closedAt).toISOString(),
      })),
    );
    expect(want.length).toBeGreaterThan(2);
    const ofA = await get<{ trades: Json[] }>(`/trades?strategyId=${strategyA}`);
    expect(ofA.trades).toHaveLength(want.filter((t) => t.strategyId === strategyA).length);
  });

  it("shows positions as the stepper holds them, marked at the last valuation's closes", async () => {
    const final = valuations.at(-1)!;
    const expected = state.account.positions.map((p) => {
      const marked = final.positions.find((v) => v.strategyId === p.strategyId)!;
      return {
        portfolioId: PORTFOLIO,
        strategyId: p.strategyId,
        symbol: p.symbol,
        quantity: p.quantity,
        averageEntryPrice: p.averageEntryPrice,
        markPrice: marked.markPrice,
        unrealizedPnl: marked.unrealizedPnl,
        realizedPnl: p.realizedPnl,
        feesPaid: p.feesPaid,
        updatedAt: new Date(final.time).toISOString(),
      };
    });
    const sorted = (list: Json[]) =>
      [...list].sort((a, b) => String(a['strategyId']).localeCompare(String(b['strategyId'])));
    // The last valuation came after the last fill, so it is the positions' latest word.
    const { positions: withFlat } = await get<{ positions: Json[] }>('/positions?includeFlat=true');
    expect(withFlat).toEqual(sorted(expected));
    const { positions } = await get<{ positions: Json[] }>('/positions');
    expect(positions).toEqual(sorted(expected.filter((p) => p.quantity !== 0)));
    expect(positions.length).toBeGreaterThan(0);
    const { positions: ofB } = await get<{ positions: Json[] }>(
      `/positions?strategyId=${strategyB}&includeFlat=true`,
    );
    expect(ofB.map((p) => p['symbol'])).toEqual(['ETHUSDT']);
  });

  it('summarizes the portfolio, its equity series and the PnL of each strategy', async () => {
    const final = valuations.at(-1)!;
    const portfolio = await get(`/portfolios/${PORTFOLIO}`);
    expect(portfolio).toMatchObject({
      portfolioId: PORTFOLIO,
      currency: 'USDT',
      cash: state.account.cash,
      equity: final.equity,
      highWaterMark: Math.max(...valuations.map((v) => v.equity)),
      valuedAt: new Date(final.time).toISOString(),
      unrealizedPnl: final.unrealizedPnl,
    });
    expect(portfolio['feesPaid']).toBeCloseTo(state.account.feesPaid, 8);
    expect(portfolio['realizedPnl']).toBeCloseTo(final.realizedPnl, 8);
    const strategies = portfolio['strategies'] as Json[];
    expect(strategies.map((s) => s['strategyId'])).toEqual([strategyA, strategyB].sort());
    for (const s of strategies) {
      const p = state.account.positions.find((q) => q.strategyId === s['strategyId'])!;
      const marked = final.positions.find((q) => q.strategyId === s['strategyId'])!;
      expect(s['realizedPnl']).toBeCloseTo(p.realizedPnl, 8);
      expect(s['unrealizedPnl']).toBeCloseTo(marked.unrealizedPnl, 8);
      expect(s['feesPaid']).toBeCloseTo(p.feesPaid, 8);
      expect(s['netPnl']).toBeCloseTo(p.realizedPnl + marked.unrealizedPnl - p.feesPaid, 8);
      expect(s['trades']).toBe(
        closedTrades(events).filter((t) => t.strategyId === s['strategyId']).length,
      );
    }
    const sum = (key: string) => strategies.reduce((total, s) => total + (s[key] as number), 0);
    expect(sum('netPnl')).toBeCloseTo(portfolio['netPnl'] as number, 6);

    const pnl = await get<{ portfolios: Json[]; strategies: Json[] }>('/pnl');
    expect(pnl.portfolios).toEqual([(({ strategies: _, ...rest }) => rest)(portfolio)]);
    expect(pnl.strategies).toEqual(strategies);
    const ofA = await get<{ strategies: Json[] }>(`/pnl?strategyId=${strategyA}`);
    expect(ofA.strategies.map((s) => s['strategyId'])).toEqual([strategyA]);
    const listed = await get<{ portfolios: Json[] }>('/portfolios');
    expect(listed.portfolios.map((p) => p['portfolioId'])).toEqual([PORTFOLIO]);

    const series = await get<{ points: Json[]; nextCursor: null }>(
      `/portfolios/${PORTFOLIO}/equity`,
    );
    expect(series.points).toEqual(
      valuations.map((v) => ({
        time: new Date(v.time).toISOString(),
        equity: v.equity,
        cash: v.cash,
      })),
    );
    // Valued every 50 minutes: downsampled to 4 hours, the last valuation of each 4 hours.
    const coarse = await get<{ points: Json[] }>(`/portfolios/${PORTFOLIO}/equity?interval=4h`);
    const lastOfBucket = new Map<number, PortfolioValuedData>();
    for (const v of valuations) lastOfBucket.set(Math.floor(v.time / (4 * 3_600_000)), v);
    expect(coarse.points.map((p) => p['time'])).toEqual(
      [...lastOfBucket.values()].map((v) => new Date(v.time).toISOString()),
    );
    expect(coarse.points.length).toBeLessThan(valuations.length);
    const page = await get<{ points: Json[]; nextCursor: string }>(
      `/portfolios/${PORTFOLIO}/equity?limit=2`,
    );
    const rest = await get<{ points: Json[] }>(
      `/portfolios/${PORTFOLIO}/equity?after=${page.nextCursor}&to=${new Date(valuations[4]!.time).toISOString()}`,
    );
    expect([...page.points, ...rest.points]).toEqual(series.points.slice(0, 4));
    const unknown = await call('viewer', 'GET', '/portfolios/paper-7m/equity');
    expect(unknown.status).toBe(404);
    expect(unknown.body['code']).toBe('PORTFOLIO_NOT_FOUND');
  });

  it('keeps the live positions and portfolio in Redis, equal to the read model', async () => {
    const prefix = redis.prefix;
    const generation = Number(
      (await redis.redis.get(activeGenerationKey(prefix, 'live_positions'))) ?? '1',
    );
    const data = redisViewKeys(prefix, 'live_positions', generation).data;
    const hash = await redis.redis.hgetall(`${data}positions:${PORTFOLIO}`);
    const final = valuations.at(-1)!;
    expect(Object.keys(hash).sort()).toEqual(
      final.positions.map((p) => livePositionField(p.strategyId, p.symbol)).sort(),
    );
    const { positions } = await get<{ positions: Json[] }>('/positions?includeFlat=true');
    for (const p of final.positions) {
      const live = JSON.parse(hash[livePositionField(p.strategyId, p.symbol)]!) as Json;
      expect(live).toEqual({ ...p, updatedAt: new Date(final.time).toISOString() });
      const read = positions.find((q) => q['strategyId'] === p.strategyId)!;
      for (const key of ['quantity', 'averageEntryPrice', 'markPrice', 'unrealizedPnl'])
        expect(live[key], key).toBe(read[key]);
    }
    const portfolio = await redis.redis.hgetall(`${data}portfolio:${PORTFOLIO}`);
    expect(portfolio).toMatchObject({
      currency: 'USDT',
      equity: String(final.equity),
      cash: String(final.cash),
      valuedAt: new Date(final.time).toISOString(),
      cycle: '6',
    });
    expect(Number(portfolio['pnl'])).toBeCloseTo(
      final.realizedPnl + final.unrealizedPnl - final.feesPaid,
      8,
    );
  });

  it('lets every role read and only the permitted roles order and cancel', async () => {
    const filled = [...expectedOrders().values()].find((o) => o.status === 'filled')!;
    const body = { strategyId: strategyA, symbol: 'BTCUSDT', side: 'buy', type: 'market' };
    for (const role of ROLES) {
      expect((await call(role, 'GET', '/orders?limit=1')).status, role).toBe(200);
      expect((await call(role, 'GET', `/portfolios/${PORTFOLIO}`)).status, role).toBe(200);
      // An invalid order (no quantity) passes authorization only for roles with orders:write.
      const placed = await call(role, 'POST', '/orders', body);
      expect(placed.status, role).toBe(allows(role, 'orders:write') ? 400 : 403);
      const cancelled = await call(role, 'DELETE', `/orders/${filled.request.clientOrderId}`);
      expect(cancelled.status, role).toBe(allows(role, 'orders:cancel') ? 409 : 403);
    }
    expect(allows('risk_officer', 'orders:cancel')).toBe(true);
    expect(allows('viewer', 'orders:write')).toBe(false);
    expect((await call('revoked', 'GET', '/orders')).status).toBe(401);
    const openapi = (await (await api.request('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { tags?: string[] }>>;
    };
    expect(openapi.paths['/api/v1/orders/{clientOrderId}']?.['delete']?.tags).toEqual(['trading']);
    expect(Object.keys(openapi.paths)).toContain('/api/v1/portfolios/{portfolioId}/equity');
  });

  it('refuses bad manual orders with a specific code and writes nothing', async () => {
    const head = await runtime.eventStore.headPosition();
    const order = {
      strategyId: strategyA,
      symbol: 'BTCUSDT',
      side: 'buy',
      type: 'market',
      quantity: 0.01,
    };
    const refused = async (changes: Json, status: number, code: string): Promise<Json> => {
      const answer = await call('trader', 'POST', '/orders', { ...order, ...changes });
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.body['code']).toBe(code);
      return answer.body;
    };
    const noLimit = await refused({ type: 'limit' }, 422, 'INVALID_ORDER');
    expect(noLimit['errors']).toEqual([
      { path: 'body.limitPrice', message: 'required for a limit order' },
    ]);
    const strayStop = await refused({ stopPrice: 60_000 }, 422, 'INVALID_ORDER');
    expect((strayStop['errors'] as Json[])[0]?.['path']).toBe('body.stopPrice');
    await refused({ type: 'stop' }, 422, 'INVALID_ORDER');
    await refused({ quantity: -1 }, 400, 'VALIDATION_FAILED');
    await refused({ side: 'short' }, 400, 'VALIDATION_FAILED');
    await refused({ strategyId: 'no-such-strategy' }, 404, 'STRATEGY_NOT_FOUND');
    await refused({ strategyId: draft }, 409, 'STRATEGY_NOT_TRADING');
    const other = await refused({ symbol: 'ETHUSDT' }, 409, 'SYMBOL_NOT_TRADED');
    expect(other['detail']).toContain('BTCUSDT');
    expect(await runtime.eventStore.headPosition()).toBe(head);
  });

  it('puts a manual order on the desk with its actor, once per Idempotency-Key', async () => {
    const order = {
      strategyId: strategyB,
      symbol: 'ETHUSDT',
      side: 'buy',
      type: 'limit',
      quantity: 0.5,
      limitPrice: 3000,
    };
    const headers = { 'idempotency-key': 'manual-order-0001' };
    const first = await call('trader', 'POST', '/orders', order, headers);
    const answer = ok(first, 202);
    const clientOrderId = answer['clientOrderId'] as string;
    expect(clientOrderId).toMatch(/^m-[0-9a-f-]{36}$/);
    expect(answer).toMatchObject({
      portfolioId: PORTFOLIO,
      status: 'requested',
      streamId: deskStream(PORTFOLIO),
    });
    expect(first.headers.get('location')).toBe(`/api/v1/orders/${clientOrderId}`);

    const again = ok(await call('trader', 'POST', '/orders', order, headers), 202);
    expect(again['clientOrderId']).toBe(clientOrderId);
    const reused = await call('trader', 'POST', '/orders', { ...order, quantity: 1 }, headers);
    expect(reused.status).toBe(422);
    expect(reused.body['code']).toBe('IDEMPOTENCY_KEY_REUSED');
    // Another key, another order.
    const second = ok(await call('admin', 'POST', '/orders', order, headers), 202);
    expect(second['clientOrderId']).not.toBe(clientOrderId);

    const deskEvents = await runtime.eventStore.readStream(deskStream(PORTFOLIO));
    const mine = deskEvents.filter(
      (e) =>
        (e.data as { order?: { clientOrderId: string } }).order?.clientOrderId === clientOrderId,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]!.type).toBe('ManualOrderRequested');
    expect(mine[0]!.metadata.actor).toMatch(/^apikey:\w+\(test-trader\)$/);
    expect(mine[0]!.position.toString()).toBe(answer['position']);
    expect(mine[0]!.data).toMatchObject({
      order: {
        clientOrderId,
        portfolioId: PORTFOLIO,
        strategyId: strategyB,
        symbol: 'ETHUSDT',
        side: 'buy',
        type: 'limit',
        quantity: 0.5,
        limitPrice: 3000,
        stopPrice: null,
        reduceOnly: false,
      },
    });
    // The audit API folds the desk stream with its aggregate.
    const folded = await call('auditor', 'GET', `/audit/streams/${deskStream(PORTFOLIO)}/state`);
    expect(folded.status, JSON.stringify(folded.body)).toBe(200);
    expect(JSON.stringify(folded.body)).toContain(clientOrderId);

    // Not in the order read model until the engine takes it in.
    expect((await call('viewer', 'GET', `/orders/${clientOrderId}`)).status).toBe(404);
    // The engine's answer (written here by hand): the order becomes a manual order.
    const { order: request, requestedAt } = mine[0]!.data as {
      order: JsonObject;
      requestedAt: number;
    };
    const written = await runtime.eventStore.appendToStream(orderStream(clientOrderId), [
      {
        type: 'OrderSubmitted',
        data: { ...request, time: requestedAt },
        metadata: { actor: ENGINE },
      },
      {
        type: 'OrderAccepted',
        data: {
          clientOrderId,
          venueOrderId: 'paper-999',
          quantity: 0.5,
          limitPrice: 3000,
          stopPrice: null,
          time: requestedAt,
        },
        metadata: { actor: ENGINE },
      },
    ]);
    const manual = await get<{ orders: Json[] }>(
      `/orders?source=manual&minPosition=${written.position}`,
    );
    expect(manual.orders.map((o) => [o['clientOrderId'], o['status'], o['source']])).toEqual([
      [clientOrderId, 'accepted', 'manual'],
    ]);

    // Cancel: a risk officer may; the desk records it once, with who asked.
    const cancel = ok(
      await call('risk_officer', 'DELETE', `/orders/${clientOrderId}`, { reason: 'too big' }),
      202,
    );
    expect(cancel).toMatchObject({ clientOrderId, status: 'cancel_requested' });
    ok(await call('trader', 'DELETE', `/orders/${clientOrderId}?reason=again`), 202);
    const cancels = (await runtime.eventStore.readStream(deskStream(PORTFOLIO))).filter(
      (e) => e.type === 'ManualCancelRequested',
    );
    expect(cancels).toHaveLength(1);
    expect(cancels[0]!.data).toMatchObject({ clientOrderId, reason: 'too big' });
    expect(cancels[0]!.metadata.actor).toMatch(/\(test-risk_officer\)$/);
  });

  it('cancels only open orders: 404 unknown, 409 ORDER_NOT_OPEN', async () => {
    const all = [...expectedOrders().values()];
    const head = await runtime.eventStore.headPosition();
    for (const status of ['filled', 'denied', 'cancelled'] as const) {
      const order = all.find((o) => o.status === status)!;
      const answer = await call('trader', 'DELETE', `/orders/${order.request.clientOrderId}`);
      expect(answer.status, status).toBe(409);
      expect(answer.body['code']).toBe('ORDER_NOT_OPEN');
      expect(answer.body['detail']).toContain(status);
    }
    const unknown = await call('trader', 'DELETE', '/orders/m-unknown');
    expect(unknown.status).toBe(404);
    expect(unknown.body['code']).toBe('ORDER_NOT_FOUND');
    expect(await runtime.eventStore.headPosition()).toBe(head);

    // The strategy's order still open at the end of the run can be cancelled by hand.
    const open = all.find((o) => isOpen(o.status))!;
    ok(await call('trader', 'DELETE', `/orders/${open.request.clientOrderId}`), 202);
  });

  it('carries PortfolioValued on the `positions` WebSocket channel', async () => {
    const ws = new WebSocket(`${api.server.url.replace('http', 'ws')}/ws`, {
      headers: { authorization: `Bearer ${api.tokens.viewer}` },
    });
    const frames: Json[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (data: Buffer) => {
      frames.push(JSON.parse(data.toString('utf8')) as Json);
      wake?.();
    });
    const next = async (match: (frame: Json) => boolean): Promise<Json> => {
      for (;;) {
        const found = frames.find(match);
        if (found) return found;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            reject(new Error(`no matching frame; got ${JSON.stringify(frames)}`));
          }, 10_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'positions' }));
    await next((f) => f['type'] === 'subscribed');
    const last = valuations.at(-1)!;
    const valued = { ...last, time: last.time + MINUTE, cycle: last.cycle + 1 };
    const written = await runtime.eventStore.appendToStream(`position-${PORTFOLIO}`, [
      { type: 'PortfolioValued', data: valued, metadata: { actor: ENGINE } },
    ]);
    const frame = await next((f) => f['type'] === 'event');
    expect(frame).toMatchObject({
      channel: 'positions',
      event: {
        streamId: `position-${PORTFOLIO}`,
        type: 'PortfolioValued',
        position: written.position.toString(),
        data: valued,
      },
    });
    ws.close();
    const series = await get<{ points: Json[] }>(
      `/portfolios/${PORTFOLIO}/equity?minPosition=${written.position}`,
    );
    expect(series.points.at(-1)).toEqual({
      time: new Date(valued.time).toISOString(),
      equity: valued.equity,
      cash: valued.cash,
    });
  });

  it('rebuilds into a new schema with the very same rows', async () => {
    await caughtUp();
    const tables: [string, string][] = [
      ['orders', 'client_order_id'],
      ['fills', 'fill_id'],
      ['positions', 'portfolio_id, strategy_id, symbol'],
      ['trades', 'fill_id'],
      ['portfolios', 'portfolio_id'],
      ['portfolio_equity', 'portfolio_id, time'],
    ];
    const checksums = async () =>
      Promise.all(
        tables.map(([table, orderBy]) =>
          tableChecksum(runtime.pool, `qcat_read.${table}`, orderBy),
        ),
      );
    const before = await checksums();
    expect(before.every((c) => c.rows > 0)).toBe(true);
    const rebuilt = await new PostgresTarget(runtime.pool, tradingProjection).rebuild(
      runtime.eventStore,
    );
    expect(rebuilt.generation).toBe(2);
    expect(await checksums()).toEqual(before);
  });

  it('answers the order list from the read-model cache, never stale after a change', async () => {
    await caughtUp();
    const head = await runtime.eventStore.headPosition();
    const read = async (path: string) => {
      const response = await api.request('GET', `/api/v1${path}`, { token: api.tokens.viewer });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const orders = (JSON.parse(text) as { orders: Json[] }).orders;
      return {
        cache: response.headers.get('x-qcat-read-cache'),
        text,
        ids: orders.map((o) => o['clientOrderId'] as string),
        orders,
      };
    };
    // A hit with minPosition=head: the cache has heard of every change up to the head.
    const warm = await until(
      () => read(`/orders?limit=1&minPosition=${head.toString()}`),
      (r) => r.cache === 'hit',
    );
    expect(warm.cache).toBe('hit');

    const path = '/orders?source=manual&limit=500';
    const first = await read(path);
    expect(first.cache).toBe('miss');
    const second = await read(path);
    expect(second.cache).toBe('hit');
    expect(second.text).toBe(first.text);

    // A manual order through the API; the engine (by hand here, PAPER_TRADING is off) takes it in.
    const placed = ok(
      await call('trader', 'POST', '/orders', {
        strategyId: strategyA,
        symbol: 'BTCUSDT',
        side: 'sell',
        type: 'limit',
        quantity: 0.01,
        limitPrice: 90_000,
      }),
      202,
    );
    const clientOrderId = placed['clientOrderId'] as string;
    const requested = (await runtime.eventStore.readStream(deskStream(PORTFOLIO))).find(
      (e) => e.position.toString() === placed['position'],
    )!;
    const { order: request, requestedAt } = requested.data as {
      order: JsonObject;
      requestedAt: number;
    };
    expect(request['clientOrderId']).toBe(clientOrderId);
    const written = await runtime.eventStore.appendToStream(orderStream(clientOrderId), [
      {
        type: 'OrderSubmitted',
        data: { ...request, time: requestedAt },
        metadata: { actor: ENGINE },
      },
    ]);
    // Reading one's own write: never the answer cached before it.
    const own = await read(`${path}&minPosition=${written.position.toString()}`);
    expect(own.cache).toBe('miss');
    expect(own.ids).toEqual([...first.ids, clientOrderId]);
    expect(own.orders.at(-1)).toMatchObject({ clientOrderId, source: 'manual', side: 'sell' });
    // The plain URL drops its cached answer once the change is projected, then caches the new one.
    const plain = await until(
      () => read(path),
      (r) => r.ids.includes(clientOrderId) && r.cache === 'hit',
    );
    expect(plain.ids).toEqual([...first.ids, clientOrderId]);
    expect(plain.cache).toBe('hit');
  });

  it('takes an order placed right after start-paper, before the strategies read model caught up', async () => {
    const id = await strategy('sma_crossover', 'BTCUSDT', { fastPeriod: 5, slowPeriod: 20 }, true);
    const request = ok(await call('trader', 'POST', `/strategies/${id}/submit`))[
      'approvalRequestId'
    ] as string;
    ok(await call('risk_officer', 'POST', `/approvals/${request}/approve`));
    await runtime.projections.waitForHead('strategies', 5000);
    // Hold the strategies read model back: its writes wait for this lock, its reads do not.
    const holder = await runtime.pool.connect();
    let order: Promise<{ status: number; body: Json }> | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE qcat_read.strategies IN EXCLUSIVE MODE');
      ok(await call('trader', 'POST', `/strategies/${id}/start-paper`));
      const status = await holder.query<{ status: string }>(
        'SELECT status FROM qcat_read.strategies WHERE strategy_id = $1',
        [id],
      );
      expect(status.rows[0]?.status).toBe('approved');
      order = call('trader', 'POST', '/orders', {
        strategyId: id,
        symbol: 'BTCUSDT',
        side: 'buy',
        type: 'limit',
        quantity: 0.01,
        limitPrice: 1_000,
      });
      // Let the route read the stale row before the read model may move on.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    const answer = await order;
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  });

  it('leaves archived orders and fills out of the lists, and shows them with history=true (ADR 032)', async () => {
    await caughtUp();
    type Listed = { orders?: Json[]; fills?: Json[] };
    const ids = (rows: Json[] | undefined, key: string) =>
      (rows ?? []).map((r) => r[key] as string);
    const before = await get<Listed>('/orders?limit=1000');
    const fillsBefore = await get<Listed>('/fills?limit=1000');
    // The stepper's run is in 2025: every order it closed is past a 30-day horizon.
    const moved = await archiveTrading(runtime.pool, new Date(Date.now() - 30 * 86_400_000));
    expect(moved.moved.orders).toBeGreaterThan(0);
    expect(moved.moved.fills).toBeGreaterThan(0);
    // URLs not asked before: the answer cache cannot hold them.
    const recent = await get<Listed>('/orders?limit=999');
    const closed = (before.orders ?? []).filter((o) =>
      ['filled', 'cancelled', 'rejected', 'denied'].includes(o['status'] as string),
    );
    expect(ids(recent.orders, 'clientOrderId')).toEqual(
      ids(before.orders, 'clientOrderId').filter(
        (id) => !ids(closed, 'clientOrderId').includes(id),
      ),
    );
    const all = await get<Listed>('/orders?limit=999&history=true');
    expect(all.orders).toEqual(before.orders);
    expect((await get<Listed>('/fills?limit=999')).fills?.length).toBeLessThan(
      fillsBefore.fills?.length ?? 0,
    );
    expect((await get<Listed>('/fills?limit=999&history=true')).fills).toEqual(fillsBefore.fills);
    // One archived order, with its fills, by id.
    const archived = closed.find((o) => o['status'] === 'filled')!;
    const one = await get(`/orders/${archived['clientOrderId'] as string}`);
    expect(one).toMatchObject({ clientOrderId: archived['clientOrderId'], status: 'filled' });
    expect((one['fills'] as Json[]).length).toBeGreaterThan(0);
  });
});
