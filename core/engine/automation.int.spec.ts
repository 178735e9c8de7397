import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { ensureEngineSchema, PostgresSnapshotStore } from '../adapters/postgres/engine-store.js';
import { ensureMarketSchema, MarketDataStore } from '../adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../adapters/postgres/postgres-event-store.js';
import { decisionStream } from '../capabilities/decisions.js';
import type { EngineAutomation } from '../capabilities/engine.js';
import type { JsonObject, RecordedEvent } from '../eventstore/event-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import { evolveSnapshot, parseRiskEvent } from '../risk/aggregate.js';
import { emptySnapshot } from '../risk/checks.js';
import { exitsStream } from '../risk/common.js';
import type { ExitRules } from '../risk/exits.js';
import { deskStream } from './desk.js';
import { PaperEngine, type StrategyBook } from './engine.js';

/**
 * Capabilities 4, 5 and 9 run inside the paper engine; the automation policy's switches reach it
 * through `automation` (docs/adr/021). Given a switch off, when the capability would act, then it
 * does not, and a hold naming the switch is recorded once, as `automation:<name>`.
 */
const ORIGIN = Date.UTC(2026, 4, 4);
const MINUTE = 60_000;
const PORTFOLIO = 'paper-1m';
const instruments = DEFAULT_INSTRUMENTS.filter((i) => ['BTCUSDT', 'ETHUSDT'].includes(i.symbol));
const candles = [
  ...generateCandles({ seed: 7, from: ORIGIN, to: ORIGIN + 200 * MINUTE, instruments }),
];
/** Never enters on its own: positions come from the desk. */
const BOOKS: StrategyBook[] = [
  {
    strategyId: 'dc-1',
    status: 'paper',
    kind: 'donchian_breakout',
    parameters: { entryPeriod: 500, exitPeriod: 400, positionFraction: 0.5 },
    symbols: ['BTCUSDT', 'ETHUSDT'],
    capital: 20_000,
  },
];
const NONE: ExitRules = { stopLoss: null, takeProfit: null, trailing: null, atrStop: null };

describe('the automation policy in the paper engine (capabilities 4, 5, 9)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore;
  let engine: PaperEngine;
  let switches: EngineAutomation = { balanceSizing: false, autoExits: false, dynamicExits: false };

  const all = (): Promise<RecordedEvent[]> => store.readAll({ maxCount: 1_000_000 });
  const runThrough = async (bar: number) => {
    while (engine.status().cursor < ORIGIN + bar * MINUTE) if ((await engine.tick()) === 0) break;
  };
  const buy = (id: string, symbol: string, quantity: number) =>
    store.appendToStream(
      deskStream(PORTFOLIO),
      [
        {
          type: 'ManualOrderRequested',
          data: {
            order: {
              clientOrderId: id,
              portfolioId: PORTFOLIO,
              strategyId: 'dc-1',
              symbol,
              side: 'buy',
              type: 'market',
              quantity,
              limitPrice: null,
              stopPrice: null,
              reduceOnly: false,
            },
            requestedAt: 0,
          },
          metadata: { actor: 'apikey:trader-1' },
        },
      ],
      { expectedRevision: 'any' },
    );
  const rules = (symbol: string, set: Partial<ExitRules>) =>
    store.appendToStream(
      exitsStream(PORTFOLIO, 'dc-1', symbol),
      [
        {
          type: 'ExitRulesSet',
          data: {
            portfolioId: PORTFOLIO,
            strategyId: 'dc-1',
            symbol,
            rules: { ...NONE, ...set },
            by: { id: 'apikey:risk-1', role: 'risk_officer' },
            time: ORIGIN,
          },
          metadata: { actor: 'apikey:risk-1' },
        },
      ],
      { expectedRevision: 'any' },
    );
  const exitsOf = async (symbol: string) =>
    (await all()).filter(
      (e) => e.type === 'ExitTriggered' && (e.data as { symbol: string }).symbol === symbol,
    );
  const holds = async (manager: string) =>
    (await store.readStream(decisionStream(manager))).map((e) => ({
      actor: e.metadata.actor,
      ...(e.data as { command: string; reason: string; streamId: string }),
    }));

  beforeAll(async () => {
    database = await createTestDatabase('engine_automation');
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
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
      risk: {
        snapshot: async () => {
          const events = (await all()).filter((e) => e.streamId.startsWith('risk-'));
          let snapshot = emptySnapshot();
          for (const e of events)
            snapshot = evolveSnapshot(
              snapshot,
              parseRiskEvent({ type: e.type, data: e.data as JsonObject }),
            );
          return { snapshot, position: events.at(-1)?.position ?? -1n };
        },
      },
      allocations: {
        current: () =>
          Promise.resolve({
            proposalId: 'p1',
            weights: { 'dc-1': 0.2 },
            sizing: { enabled: true, band: 0.05 },
          }),
      },
      automation: { switches: () => Promise.resolve(switches) },
      startAfter: ORIGIN - MINUTE,
      batchSize: 2,
    });
  });
  afterAll(async () => {
    await store.close();
    await pool.end();
    await database.drop();
  });

  it('4 off: given an allocation asking for balance-driven sizing, the engine does not size by balance and records why', async () => {
    await runThrough(3);
    const cycles = (await store.readStream(`engine-${PORTFOLIO}`)).map(
      (e) => (e.data as { config: JsonObject | null }).config,
    );
    expect(cycles[0]).not.toHaveProperty('sizing');
    const [held, ...more] = await holds('sizing');
    expect(more).toEqual([]);
    expect(held).toMatchObject({
      actor: 'automation:sizing',
      command: 'SizeByBalance',
      reason: expect.stringMatching(/^CAPABILITY_OFF: balance_sizing is switched off/) as string,
    });
  });

  it('5 off: given a position past its stop, no exit is placed; one hold names the switch and the level', async () => {
    await buy('m-btc', 'BTCUSDT', 0.01);
    await rules('BTCUSDT', { stopLoss: 0.0005, takeProfit: 0.0005 });
    await runThrough(40);
    expect(await exitsOf('BTCUSDT')).toEqual([]);
    const held = await holds('exits');
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({
      actor: 'automation:exits',
      command: 'RecordExit',
      streamId: exitsStream(PORTFOLIO, 'dc-1', 'BTCUSDT'),
      reason: expect.stringMatching(
        /^CAPABILITY_OFF: auto_exits is switched off .*\((STOP_LOSS|TAKE_PROFIT) at [\d.]+ not placed\)$/,
      ) as string,
    });
  });

  it('5 on again: the exit is placed on the next bars', async () => {
    switches = { balanceSizing: false, autoExits: true, dynamicExits: false };
    await runThrough(45);
    expect(await exitsOf('BTCUSDT')).toHaveLength(1);
  });

  it('9 off: given a trailing stop that would fire, the levels do not follow the price; one hold says so', async () => {
    await buy('m-eth', 'ETHUSDT', 0.1);
    await rules('ETHUSDT', { trailing: { activation: 0, distance: 0.0005 } });
    await runThrough(90);
    expect(await exitsOf('ETHUSDT')).toEqual([]);
    const trailing = (await holds('exits')).filter((h) => h.reason.includes('dynamic_exits'));
    expect(trailing).toHaveLength(1);
    expect(trailing[0]?.reason).toMatch(
      /^CAPABILITY_OFF: dynamic_exits is switched off .*\(TRAILING_STOP at [\d.]+ not placed\)$/,
    );
  });

  it('9 on: the trailing stop fires', async () => {
    switches = { balanceSizing: false, autoExits: true, dynamicExits: true };
    await runThrough(110);
    const [exit] = await exitsOf('ETHUSDT');
    expect((exit?.data as { kind: string }).kind).toBe('TRAILING_STOP');
  });
});
