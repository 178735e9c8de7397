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
import { elimination, eliminationStream } from '../../core/strategies/elimination.js';
import {
  strategies,
  strategyStream,
  type StrategyCommand,
} from '../../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { automationGate } from '../gate.js';
import { ProcessManagerTarget, type Outcome } from '../process-manager-target.js';
import {
  ELIMINATION_PARTY,
  eliminationManager,
  retirementRequestId,
  type EliminationReads,
} from './manager.js';
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

describe('elimination: an approval that comes after the suspension was cleared', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;

  beforeAll(async () => {
    database = await createTestDatabase('elimination_stale');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ('automation.elimination', 'process', 1)`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  /** A trading strategy suspended by elimination, proposed for retirement, the request open. */
  const proposed = async (id: string) => {
    const as = { actor: OWNER.id };
    const s = strategyStream(id);
    const run = (command: StrategyCommand) => commands.handle(strategies, s, command, as);
    await run({
      type: 'CreateStrategy',
      strategyId: id,
      owner: OWNER,
      name: 'resumed',
      description: 'resumed by a person before the retirement was approved',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1h',
      parameters: {},
      capitalRequest: 10_000,
    });
    await run({ type: 'SubmitForReview', strategyId: id, requestId: 'b1', by: OWNER });
    await run({
      type: 'ApproveActivation',
      strategyId: id,
      requestId: 'b1',
      approvers: [RISK],
    });
    await run({ type: 'StartPaperTrading', strategyId: id });
    const figures = {
      from: '2026-03-01',
      to: '2026-03-08',
      days: 7,
      sharpe: -3,
      drawdown: 0.1,
      losingWeeksInARow: 1,
    };
    const record = eliminationStream(id);
    const requestId = retirementRequestId(id, day(1).toISOString());
    await commands.handle(
      elimination,
      record,
      {
        type: 'Suspend',
        strategyId: id,
        at: day(1).toISOString(),
        figures,
        breaches: ['SHARPE_BELOW'],
      },
      as,
    );
    await run({ type: 'PauseStrategy', strategyId: id, reason: 'elimination' });
    await commands.handle(
      elimination,
      record,
      {
        type: 'ProposeRetirement',
        strategyId: id,
        at: day(8).toISOString(),
        requestId,
        figures,
        breaches: ['SHARPE_BELOW'],
      },
      as,
    );
    await commands.handle(
      approvals,
      approvalStream(requestId),
      {
        type: 'RequestApproval',
        requestId,
        kind: 'strategy_retirement',
        subject: { type: 'strategy_retirement', id },
        requester: ELIMINATION_PARTY,
        payload: { strategyId: id },
        reason: 'still breaching',
        now: day(8).toISOString(),
      },
      as,
    );
    return { as, s, run, record, requestId };
  };

  it.each([
    ['s2', true],
    ['s3', false],
  ])(
    'does not retire a strategy a person resumed (%s; suspension cleared by a daily run before the approval: %s)',
    async (id, cleared) => {
      const { as, s, run, record, requestId } = await proposed(id);
      // A person resumes it; the next daily run clears the suspension (the request stays open).
      await run({ type: 'ResumeStrategy', strategyId: id });
      if (cleared)
        await commands.handle(
          elimination,
          record,
          {
            type: 'ClearSuspension',
            strategyId: id,
            at: day(9).toISOString(),
            outcome: 'resumed',
            reason: 'resumed by a person before retirement',
          },
          as,
        );
      await commands.handle(
        approvals,
        approvalStream(requestId),
        {
          type: 'GrantApproval',
          requestId,
          approver: RISK,
          comment: 'ok',
          now: day(10).toISOString(),
        },
        { actor: RISK.id },
      );
      const approved = (await store.readStream(approvalStream(requestId))).find(
        (e) => e.type === 'ApprovalApproved',
      );
      if (!approved) throw new Error('not approved');
      const outcomes: Outcome[] = [];
      await new ProcessManagerTarget(
        store.pool,
        eliminationManager({ commands, reads: {} as EliminationReads }),
        commands,
        {
          eventStore: store,
          gate: automationGate(commands, () => Promise.resolve([])),
          onOutcome: (o) => outcomes.push(o),
        },
      ).apply([approved]);
      const { state } = await commands.load(strategies, s);
      expect(state.status).toBe('paper');
      expect(outcomes).toEqual([
        cleared
          ? expect.objectContaining({ command: 'ConfirmRetirement', result: 'refused' })
          : expect.objectContaining({ command: 'ClearSuspension', result: 'acted' }),
      ]);
      const cleanup = (await store.readStream(record)).at(-1);
      expect(cleanup?.type).toBe('StrategySuspensionCleared');
      expect(cleanup?.data).toMatchObject({ outcome: 'resumed' });
    },
  );

  it('when a daily run clears the suspension of a strategy a person resumed, it withdraws the open retirement request, once', async () => {
    const { run, record, requestId } = await proposed('s4');
    await run({ type: 'ResumeStrategy', strategyId: 's4' });
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
    const reads: EliminationReads = {
      strategies: async () => {
        const { state } = await commands.load(strategies, strategyStream('s4'));
        const s4 = { strategyId: 's4', status: state.status, kind: 'sma_crossover' };
        return [{ ...s4, parameters: {}, symbols: ['BTCUSDT'], timeframe: '1h', capital: 10_000 }];
      },
      openPositions: () => Promise.resolve([]),
      equity: () => Promise.resolve(null),
    };
    const target = () =>
      new ProcessManagerTarget(store.pool, eliminationManager({ commands, reads }), commands, {
        eventStore: store,
        gate: automationGate(commands, () => Promise.resolve([])),
      });
    await target().tick(day(9));
    await target().tick(day(9)); // a restart repeats nothing
    const request = await store.readStream(approvalStream(requestId));
    expect(request.map((e) => e.type)).toEqual(['ApprovalRequested', 'ApprovalWithdrawn']);
    expect(request[1]?.data).toMatchObject({ by: ELIMINATION_PARTY });
    expect(request[1]?.metadata).toMatchObject({ actor: 'automation:elimination' });
    // The withdrawal it caused finds the record already cleared as resumed: nothing more.
    await target().apply([request[1] as (typeof request)[number]]);
    const cleared = (await store.readStream(record)).map((e) => e.type);
    expect(cleared).toEqual([
      'StrategySuspended',
      'StrategyRetirementProposed',
      'StrategySuspensionCleared',
    ]);
    expect((await store.readStream(record)).at(-1)?.data).toMatchObject({ outcome: 'resumed' });
  });
});
