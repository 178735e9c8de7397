import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import type { Party } from '../core/approvals/approval.js';
import type { Capability, Thresholds } from '../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { HOT_SYMBOLS_STREAM } from '../core/hot-symbols/ranking.js';
import {
  hotSymbols,
  hotSymbolStream,
  recommendationExpiry,
} from '../core/hot-symbols/tradable.js';
import { injectIntoCandles } from '../core/hot-symbols/synthetic-derivatives.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { DEFAULT_GATE } from '../core/optimization/gate.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationOutcome,
} from '../core/optimization/optimization.js';
import { portfolioStream } from '../core/portfolio/events.js';
import { portfolios } from '../core/portfolio/portfolio.js';
import { KILL_SWITCH_STREAM } from '../core/risk/common.js';
import { killSwitch } from '../core/risk/kill-switch.js';
import { eliminationStream } from '../core/strategies/elimination.js';
import { strategies, strategyStream } from '../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { allocationManager } from './allocation/rebalancing.js';
import { eliminationManager } from './elimination/manager.js';
import { automationGate } from './gate.js';
import { hotSymbolsManager } from './hot-symbols/manager.js';
import { newStrategiesManager } from './new-strategies/manager.js';
import { newStrategiesReads } from './new-strategies/reads.js';
import { optimizationAdoption } from './optimization/adoption.js';
import {
  periodicOptimizer,
  underperformanceOptimizer,
  type TriggerReads,
} from './optimization/automatic-optimizer.js';
import { ProcessManagerTarget } from './process-manager-target.js';
import type { ProcessManager } from './process-manager.js';

/**
 * The proof of issue 19 (docs/automation.md, "How it is proven"): on one real log, driven by
 * controlled instants, 10 ranks a synthetic market with a volume jump → 8 tries a template on the
 * hot symbol, creates the strategy that passed, starts it once approved → 6 requests its periodic
 * optimization → 2 requests the parameter change → 3 proposes an allocation → 1 and 7 act on its
 * losses. Each action carries its trigger as causation; a restart replaying every tick and cause
 * writes nothing; under the kill switch the next ticks record holds. Stand-ins: the optimizer's
 * run, allocation's valuations, the PnL and equity curves (their own specs cover them). 32 days.
 */
const RISK: Party = { id: 'apikey:risk-1', role: 'risk_officer' };
const DAY = 86_400_000;
const HOUR = 3_600_000;
/** A Monday, 00:00 UTC. */
const T = Date.UTC(2026, 2, 9);
const at = (ms: number) => new Date(T + ms);
const P = 'paper-1h';

/** A result that passed the gate (the optimizer's run itself is not the subject here). */
const passing = (parameters: Record<string, number>): OptimizationOutcome =>
  ({
    ...{ trialsRun: 24, stoppedBy: 'budget', bestTrial: 3, bestParameters: parameters },
    ...{ inSample: null, outOfSample: null, folds: [], equity: [], deflatedSharpe: null },
    pbo: null,
    verdict: { passed: true, reasons: [], gate: DEFAULT_GATE },
    durationMs: 1,
  }) as unknown as OptimizationOutcome;

describe('the automation capabilities together (issue 19 proof)', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let market: MarketDataStore;
  /** The strategy capability 8 creates; the later capabilities act on it. */
  let strategyId = '';

  const all = () => store.readAll({ maxCount: 1_000_000 });
  const ofType = async (type: string) => (await all()).filter((e) => e.type === type);
  const configure = (capability: Capability, thresholds?: Thresholds) =>
    commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      {
        type: 'ConfigureAutomationCapability',
        capability,
        enabled: true,
        ...(thresholds ? { thresholds } : {}),
        by: RISK,
        time: T,
      },
      { actor: RISK.id },
    );

  /** Every manager in play, fresh (as after a restart), with the reads a running QCAT would use. */
  const managers = (): Record<string, ProcessManager> => {
    const strategy = async () =>
      (await commands.load(strategies, strategyStream(strategyId))).state;
    const triggerReads: TriggerReads = {
      tradingStrategies: async () => {
        const state = await strategy();
        return state.status === 'paper' ? [state] : [];
      },
      history: () => Promise.resolve({ lastRequestedAt: null, unfinished: false }),
      // Its paper PnL (the allocations read model): losing 40 a day for a month.
      dailyNetPnl: (_id, from) =>
        Promise.resolve(
          Array.from({ length: 31 }, (_, i) => ({
            day: new Date(Date.parse(from) + i * DAY).toISOString().slice(0, 10),
            netPnl: -40 * i + (i % 2) * 15,
          })),
        ),
    };
    return {
      hot: hotSymbolsManager({ commands, market }),
      create: newStrategiesManager({
        commands,
        // The latest ranking's recommendations, read from the log (not its read model).
        reads: {
          ...newStrategiesReads({ pool: store.pool, market }),
          // The tradable list, read from the symbol's stream (not its read model).
          tradableList: async () => {
            const { state } = await commands.load(hotSymbols, hotSymbolStream('SOLUSDT'));
            return [{ symbol: 'SOLUSDT', tradableUntil: state.tradableUntil, score: null }];
          },
        },
      }),
      periodic: periodicOptimizer({ commands, market, reads: triggerReads }),
      underperforming: underperformanceOptimizer({ commands, market, reads: triggerReads }),
      adopt: optimizationAdoption(commands),
      allocate: allocationManager({
        commands,
        reads: {
          valuation: () => Promise.resolve({ equity: 100_000, pnl: {}, at: at(0).toISOString() }),
          dailyReturns: () =>
            Promise.resolve({
              from: '2026-03-01',
              to: '2026-03-06',
              series: [[0.01, -0.02, 0.015, 0.0, 0.01, -0.005]],
            }),
          portfolios: () => Promise.resolve([{ portfolioId: P }]),
        },
      }),
      eliminate: eliminationManager({
        commands,
        reads: {
          strategies: async () => {
            const s = await strategy();
            if (s.status === 'none') return [];
            const { status, kind, parameters, symbols, timeframe, capitalRequest: capital } = s;
            return [{ strategyId, status, kind, parameters, symbols, timeframe, capital }];
          },
          openPositions: () => Promise.resolve([]),
          // Its shadow figures: −1% a day.
          equity: (_s, from, to) => {
            const n = Math.round((to.getTime() - from.getTime()) / DAY);
            const equity = Array.from({ length: n + 1 }, (_, i) => 10_000 * 0.99 ** i);
            const days = Array.from({ length: n }, (_, i) =>
              new Date(from.getTime() + (i + 1) * DAY).toISOString().slice(0, 10),
            );
            return Promise.resolve({ equity, days });
          },
        },
      }),
    };
  };
  const target = (manager: ProcessManager) =>
    new ProcessManagerTarget(store.pool, manager, commands, {
      eventStore: store,
      gate: automationGate(commands, () => Promise.resolve([])),
    });

  /** The optimizer's completion, written as automation/optimization/executor.ts writes it. */
  const complete = async (requested: RecordedEvent, parameters: Record<string, number>) => {
    const { optimizationId } = requested.data as { optimizationId: string };
    await commands.handle(
      optimizations,
      optimizationStream(optimizationId),
      { type: 'CompleteOptimization', optimizationId, outcome: passing(parameters) },
      {
        actor: 'automation:optimizer',
        causationId: requested.eventId,
        correlationId: requested.metadata.correlationId ?? optimizationId,
        idempotencyKey: `complete:${optimizationId}`,
      },
    );
    return (await store.readStream(optimizationStream(optimizationId))).at(-1) as RecordedEvent;
  };

  /** Every cause of the run, in order, so that it can be replayed as a restart would. */
  type Name = keyof ReturnType<typeof managers>;
  const ticks: [Name, Date][] = [];
  const reactions: [Name, RecordedEvent][] = [];
  const tick = async (name: Name, now: Date) => {
    ticks.push([name, now]);
    await target(managers()[name]!).tick(now);
  };
  const react = async (name: Name, cause: RecordedEvent) => {
    reactions.push([name, cause]);
    await target(managers()[name]!).apply([cause]);
  };
  /** The chain back from an event to the tick that started it, through causation ids. */
  const chain = async (event: RecordedEvent): Promise<string[]> => {
    const byId = new Map((await all()).map((e) => [e.eventId, e]));
    const links = [`${event.type} by ${event.metadata.actor}`];
    let cause = event.metadata.causationId;
    while (cause && byId.has(cause)) {
      const next = byId.get(cause)!;
      links.push(`${next.type} by ${next.metadata.actor}`);
      cause = next.metadata.causationId;
    }
    if (cause) links.push(cause);
    return links;
  };

  beforeAll(async () => {
    database = await createTestDatabase('automation_proof');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    await ensureMarketSchema(store.pool);
    market = new MarketDataStore(store.pool);
    await market.upsertInstruments(DEFAULT_INSTRUMENTS);
    const candles = [...generateCandles({ seed: 19, from: T - 32 * DAY, to: T, timeframe: '1h' })];
    await market.insertCandles(
      injectIntoCandles(candles, [{ kind: 'volume_jump', symbol: 'SOLUSDT', from: T - 20 * HOUR }]),
    );
    for (const m of Object.values(managers()))
      await store.pool.query(
        `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'process', 1)`,
        [target(m).name],
      );
    // A risk officer turns the capabilities on through the automation policy.
    await configure('hot_symbols');
    await configure('adopt_parameters');
    await configure('new_strategies', { perWeek: 1, total: 5 });
    await configure('periodic_optimization', { dataDays: 60, trials: 8 });
    await configure('optimize_on_underperformance', { dataDays: 60, trials: 8 });
    await configure('rebalance');
    await configure('elimination');
  }, 120_000);
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('10 ranks the hour and recommends the symbol whose volume jumped', async () => {
    await tick('hot', at(0));
    const [ranked, ...more] = await store.readStream(HOT_SYMBOLS_STREAM);
    expect(more).toEqual([]);
    expect(ranked?.metadata).toMatchObject({
      actor: 'automation:hot-symbols',
      causationId: 'tick:hot-symbols:2026-03-09T00:00:00.000Z',
    });
    expect((ranked?.data as { recommended: string[] }).recommended[0]).toBe('SOLUSDT');
    // An analyst proposes it, a risk officer approves it onto the tradable list (four eyes).
    const stream = hotSymbolStream('SOLUSDT');
    const proposalId = 'proposal-1';
    await commands.handle(
      hotSymbols,
      stream,
      {
        type: 'ProposeHotSymbol',
        symbol: 'SOLUSDT',
        proposalId,
        rankingPosition: ranked!.position.toString(),
        rankedAt: T,
        score: null,
        recommendationExpiresAt: recommendationExpiry(T),
        reason: 'volume jump',
        proposedBy: { id: 'apikey:analyst-1', role: 'analyst' },
        at: T + 60_000,
      },
      { actor: 'apikey:analyst-1' },
    );
    await commands.handle(
      hotSymbols,
      stream,
      {
        type: 'ApproveHotSymbol',
        symbol: 'SOLUSDT',
        proposalId,
        by: RISK,
        comment: 'ok',
        // Tradable for two weeks: under the kill switch, the next week would still try it.
        expiryDays: 14,
        at: T + 120_000,
      },
      { actor: RISK.id },
    );
  });

  it('8 tries a template on it, creates the strategy that passed, and starts it once approved', async () => {
    await tick('create', at(HOUR));
    const [requested, ...more] = await ofType('OptimizationRequested');
    expect(more).toEqual([]);
    expect(requested?.data).toMatchObject({ symbol: 'SOLUSDT', kind: 'sma_crossover' });
    expect(requested?.metadata).toMatchObject({
      actor: 'automation:new-strategies',
      causationId: 'tick:new-strategies:2026-03-09',
    });
    const completed = await complete(requested!, { fastPeriod: 10, slowPeriod: 100 });
    await react('create', completed);
    const [created] = await ofType('StrategyCreated');
    strategyId = (created?.data as { strategyId: string }).strategyId;
    expect(created?.metadata).toMatchObject({
      actor: 'automation:new-strategies',
      causationId: completed.eventId,
      correlationId: 'tick:new-strategies:2026-03-09',
    });
    expect(await chain(created!)).toEqual([
      'StrategyCreated by automation:new-strategies',
      'OptimizationCompleted by automation:optimizer',
      'OptimizationRequested by automation:new-strategies',
      'tick:new-strategies:2026-03-09',
    ]);
    // The approval flow turns a risk officer's approval into ApproveActivation.
    let { state } = await commands.load(strategies, strategyStream(strategyId));
    const requestId = (state as { pending: { activation: string } }).pending.activation;
    await commands.handle(
      strategies,
      strategyStream(strategyId),
      { type: 'ApproveActivation', strategyId, requestId, approvers: [RISK] },
      { actor: 'system:approval-flow' },
    );
    const approved = (await store.readStream(strategyStream(strategyId))).at(-1)!;
    await react('create', approved);
    ({ state } = await commands.load(strategies, strategyStream(strategyId)));
    expect(state.status).toBe('paper');
    expect((await store.readStream(strategyStream(strategyId))).at(-1)?.metadata).toMatchObject({
      actor: 'automation:new-strategies',
      causationId: approved.eventId,
    });
  });

  it('6 requests its periodic optimization; 2 requests the parameter change its result passed', async () => {
    await tick('periodic', at(3 * HOUR));
    const requested = (await ofType('OptimizationRequested')).filter(
      (e) => (e.data as { strategyId?: string }).strategyId === strategyId,
    );
    expect(requested).toHaveLength(1);
    expect(requested[0]?.metadata).toMatchObject({
      actor: 'automation:periodic-optimizer',
      causationId: 'tick:periodic-optimizer:2026-03-09T03:00:00.000Z',
    });
    const completed = await complete(requested[0]!, { fastPeriod: 15, slowPeriod: 125 });
    await react('adopt', completed);
    await react('create', completed); // not its candidate: nothing
    const change = (await store.readStream(strategyStream(strategyId))).at(-1)!;
    expect(change.type).toBe('StrategyParameterChangeRequested');
    expect(await chain(change)).toEqual([
      'StrategyParameterChangeRequested by automation:optimization-adoption',
      'OptimizationCompleted by automation:optimizer',
      'OptimizationRequested by automation:periodic-optimizer',
      'tick:periodic-optimizer:2026-03-09T03:00:00.000Z',
    ]);
  });

  it('3 proposes an allocation when the new strategy joins a portfolio', async () => {
    const portfolio = (command: Parameters<typeof portfolios.decide>[0]) =>
      commands.handle(portfolios, portfolioStream(P), command, { actor: RISK.id });
    const when = at(4 * HOUR).toISOString();
    await portfolio({ type: 'SetPolicy', portfolioId: P, policy: {}, by: RISK, at: when });
    await portfolio({ type: 'AddMember', portfolioId: P, strategyId, by: RISK, at: when });
    const joined = (await store.readStream(portfolioStream(P))).at(-1)!;
    await react('allocate', joined);
    const proposed = (await store.readStream(portfolioStream(P))).at(-1)!;
    expect(proposed.type).toBe('AllocationProposed');
    expect(proposed.metadata).toMatchObject({
      actor: 'automation:allocation',
      causationId: joined.eventId,
    });
  });

  it('1 requests an optimization of it when its profit falls short, naming the figures', async () => {
    await tick('underperforming', at(DAY));
    const [requested, ...more] = (await ofType('OptimizationRequested')).filter(
      (e) => e.metadata.actor === 'automation:underperformance-optimizer',
    );
    expect(more).toEqual([]);
    expect(requested?.data).toMatchObject({ strategyId, trigger: { type: 'underperformance' } });
    expect(requested?.metadata.causationId).toBe('tick:underperformance-optimizer:2026-03-10');
  });

  it('7 suspends it when its figures breach, naming them', async () => {
    await tick('eliminate', at(DAY + HOUR));
    const [suspended, ...more] = await store.readStream(eliminationStream(strategyId));
    expect(more).toEqual([]);
    expect(suspended?.metadata).toMatchObject({
      actor: 'automation:elimination',
      causationId: 'tick:elimination:2026-03-10',
    });
    expect((suspended?.data as { breaches: string[] }).breaches[0]).toMatch(/^SHARPE_BELOW: /);
    expect((await commands.load(strategies, strategyStream(strategyId))).state.status).toBe(
      'paused',
    );
    // Nothing any capability did was refused or held along the way.
    expect(await ofType('AutomationActionRefused')).toEqual([]);
    expect(await ofType('AutomationActionHeld')).toEqual([]);
  });

  it('a restart replaying every tick and cause issues nothing new', async () => {
    const before = await store.headPosition();
    for (const [name, now] of ticks) await target(managers()[name]!).tick(now);
    for (const [name, cause] of reactions) await target(managers()[name]!).apply([cause]);
    const added = await store.readAll({ after: before, maxCount: 100 });
    expect(added.map((e) => [e.type, e.streamId, e.data])).toEqual([]);
    expect(await store.headPosition()).toBe(before);
  });

  it('with the kill switch engaged, the next ticks and causes issue nothing and record holds', async () => {
    await commands.handle(
      killSwitch,
      KILL_SWITCH_STREAM,
      { type: 'EngageKillSwitch', by: RISK, reason: 'proof', flatten: false, time: T },
      { actor: RISK.id },
    );
    const engagedAt = await store.headPosition();
    await target(managers().hot!).tick(at(HOUR)); // the next hour
    await target(managers().eliminate!).tick(at(9 * DAY)); // cooling over: it would propose
    await target(managers().create!).tick(at(7 * DAY + HOUR)); // the next week
    const after = await store.readAll({ after: engagedAt, maxCount: 1_000 });
    expect(new Set(after.map((e) => e.type))).toEqual(new Set(['AutomationActionHeld']));
    expect(new Set(after.map((e) => (e.data as { manager: string }).manager))).toEqual(
      new Set(['hot-symbols', 'elimination', 'new-strategies']),
    );
    for (const held of after)
      expect((held.data as { reason: string }).reason).toMatch(/^KILL_SWITCH_ENGAGED: .*proof/);
    expect(await store.readStream(eliminationStream(strategyId))).toHaveLength(1);
    expect(await store.readStream(HOT_SYMBOLS_STREAM)).toHaveLength(1);
  });
});
