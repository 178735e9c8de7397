import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { ensureEngineSchema, PostgresSnapshotStore } from '../adapters/postgres/engine-store.js';
import { ensureMarketSchema, MarketDataStore } from '../adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../adapters/postgres/postgres-event-store.js';
import type { Party } from '../approvals/approval.js';
import { QcatError } from '../errors.js';
import type { JsonObject, RecordedEvent } from '../eventstore/event-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import type { Candle } from '../market/types.js';
import { evolveSnapshot, parseRiskEvent } from '../risk/aggregate.js';
import { emptySnapshot } from '../risk/checks.js';
import { KILL_SWITCH_STREAM } from '../risk/common.js';
import { killSwitch } from '../risk/kill-switch.js';
import { orderStream } from '../trading/orders.js';
import { deskStream } from './desk.js';
import { ENGINE_ACTOR, PaperEngine, type RiskSource, type StrategyBook } from './engine.js';

const ORIGIN = Date.UTC(2026, 4, 4);
const MINUTE = 60_000;
const PORTFOLIO = 'paper-1m';
const CRASH = 200;
const TRADER = 'apikey:trader-1';
const RISK_OFFICER: Party = { id: 'apikey:risk-1', role: 'risk_officer' };
const instruments = DEFAULT_INSTRUMENTS.filter((i) => ['BTCUSDT', 'ETHUSDT'].includes(i.symbol));
const tick = (price: number) => Math.round(price * 100) / 100;

/** Synthetic bars with a flash crash on BTC at bar CRASH: −15% at the close, −20% intrabar. */
const candles: Candle[] = [
  ...generateCandles({ seed: 5, from: ORIGIN, to: ORIGIN + 320 * MINUTE, instruments }),
].map((candle) => {
  const bar = (candle.openTime - ORIGIN) / MINUTE;
  if (candle.symbol !== 'BTCUSDT' || bar < CRASH) return candle;
  if (bar === CRASH)
    return {
      ...candle,
      high: Math.max(candle.open, candle.high),
      low: tick(candle.low * 0.8),
      close: tick(candle.close * 0.85),
    };
  const scaled = (p: number) => tick(p * 0.85);
  return {
    ...candle,
    open: scaled(candle.open),
    high: scaled(candle.high),
    low: scaled(candle.low),
    close: scaled(candle.close),
  };
});

/** A channel breakout that never enters within the run: positions come from the desk only. */
const BOOKS: StrategyBook[] = [
  {
    strategyId: 'dc-1',
    status: 'paper',
    kind: 'donchian_breakout',
    parameters: { entryPeriod: 500, exitPeriod: 10, positionFraction: 0.5 },
    symbols: ['BTCUSDT', 'ETHUSDT'],
    capital: 20_000,
  },
];

describe('risk control in the paper engine: a flash crash', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore;
  let engine: PaperEngine;

  /** The risk streams folded, as the risk_snapshot read model does. */
  const riskSource: RiskSource = {
    snapshot: async () => {
      const events = (await store.readAll({ maxCount: 1_000_000 })).filter((e) =>
        e.streamId.startsWith('risk-'),
      );
      let snapshot = emptySnapshot();
      for (const e of events)
        snapshot = evolveSnapshot(
          snapshot,
          parseRiskEvent({ type: e.type, data: e.data as JsonObject }),
        );
      return { snapshot, position: events.at(-1)?.position ?? -1n };
    },
  };

  const desk = async (type: string, data: JsonObject, actor = TRADER) =>
    store.appendToStream(deskStream(PORTFOLIO), [{ type, data, metadata: { actor } }], {
      expectedRevision: 'any',
    });
  const order = (clientOrderId: string, extra: JsonObject): JsonObject => ({
    clientOrderId,
    portfolioId: PORTFOLIO,
    strategyId: 'dc-1',
    symbol: 'BTCUSDT',
    side: 'buy',
    type: 'market',
    quantity: 0,
    limitPrice: null,
    stopPrice: null,
    reduceOnly: false,
    ...extra,
  });
  const typesOf = async (id: string) =>
    (await store.readStream(orderStream(id))).map((e) => e.type);
  const all = async (): Promise<RecordedEvent[]> => store.readAll({ maxCount: 1_000_000 });
  /** Runs the engine until the cursor has passed `bar` (bars are stored up front). */
  const runThrough = async (bar: number) => {
    while (engine.status().cursor < ORIGIN + bar * MINUTE) if ((await engine.tick()) === 0) break;
  };

  beforeAll(async () => {
    database = await createTestDatabase('engine_risk');
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    // A dropped test database ends its connections: not an error here.
    pool.on('error', () => undefined);
    store = await PostgresEventStore.connect({ connectionString: database.url });
    await ensureMarketSchema(pool);
    await ensureEngineSchema(pool);
    const market = new MarketDataStore(pool);
    await market.upsertInstruments(instruments);
    await market.insertCandles(candles);
    engine = new PaperEngine({
      portfolioId: PORTFOLIO,
      timeframe: '1m',
      currency: 'USDT',
      initialCash: 100_000,
      store,
      candles: market,
      strategies: { strategies: () => Promise.resolve(BOOKS) },
      snapshots: new PostgresSnapshotStore(pool),
      risk: riskSource,
      startAfter: ORIGIN - MINUTE,
      batchSize: 2, // one bar time per round: the risk snapshot is re-read between bars
    });
  });
  afterAll(async () => {
    await store.close();
    await pool.end();
    await database.drop();
  });

  it('denies an entry over the share-of-equity limit with a coded reason', async () => {
    await runThrough(10);
    const price = candles.filter((c) => c.symbol === 'BTCUSDT')[10]?.close ?? 0;
    await desk('ManualOrderRequested', {
      order: order('m-big', { quantity: Math.floor((30_000 / price) * 1e5) / 1e5 }),
      requestedAt: 0,
    });
    await runThrough(11);
    expect(await typesOf('m-big')).toEqual(['OrderSubmitted', 'OrderDenied']);
    const denied = (await store.readStream(orderStream('m-big')))[1]?.data as { reason: string };
    expect(denied.reason).toMatch(/^POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: .*max=0\.2/);
  });

  it('takes a long position and rests a limit order before the crash', async () => {
    const price = candles.filter((c) => c.symbol === 'BTCUSDT')[12]?.close ?? 0;
    await desk('ManualOrderRequested', {
      order: order('m-long', { quantity: Math.floor((19_000 / price) * 1e5) / 1e5 }),
      requestedAt: 0,
    });
    await desk('ManualOrderRequested', {
      order: order('m-rest', { symbol: 'ETHUSDT', type: 'limit', quantity: 0.5, limitPrice: 100 }),
      requestedAt: 0,
    });
    await runThrough(CRASH - 1);
    expect(await typesOf('m-long')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderFilled']);
    expect(await typesOf('m-rest')).toEqual(['OrderSubmitted', 'OrderAccepted']);
    expect((await all()).some((e) => e.type === 'RiskTriggerFired')).toBe(false);
  });

  it('the crash fires the price breaker and the strategy drawdown breaker, by the engine', async () => {
    await runThrough(CRASH + 1);
    const fired = (await all()).filter((e) => e.type === 'RiskTriggerFired');
    const rules = fired.map((e) => (e.data as { rule: string; scopeId: string }).rule);
    expect(rules).toContain('price_breaker');
    expect(rules).toContain('strategy_drawdown');
    expect(fired.every((e) => e.metadata.actor === ENGINE_ACTOR)).toBe(true);
    const changed = (await all()).filter((e) => e.type === 'TradingStateChanged');
    expect(
      changed.map((e) => {
        const d = e.data as { scopeType: string; scopeId: string; to: string };
        return `${d.scopeType}:${d.scopeId}:${d.to}`;
      }),
    ).toEqual(expect.arrayContaining(['symbol:BTCUSDT:HALTED', 'strategy:dc-1:HALTED']));
    // Each names the reset its copy of the snapshot knew (none yet): one decided before a later
    // reset is ignored when folded (foldTradingState).
    expect(changed.map((e) => (e.data as { resetSeen?: unknown }).resetSeen)).toEqual(
      changed.map(() => null),
    );
  });

  it('while halted: new entries are denied, reduce-only orders and cancels go through', async () => {
    await desk('ManualOrderRequested', {
      order: order('m-more', { quantity: 0.01 }),
      requestedAt: 0,
    });
    await desk('ManualOrderRequested', {
      order: order('m-reduce', { side: 'sell', quantity: 0.01, reduceOnly: true }),
      requestedAt: 0,
    });
    await desk('ManualCancelRequested', {
      clientOrderId: 'm-rest',
      reason: 'MANUAL',
      requestedAt: 0,
    });
    await runThrough(CRASH + 3);
    expect(await typesOf('m-more')).toEqual(['OrderSubmitted', 'OrderDenied']);
    const reason = ((await store.readStream(orderStream('m-more')))[1]?.data as { reason: string })
      .reason;
    expect(reason).toMatch(/^TRADING_HALTED: /);
    expect(await typesOf('m-reduce')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderFilled']);
    expect(await typesOf('m-rest')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderCancelled']);
  });

  it('the kill switch, engaged by a risk officer, flattens every position and cancels resting orders', async () => {
    await desk('ManualOrderRequested', {
      order: order('m-rest2', {
        side: 'sell',
        type: 'limit',
        quantity: 0.01,
        limitPrice: 999_999,
        reduceOnly: true,
      }),
      requestedAt: 0,
    });
    await runThrough(CRASH + 4);
    expect(await typesOf('m-rest2')).toEqual(['OrderSubmitted', 'OrderAccepted']);
    const [engaged] = killSwitch.decide(
      { type: 'EngageKillSwitch', by: RISK_OFFICER, reason: 'flash crash', flatten: true, time: 1 },
      killSwitch.initialState(),
    );
    if (!engaged) throw new Error('no event');
    await store.appendToStream(KILL_SWITCH_STREAM, [
      { type: engaged.type, data: engaged.data, metadata: { actor: RISK_OFFICER.id } },
    ]);
    await runThrough(CRASH + 6);
    const flat = (await all()).filter(
      (e) => e.type === 'OrderFilled' && e.streamId.includes('-flat-'),
    );
    expect(flat.length).toBeGreaterThan(0);
    const position = engine.status().state?.account.positions.find((p) => p.symbol === 'BTCUSDT');
    expect(position?.quantity).toBe(0);
    expect(await typesOf('m-rest2')).toEqual(['OrderSubmitted', 'OrderAccepted', 'OrderCancelled']);
    const cancelled = (await store.readStream(orderStream('m-rest2')))[2]?.data as {
      reason: string;
    };
    expect(cancelled.reason).toMatch(/^KILL_SWITCH: /);
    // Still engaged: a new entry is denied.
    await desk('ManualOrderRequested', {
      order: order('m-after', { quantity: 0.01, symbol: 'ETHUSDT' }),
      requestedAt: 0,
    });
    await runThrough(CRASH + 8);
    expect(await typesOf('m-after')).toEqual(['OrderSubmitted', 'OrderDenied']);
  });

  it('a release needs an approved risk_reset request; the history names every actor', () => {
    const engagedState = { ...killSwitch.initialState(), engaged: true, flatten: true, since: 1 };
    let refused: unknown;
    try {
      killSwitch.decide(
        { type: 'ReleaseKillSwitch', requestId: 'r-1', approvers: [], time: 2 },
        engagedState,
      );
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(QcatError);
    expect((refused as QcatError).code).toBe('APPROVAL_INCOMPLETE');
    const released = killSwitch.decide(
      { type: 'ReleaseKillSwitch', requestId: 'r-1', approvers: [RISK_OFFICER], time: 2 },
      engagedState,
    );
    expect(released.map((e) => e.type)).toEqual(['KillSwitchReleased']);
  });

  it('records who did what: traders on their orders, the engine on triggers, the officer on the switch', async () => {
    const events = await all();
    const actorOf = (predicate: (e: RecordedEvent) => boolean) =>
      [...new Set(events.filter(predicate).map((e) => e.metadata.actor))].sort();
    expect(actorOf((e) => e.streamId === orderStream('m-more'))).toEqual([TRADER]);
    expect(
      actorOf((e) => e.type === 'RiskTriggerFired' || e.type === 'TradingStateChanged'),
    ).toEqual([ENGINE_ACTOR]);
    expect(actorOf((e) => e.type === 'KillSwitchEngaged')).toEqual([RISK_OFFICER.id]);
    expect(actorOf((e) => e.streamId.includes('-flat-'))).toEqual([ENGINE_ACTOR]);
  });

  it('replaying the whole write-ahead log with risk on reproduces every event: nothing new is written', async () => {
    const head = await store.headPosition();
    const replay = new PaperEngine({
      portfolioId: PORTFOLIO,
      timeframe: '1m',
      currency: 'USDT',
      initialCash: 100_000,
      store,
      candles: new MarketDataStore(pool),
      strategies: { strategies: () => Promise.resolve(BOOKS) },
      snapshots: { load: () => Promise.resolve(undefined), save: () => Promise.resolve() },
      risk: riskSource,
    });
    const cycles = await replay.recover();
    expect(cycles).toBe(engine.status().cycle + 1);
    expect(await store.headPosition()).toBe(head);
    expect(replay.status().state).toEqual(engine.status().state);
  });
});
