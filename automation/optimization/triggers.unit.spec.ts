import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import type { Party } from '../../core/approvals/approval.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { CommandHandler } from '../../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../../core/commands/idempotency.js';
import { InMemoryEventStore } from '../../core/eventstore/in-memory-event-store.js';
import { neighbourhood } from '../../core/optimization/automatic.js';
import { optimizations } from '../../core/optimization/optimization.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import {
  lastFiring,
  periodicOptimizer,
  underperformanceOptimizer,
  type TriggerReads,
} from './automatic-optimizer.js';
import {
  automaticOptimization,
  automaticOptimizationId,
  cooldownHold,
  performanceFigures,
  underperformanceTrigger,
  type AutomaticDecision,
} from './triggers.js';

const DAY = 86_400_000;
const NOW = new Date('2026-03-10T03:00:20.000Z');
const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const thresholds = { sharpeBelow: 0.5, drawdownAbove: 0.1, windowDays: 30 };
const settings = { trials: 64, dataDays: 180, searchWidth: 0.5, cooldownDays: 7 };

const strategy = {
  strategyId: 's1',
  kind: 'sma_crossover',
  symbols: ['BTCUSDT'],
  timeframe: '1h',
  parameters: { fastPeriod: 20, slowPeriod: 50, positionFraction: 0.5 },
  parameterVersion: 3,
  capitalRequest: 10_000,
  status: 'paper',
} as unknown as Strategy;

/** Net PnL per UTC day from `start`, one value a day. */
const days = (start: string, pnl: number[]) =>
  pnl.map((netPnl, i) => ({
    day: new Date(Date.parse(start) + i * DAY).toISOString().slice(0, 10),
    netPnl,
  }));
const losing = days(
  '2026-02-08',
  Array.from({ length: 31 }, (_, i) => -40 * i + (i % 2) * 15),
);
const winning = days(
  '2026-02-08',
  Array.from({ length: 31 }, (_, i) => 30 * i + (i % 3) * 10),
);

const decision = (overrides: Partial<AutomaticDecision> = {}): AutomaticDecision => ({
  manager: 'underperformance-optimizer',
  slot: '2026-03-10',
  strategy,
  trigger: underperformanceTrigger(performanceFigures(10_000, losing), thresholds),
  history: { lastRequestedAt: null, unfinished: false },
  settings,
  candlesInWindow: 1,
  now: NOW,
  by: { id: 'automation:underperformance-optimizer', role: 'analyst' },
  ...overrides,
});

describe('capability 1: the underperformance trigger (given figures / then trigger)', () => {
  it('given a month of losses, fires naming the Sharpe ratio, the drawdown and the thresholds', () => {
    const figures = performanceFigures(10_000, losing);
    expect(figures?.days).toBe(30);
    expect(figures?.maxDrawdown).toBeCloseTo(1200 / 10_000, 2);
    const trigger = underperformanceTrigger(figures, thresholds);
    expect(trigger).toMatchObject({
      type: 'underperformance',
      figures: { days: 30, maxDrawdown: expect.closeTo(0.12, 2) as number },
      thresholds: { sharpeBelow: 0.5, drawdownAbove: 0.1, windowDays: 30 },
    });
    expect(trigger?.type === 'underperformance' && trigger.figures['sharpe']).toBeLessThan(0);
  });

  it('given a month of gains, does not fire', () => {
    expect(underperformanceTrigger(performanceFigures(10_000, winning), thresholds)).toBeNull();
  });

  it('given only a drawdown above the threshold (Sharpe fine), fires on the drawdown', () => {
    const trigger = underperformanceTrigger({ days: 30, sharpe: 2, maxDrawdown: 0.15 }, thresholds);
    expect(trigger).toMatchObject({ figures: { sharpe: 2, maxDrawdown: 0.15 } });
  });

  it('given fewer than 7 days of valuations, or none, says nothing', () => {
    expect(
      underperformanceTrigger(performanceFigures(10_000, losing.slice(0, 5)), thresholds),
    ).toBeNull();
    expect(performanceFigures(10_000, [])).toBeNull();
  });

  it('carries the last net PnL over days without a valuation', () => {
    const figures = performanceFigures(1000, [
      { day: '2026-03-01', netPnl: 0 },
      { day: '2026-03-04', netPnl: -100 },
    ]);
    expect(figures).toMatchObject({ days: 3, maxDrawdown: 0.1 });
  });
});

describe('the cooldown (given history / then hold)', () => {
  it('holds while a run is unfinished, or within cooldownDays UTC days of the last request', () => {
    expect(cooldownHold({ lastRequestedAt: null, unfinished: true }, 7, NOW)).toMatch(
      /^OPTIMIZATION_UNFINISHED/,
    );
    const sixDaysAgo = new Date(NOW.getTime() - 6 * DAY);
    expect(cooldownHold({ lastRequestedAt: sixDaysAgo, unfinished: false }, 7, NOW)).toMatch(
      /^COOLING_DOWN/,
    );
    // Counted in UTC days: yesterday late, today early, is one day apart.
    const yesterday = new Date('2026-03-09T03:00:50.000Z');
    expect(cooldownHold({ lastRequestedAt: yesterday, unfinished: false }, 1, NOW)).toBeUndefined();
    expect(cooldownHold({ lastRequestedAt: null, unfinished: false }, 7, NOW)).toBeUndefined();
  });
});

describe('the decision (given trigger and history / when deciding / then request)', () => {
  it('requests one optimization of the strategy, with the trigger, an id and seed from the cause', () => {
    const [only, ...rest] = automaticOptimization(decision());
    expect(rest).toEqual([]);
    const id = automaticOptimizationId('underperformance-optimizer', '2026-03-10', 's1');
    expect(only?.streamId).toBe(`optimization-${id}`);
    expect(only?.key).toBe('s1');
    expect(only?.command).toMatchObject({
      type: 'RequestOptimization',
      optimizationId: id,
      strategyId: 's1',
      strategyParameterVersion: 3,
      method: 'bayesian',
      symbol: 'BTCUSDT',
      from: '2025-09-11T00:00:00.000Z',
      to: '2026-03-10T00:00:00.000Z',
      budget: { trials: 64 },
      trigger: { type: 'underperformance' },
    });
    // The same cause decides the same command.
    expect(automaticOptimization(decision())[0]?.command).toEqual(only?.command);
  });

  it('the request it makes is one the optimization aggregate accepts', () => {
    const [only] = automaticOptimization(decision());
    const events = optimizations.decide(
      only?.command as Parameters<typeof optimizations.decide>[0],
      optimizations.initialState(),
    );
    expect(events.map((e) => e.type)).toEqual(['OptimizationRequested']);
  });

  it('given no trigger, or a strategy cooling down, requests nothing', () => {
    expect(automaticOptimization(decision({ trigger: null }))).toEqual([]);
    expect(
      automaticOptimization(
        decision({
          history: { lastRequestedAt: new Date(NOW.getTime() - DAY), unfinished: false },
        }),
      ),
    ).toEqual([]);
  });

  it('searches each numeric parameter within ± searchWidth of its live value, inside the kind bounds', () => {
    expect(neighbourhood('sma_crossover', strategy.parameters, 0.5)).toEqual({
      fastPeriod: { type: 'int', low: 10, high: 30 },
      positionFraction: { type: 'real', low: 0.25, high: 0.75 },
      slowPeriod: { type: 'int', low: 25, high: 75 },
    });
    // fastPeriod ≥ 2 and positionFraction ≤ 1 are the kind's bounds.
    expect(
      neighbourhood('sma_crossover', { fastPeriod: 3, slowPeriod: 10, positionFraction: 0.9 }, 0.9),
    ).toMatchObject({
      fastPeriod: { low: 2, high: 6 },
      positionFraction: { high: 1 },
    });
  });
});

describe('the schedule (capability 6)', () => {
  it('finds the latest firing at or before now, in UTC', () => {
    expect(lastFiring('0 3 * * *', NOW)?.toISOString()).toBe('2026-03-10T03:00:00.000Z');
    expect(lastFiring('0 3 * * *', new Date('2026-03-10T02:59:00Z'))?.toISOString()).toBe(
      '2026-03-09T03:00:00.000Z',
    );
  });

  it('answers from its remembered firing exactly as it would afresh, up to the next one', () => {
    // The answer is kept between firings; at every instant, in any order, it must be croner's.
    const afresh = (schedule: string, now: Date): string | undefined =>
      new Cron(schedule, { paused: true, timezone: 'UTC' })
        .previousRuns(1, new Date(now.getTime() + 1000))[0]
        ?.toISOString();
    const base = Date.parse('2026-03-09T02:58:00Z');
    const instants = [
      ...Array.from({ length: 400 }, (_, i) => base + i * 431_000),
      ...[-1500, -1000, -999, -1, 0, 1, 999, 1000].map(
        (d) => Date.parse('2026-03-10T03:00:00Z') + d,
      ),
      base + 86_400_000,
      base,
    ];
    for (const schedule of ['0 3 * * *', '0 0 1,27 * *', '*/5 * * * *'])
      for (const at of instants)
        expect(
          lastFiring(schedule, new Date(at))?.toISOString(),
          `${schedule} at ${String(at)}`,
        ).toBe(afresh(schedule, new Date(at)));
  });
});

describe('the process managers (given the policy and the read models / when ticking)', () => {
  const setup = async (enable: string[]) => {
    const commands = new CommandHandler({
      eventStore: new InMemoryEventStore(),
      idempotency: new InMemoryIdempotencyStore(),
    });
    for (const capability of enable)
      await commands.handle(
        automationPolicy,
        AUTOMATION_POLICY_STREAM,
        { type: 'ConfigureAutomationCapability', capability, enabled: true, by: risk, time: 0 },
        { actor: risk.id },
      );
    const reads: TriggerReads = {
      tradingStrategies: () => Promise.resolve([strategy]),
      history: () => Promise.resolve({ lastRequestedAt: null, unfinished: false }),
      dailyNetPnl: () => Promise.resolve(losing),
    };
    const market = { candlePage: () => Promise.resolve([{} as never]) };
    return { commands, reads, market };
  };

  it('switched off (the default), neither ticks into anything', async () => {
    const deps = await setup([]);
    expect(await underperformanceOptimizer(deps).tick?.(NOW)).toBeUndefined();
    expect(await periodicOptimizer(deps).tick?.(NOW)).toBeUndefined();
  });

  it('switched on, the underperformance one requests for the losing strategy, slot = the UTC day', async () => {
    const deps = await setup(['optimize_on_underperformance']);
    const tick = await underperformanceOptimizer(deps).tick?.(NOW);
    expect(tick?.slot).toBe('2026-03-10');
    expect(tick?.intents.map((i) => i.command['trigger'])).toMatchObject([
      { type: 'underperformance', thresholds: { sharpeBelow: 0.5, drawdownAbove: 0.1 } },
    ]);
  });

  it('switched on, the periodic one requests at the firing and not an hour after it', async () => {
    const deps = await setup(['periodic_optimization']);
    const manager = periodicOptimizer(deps);
    const tick = await manager.tick?.(NOW);
    expect(tick?.slot).toBe('2026-03-10T03:00:00.000Z');
    expect(tick?.intents.map((i) => i.command['trigger'])).toEqual([
      { type: 'schedule', schedule: '0 3 * * *' },
    ]);
    expect(await manager.tick?.(new Date('2026-03-10T04:30:00Z'))).toBeUndefined();
  });
});
