import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../../core/adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../../core/adapters/postgres/postgres-idempotency-store.js';
import { approvals, approvalStream, type Party } from '../../core/approvals/approval.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { CommandHandler } from '../../core/commands/command-handler.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import { eliminationStream } from '../../core/strategies/elimination.js';
import { strategies, strategyStream } from '../../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { automationGate } from '../gate.js';
import { ProcessManagerTarget, type Outcome } from '../process-manager-target.js';
import { eliminationManager, retirementRequestId, type EliminationReads } from './manager.js';
import { shadowEquity } from './shadow.js';

/**
 * Capability 7 end to end on a real log: switched off it only records what it would have done;
 * on, a breaching strategy is suspended (paused, its position closed through the desk), proposed
 * for retirement after the cooling period, and retired once a risk officer approves; a restart in
 * the middle repeats nothing.
 */
const OWNER: Party = { id: 'apikey:analyst-1', role: 'analyst' };
const RISK: Party = { id: 'apikey:risk-1', role: 'risk_officer' };
const DAY = 86_400_000;
const D0 = Date.UTC(2026, 2, 1, 0, 30);
const day = (n: number) => new Date(D0 + n * DAY);

describe('elimination (capability 7)', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  const outcomes: Outcome[] = [];
  const evaluations: string[] = [];
  /** The shadow figures the manager reads: −1% a day. */
  const reads: EliminationReads = {
    strategies: async () => {
      const { state } = await commands.load(strategies, strategyStream('s1'));
      return [
        {
          strategyId: 's1',
          status: state.status,
          kind: 'sma_crossover',
          parameters: {},
          symbols: ['BTCUSDT'],
          timeframe: '1h',
          capital: 10_000,
        },
      ];
    },
    openPositions: () =>
      Promise.resolve([{ portfolioId: 'paper-1h', symbol: 'BTCUSDT', quantity: 0.25 }]),
    equity: (_s, from, to) => {
      const n = Math.round((to.getTime() - from.getTime()) / DAY);
      const equity = [10_000];
      for (let i = 0; i < n; i++) equity.push((equity.at(-1) as number) * 0.99);
      const days = Array.from({ length: n }, (_, i) =>
        new Date(from.getTime() + (i + 1) * DAY).toISOString().slice(0, 10),
      );
      return Promise.resolve({ equity, days });
    },
  };
  /** A fresh manager and target, as after a restart. */
  const target = () =>
    new ProcessManagerTarget(store.pool, eliminationManager({ commands, reads }), commands, {
      eventStore: store,
      gate: automationGate(commands, () => Promise.resolve([])),
      onOutcome: (o) => outcomes.push(o),
      onEvaluation: (manager) => evaluations.push(manager),
    });
  const types = async (stream: string) => (await store.readStream(stream)).map((e) => e.type);

  beforeAll(async () => {
    database = await createTestDatabase('elimination');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    const as = { actor: OWNER.id };
    const s = strategyStream('s1');
    await commands.handle(
      strategies,
      s,
      {
        type: 'CreateStrategy',
        strategyId: 's1',
        owner: OWNER,
        name: 'loser',
        description: 'loses 1% a day',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        parameters: {},
        capitalRequest: 10_000,
      },
      as,
    );
    await commands.handle(
      strategies,
      s,
      { type: 'SubmitForReview', strategyId: 's1', requestId: 'a1', by: OWNER },
      as,
    );
    await commands.handle(
      strategies,
      s,
      { type: 'ApproveActivation', strategyId: 's1', requestId: 'a1', approvers: [RISK] },
      as,
    );
    await commands.handle(strategies, s, { type: 'StartPaperTrading', strategyId: 's1' }, as);
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ('automation.elimination', 'process', 1)`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('given the switch off, when the figures breach, then nothing changes and each command it would issue is held with the reason', async () => {
    const t = target();
    await t.tick(day(0));
    await t.tick(day(0)); // the day is decided once: the second tick evaluates nothing
    expect(evaluations).toEqual(['elimination']);
    expect(outcomes.map((o) => o.result)).toEqual(['held', 'held', 'held']);
    expect((await commands.load(strategies, strategyStream('s1'))).state.status).toBe('paper');
    expect(await types(eliminationStream('s1'))).toEqual([]);
    const held = (await store.readStream('autodecision-elimination')).map(
      (e) => e.data as Record<string, string>,
    );
    expect(held.map((h) => h['command'])).toEqual(['Suspend', 'PauseStrategy', 'RequestOrder']);
    expect(
      held.every((h) => h['reason']?.startsWith('CAPABILITY_OFF: elimination is switched off')),
    ).toBe(true);
  });

  it('given the switch on, when the figures breach, then it suspends, pauses and closes the position, with the tick as cause; a restart repeats nothing', async () => {
    await commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      {
        type: 'ConfigureAutomationCapability',
        capability: 'elimination',
        enabled: true,
        by: RISK,
        time: 1,
      },
      { actor: RISK.id },
    );
    await target().tick(day(1));
    await target().tick(day(1));
    const suspended = await store.readStream(eliminationStream('s1'));
    expect(suspended.map((e) => e.type)).toEqual(['StrategySuspended']);
    expect(suspended[0]?.metadata).toMatchObject({
      actor: 'automation:elimination',
      causationId: 'tick:elimination:2026-03-02',
    });
    expect((suspended[0]?.data as { breaches: string[] }).breaches).toEqual([
      expect.stringMatching(/^SHARPE_BELOW: /) as string,
      expect.stringMatching(/^DRAWDOWN_ABOVE: drawdown=0\.2\d+ > 0\.1$/) as string,
      'LOSING_WEEKS: 4 losing weeks in a row (limit 4)',
    ]);
    const strategy = (await commands.load(strategies, strategyStream('s1'))).state;
    expect(strategy.status).toBe('paused');
    const [close, ...more] = await store.readStream('desk-paper-1h');
    expect(more).toEqual([]);
    expect(close?.data).toMatchObject({
      order: {
        side: 'sell',
        quantity: 0.25,
        reduceOnly: true,
        clientOrderId: 'm-elim-s1-BTCUSDT-2026-03-02',
      },
    });
  });

  it('given the cooling period not over, then nothing; over and still breaching, then retirement is proposed for four eyes', async () => {
    await target().tick(day(5));
    expect(await types(eliminationStream('s1'))).toEqual(['StrategySuspended']);
    await target().tick(day(8));
    expect(await types(eliminationStream('s1'))).toEqual([
      'StrategySuspended',
      'StrategyRetirementProposed',
    ]);
    const requestId = retirementRequestId('s1', day(1).toISOString());
    const [requested] = await store.readStream(approvalStream(requestId));
    expect(requested?.data).toMatchObject({
      kind: 'strategy_retirement',
      requester: { id: 'automation:elimination' },
      rule: { approvals: 1 },
    });
  });

  it('when a risk officer approves, then the strategy is retired, the approval as the cause', async () => {
    const requestId = retirementRequestId('s1', day(1).toISOString());
    await commands.handle(
      approvals,
      approvalStream(requestId),
      {
        type: 'GrantApproval',
        requestId,
        approver: RISK,
        comment: 'retire it',
        now: day(9).toISOString(),
      },
      { actor: RISK.id },
    );
    const approved = (await store.readStream(approvalStream(requestId))).find(
      (e) => e.type === 'ApprovalApproved',
    );
    if (!approved) throw new Error('not approved');
    await target().apply([approved]);
    await target().apply([approved]);
    const retired = (await store.readStream(strategyStream('s1'))).filter(
      (e) => e.type === 'StrategyRetired',
    );
    expect(retired).toHaveLength(1);
    expect(retired[0]?.metadata).toMatchObject({
      actor: 'automation:elimination',
      causationId: approved.eventId,
    });
    expect((retired[0]?.data as { reason: string }).reason).toMatch(/approved by apikey:risk-1/);
    expect(await types(eliminationStream('s1'))).toEqual([
      'StrategySuspended',
      'StrategyRetirementProposed',
      'StrategyRetirementApproved',
    ]);
    // Retired: nothing more is decided for it.
    await target().tick(day(20));
    expect(await types(eliminationStream('s1'))).toHaveLength(3);
  });

  it('the shadow figures come from a backtest of the strategy on the stored candles, one equity per day', async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    try {
      await ensureMarketSchema(pool);
      const market = new MarketDataStore(pool);
      const instruments = DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT');
      await market.upsertInstruments(instruments);
      const from = Date.UTC(2026, 0, 1);
      await market.insertCandles([
        ...generateCandles({ seed: 3, from, to: from + 10 * DAY, instruments, timeframe: '1h' }),
      ]);
      const series = await shadowEquity(
        market,
        {
          strategyId: 'sx',
          status: 'paper',
          kind: 'sma_crossover',
          parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
          symbols: ['BTCUSDT'],
          timeframe: '1h',
          capital: 10_000,
        },
        new Date(from),
        new Date(from + 7 * DAY),
      );
      expect(series?.equity[0]).toBe(10_000);
      expect(series?.days).toHaveLength(7);
      expect(series?.days[0]).toBe('2026-01-01');
      expect(series?.equity).toHaveLength(8);
      expect(new Set(series?.equity).size).toBeGreaterThan(1);
    } finally {
      await pool.end();
    }
  });
});
