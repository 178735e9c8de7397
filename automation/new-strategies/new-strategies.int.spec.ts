import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../../core/adapters/postgres/postgres-idempotency-store.js';
import type { Party } from '../../core/approvals/approval.js';
import type { Capability, Thresholds } from '../../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { CommandHandler } from '../../core/commands/command-handler.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import { DEFAULT_GATE } from '../../core/optimization/gate.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationOutcome,
} from '../../core/optimization/optimization.js';
import { NEW_STRATEGIES_STREAM, newStrategies } from '../../core/strategies/new-strategies.js';
import { strategies, strategyStream } from '../../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { automationGate } from '../gate.js';
import { ProcessManagerTarget } from '../process-manager-target.js';
import { TEMPLATES, weekOf } from './decide.js';
import { newStrategiesManager, NEW_STRATEGIES_PARTY } from './manager.js';

/**
 * Capability 8 on a real log: a weekly tick tries templates on the hot symbols (real optimization
 * requests), a candidate that passed the gate becomes a strategy submitted for review, an approved
 * one starts in paper, and the caps refuse one too many with the cap named.
 */
const RISK: Party = { id: 'apikey:risk-1', role: 'risk_officer' };
const MONDAY = new Date('2026-03-02T01:00:00.000Z');

const outcome = (passed: boolean): OptimizationOutcome =>
  ({
    trialsRun: 24,
    stoppedBy: 'budget',
    bestTrial: 3,
    bestParameters: { fastPeriod: 10, slowPeriod: 100, positionFraction: 0.5 },
    inSample: null,
    outOfSample: null,
    folds: [],
    equity: [],
    deflatedSharpe: null,
    pbo: null,
    verdict: {
      passed,
      reasons: passed ? [] : ['DSR_BELOW_GATE: dsr=0.4, min=0.95'],
      gate: DEFAULT_GATE,
    },
    durationMs: 1,
  }) as unknown as OptimizationOutcome;

describe('new strategies (capability 8)', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  const target = () =>
    new ProcessManagerTarget(
      store.pool,
      newStrategiesManager({
        commands,
        reads: {
          // The tradable list: ETHUSDT and BTCUSDT approved (best first), SOLUSDT only proposed.
          tradableList: () =>
            Promise.resolve([
              { symbol: 'BTCUSDT', tradableUntil: Date.UTC(2100, 0), score: 1.5 },
              { symbol: 'ETHUSDT', tradableUntil: Date.UTC(2100, 0), score: 2.5 },
              { symbol: 'SOLUSDT', tradableUntil: null, score: 9 },
            ]),
          candleCount: () => Promise.resolve(2_160),
        },
      }),
      commands,
      { eventStore: store, gate: automationGate(commands, () => Promise.resolve([])) },
    );
  const configure = (capability: Capability, enabled: boolean, thresholds?: Thresholds) =>
    commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      {
        type: 'ConfigureAutomationCapability',
        capability,
        enabled,
        ...(thresholds ? { thresholds } : {}),
        by: RISK,
        time: 1,
      },
      { actor: RISK.id },
    );
  const requested = async () =>
    (await store.readAll({ maxCount: 100_000 })).filter((e) => e.type === 'OptimizationRequested');
  const complete = async (optimizationId: string, passed: boolean): Promise<RecordedEvent> => {
    await commands.handle(
      optimizations,
      optimizationStream(optimizationId),
      { type: 'CompleteOptimization', optimizationId, outcome: outcome(passed) },
      { actor: 'automation:optimizer' },
    );
    const events = await store.readStream(optimizationStream(optimizationId));
    return events.at(-1) as RecordedEvent;
  };

  beforeAll(async () => {
    database = await createTestDatabase('new_strategies');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ('automation.new-strategies', 'process', 1)`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('given the switch off, when the week starts, then no optimization is requested and each one it would have is held', async () => {
    await target().tick(MONDAY);
    expect(await requested()).toEqual([]);
    const held = (await store.readStream('autodecision-new-strategies')).map(
      (e) => e.data as Record<string, string>,
    );
    expect(held.map((h) => h['command'])).toEqual(['TryCandidate', 'RequestOptimization']);
    expect(held[0]?.['reason']).toMatch(/^CAPABILITY_OFF: new_strategies is switched off/);
  });

  it('given it on (with its prerequisites), when the week starts, then templates are tried on the best hot symbol, up to the weekly cap', async () => {
    await configure('hot_symbols', true);
    await configure('adopt_parameters', true);
    await configure('new_strategies', true, { perWeek: 2, total: 5 });
    await target().tick(new Date('2026-03-09T01:00:00.000Z'));
    const runs = await requested();
    expect(
      runs.map((e) => [(e.data as { kind: string }).kind, (e.data as { symbol: string }).symbol]),
    ).toEqual([
      ['sma_crossover', 'ETHUSDT'],
      ['rsi_mean_reversion', 'ETHUSDT'],
    ]);
    expect(runs[0]?.data).toMatchObject({
      requestedBy: NEW_STRATEGIES_PARTY,
      trigger: { type: 'new_strategy', template: 'sma_crossover', symbol: 'ETHUSDT' },
      timeframe: '1h',
    });
    expect(runs[0]?.metadata).toMatchObject({
      actor: 'automation:new-strategies',
      causationId: 'tick:new-strategies:2026-03-09',
    });
  });

  it('given a restart in the same week while its candidates still run, when it ticks again, then it tries nothing more', async () => {
    await target().tick(new Date('2026-03-10T05:00:00.000Z'));
    expect(await requested()).toHaveLength(2);
  });

  it('when a candidate passes the gate, then a strategy is created and submitted for review; once approved it starts in paper', async () => {
    const [first] = await requested();
    const optimizationId = (first?.data as { optimizationId: string }).optimizationId;
    const completed = await complete(optimizationId, true);
    await target().apply([completed]);
    await target().apply([completed]);
    const created = (await store.readAll({ maxCount: 100_000 })).filter(
      (e) => e.type === 'StrategyCreated',
    );
    expect(created).toHaveLength(1);
    const strategyId = (created[0]?.data as { strategyId: string }).strategyId;
    expect(created[0]?.metadata.causationId).toBe(completed.eventId);
    let { state } = await commands.load(strategies, strategyStream(strategyId));
    expect(state).toMatchObject({
      status: 'in_review',
      parameters: { fastPeriod: 10, slowPeriod: 100 },
    });
    // The approval flow turns a risk officer's approval into ApproveActivation.
    const requestId = (state as { pending: { activation: string } }).pending.activation;
    await commands.handle(
      strategies,
      strategyStream(strategyId),
      { type: 'ApproveActivation', strategyId, requestId, approvers: [RISK] },
      { actor: 'system:approval-flow' },
    );
    const approved = (await store.readStream(strategyStream(strategyId))).at(-1) as RecordedEvent;
    expect(approved.type).toBe('StrategyApproved');
    await target().apply([approved]);
    ({ state } = await commands.load(strategies, strategyStream(strategyId)));
    expect(state.status).toBe('paper');
  });

  it('when a candidate fails the gate, nothing is created; beyond the caps the reservation is refused with the cap named', async () => {
    const [, second] = await requested();
    const optimizationId = (second?.data as { optimizationId: string }).optimizationId;
    await target().apply([await complete(optimizationId, false)]);
    expect(
      (await store.readAll({ maxCount: 100_000 })).filter((e) => e.type === 'StrategyCreated'),
    ).toHaveLength(1);

    // A passing candidate once the total is used up.
    await configure('new_strategies', true, { perWeek: 2, total: 1 });
    await target().tick(new Date('2026-03-16T01:00:00.000Z'));
    expect(await requested()).toHaveLength(2); // no room: nothing tried
    const ledger = await store.readStream(NEW_STRATEGIES_STREAM);
    expect(ledger.filter((e) => e.type === 'NewStrategyReserved')).toHaveLength(1);
    const refusedBefore = (await store.readStream('autodecision-new-strategies')).length;
    // Replaying the first completion under the new caps: the same strategy, not a second one.
    const [first] = await requested();
    const firstId = (first?.data as { optimizationId: string }).optimizationId;
    await target().apply([
      (await store.readStream(optimizationStream(firstId))).at(-1) as RecordedEvent,
    ]);
    expect((await store.readStream('autodecision-new-strategies')).length).toBe(refusedBefore);
    // Another candidate of its own that passes: only the reservation, refused with the cap.
    await commands.handle(
      optimizations,
      optimizationStream('o-extra'),
      {
        type: 'RequestOptimization',
        optimizationId: 'o-extra',
        requestedBy: NEW_STRATEGIES_PARTY,
        kind: 'donchian_breakout',
        symbol: 'BTCUSDT',
        timeframe: '1h',
        from: '2026-01-01T00:00:00.000Z',
        to: '2026-03-01T00:00:00.000Z',
        space: { entryPeriod: { type: 'int', low: 20, high: 100, step: 20 } },
        method: 'random',
        objective: { name: 'sharpe' },
        budget: { trials: 4 },
        candlesInWindow: 1_000,
      },
      { actor: 'automation:new-strategies' },
    );
    await target().apply([await complete('o-extra', true)]);
    const refused = (await store.readStream('autodecision-new-strategies')).at(-1);
    expect(refused?.data).toMatchObject({
      command: 'ReserveNewStrategy',
      reason: expect.stringMatching(
        /^NEW_STRATEGIES_TOTAL_REACHED: 1 strategies created already; the policy allows 1 in total/,
      ) as string,
    });
    expect(
      (await store.readAll({ maxCount: 100_000 })).filter((e) => e.type === 'StrategyCreated'),
    ).toHaveLength(1);
  });
});

describe('new strategies: a restart between the reservation and the creation', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;

  beforeAll(async () => {
    database = await createTestDatabase('new_strategies_restart');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ('automation.new-strategies', 'process', 1)`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('with the default cap of one a week, the candidate that took the last slot is still created', async () => {
    for (const [capability, thresholds] of [
      ['hot_symbols', undefined],
      ['adopt_parameters', undefined],
      ['new_strategies', { perWeek: 1, total: 5 }],
    ] as const)
      await commands.handle(
        automationPolicy,
        AUTOMATION_POLICY_STREAM,
        {
          type: 'ConfigureAutomationCapability',
          capability,
          enabled: true,
          ...(thresholds ? { thresholds } : {}),
          by: RISK,
          time: 1,
        },
        { actor: RISK.id },
      );
    const optimizationId = 'o-restart';
    const stream = optimizationStream(optimizationId);
    const as = { actor: 'automation:new-strategies' };
    await commands.handle(
      optimizations,
      stream,
      {
        type: 'RequestOptimization',
        optimizationId,
        requestedBy: NEW_STRATEGIES_PARTY,
        kind: 'sma_crossover',
        symbol: 'BTCUSDT',
        timeframe: '1h',
        from: '2026-01-01T00:00:00.000Z',
        to: '2026-03-01T00:00:00.000Z',
        space: TEMPLATES['sma_crossover'] ?? {},
        method: 'random',
        objective: { name: 'sharpe' },
        budget: { trials: 4 },
        candlesInWindow: 1_000,
      },
      as,
    );
    await commands.handle(
      optimizations,
      stream,
      { type: 'CompleteOptimization', optimizationId, outcome: outcome(true) },
      as,
    );
    const completed = (await store.readStream(stream)).at(-1) as RecordedEvent;
    const strategyId = 'auto-sma_crossover-btcusdt-o-restar';
    // The first try wrote the reservation, then the process died before CreateStrategy.
    await commands.handle(
      newStrategies,
      NEW_STRATEGIES_STREAM,
      {
        type: 'ReserveNewStrategy',
        strategyId,
        optimizationId,
        week: weekOf(new Date('2026-03-01T00:00:00.000Z')),
        perWeek: 1,
        total: 5,
      },
      as,
    );
    const target = new ProcessManagerTarget(
      store.pool,
      newStrategiesManager({
        commands,
        reads: { tradableList: () => Promise.resolve([]), candleCount: () => Promise.resolve(0) },
      }),
      commands,
      { eventStore: store, gate: automationGate(commands, () => Promise.resolve([])) },
    );
    await target.apply([completed]);
    const { state } = await commands.load(strategies, strategyStream(strategyId));
    expect(state.status).toBe('in_review');
  });
});
