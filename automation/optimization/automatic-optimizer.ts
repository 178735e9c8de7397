import { Cron } from 'croner';
import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import type { Party } from '../../core/approvals/approval.js';
import { CAPABILITIES, type Capability } from '../../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import type { OptimizationTrigger } from '../../core/optimization/request.js';
import { automationActor, type Intent, type ProcessManager } from '../process-manager.js';
import {
  automaticOptimization,
  performanceFigures,
  underperformanceTrigger,
  type OptimizationHistory,
} from './triggers.js';

const DAY = 86_400_000;

/** What the triggers read (projections/optimization-queries.ts). */
export interface TriggerReads {
  tradingStrategies(): Promise<Strategy[]>;
  history(strategyId: string): Promise<OptimizationHistory>;
  dailyNetPnl(
    strategyId: string,
    from: string,
    to: string,
  ): Promise<{ day: string; netPnl: number }[]>;
}

export interface TriggerDeps {
  commands: CommandHandler;
  market: Pick<MarketDataStore, 'candlePage'>;
  reads: TriggerReads;
  tickMs?: number;
}

export const UNDERPERFORMANCE_OPTIMIZER = 'underperformance-optimizer';
export const PERIODIC_OPTIMIZER = 'periodic-optimizer';

/** A scheduled slot older than this when first seen (no leader then) is skipped, not caught up. */
export const SCHEDULE_GRACE_MS = 3_600_000;

const date = (at: number): string => new Date(at).toISOString().slice(0, 10);

/** Whether the capability is on, and its thresholds as stored (parse them: defaults fill gaps). */
async function settingOf(commands: CommandHandler, capability: Capability) {
  const { state } = await commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
  return state[capability];
}

/** Each trading strategy through the decision, with what it needs read. */
async function decideAll(
  deps: TriggerDeps,
  name: string,
  slot: string,
  now: Date,
  settings: { trials: number; dataDays: number; searchWidth: number; cooldownDays: number },
  triggerOf: (strategy: Strategy) => Promise<OptimizationTrigger | null>,
): Promise<Intent[]> {
  const by: Party = { id: automationActor(name), role: 'analyst' };
  const intents: Intent[] = [];
  for (const strategy of await deps.reads.tradingStrategies()) {
    const trigger = await triggerOf(strategy);
    if (!trigger) continue;
    const history = await deps.reads.history(strategy.strategyId);
    const to = Math.floor(now.getTime() / DAY) * DAY;
    const timeframe = TIMEFRAMES.find((t) => t === strategy.timeframe);
    const symbol = strategy.symbols[0];
    const sample =
      timeframe && symbol
        ? await deps.market.candlePage({
            symbol,
            timeframe,
            from: to - settings.dataDays * DAY,
            to,
            limit: 1,
          })
        : [];
    intents.push(
      ...automaticOptimization({
        manager: name,
        slot,
        strategy,
        trigger,
        history,
        settings,
        candlesInWindow: sample.length,
        now,
        by,
      }),
    );
  }
  return intents;
}

/**
 * Capability 1: every `tickMs` (10 minutes) while it is switched on, each strategy trading on
 * paper or live has its rolling figures over `windowDays` computed from its daily net PnL; a
 * Sharpe ratio below `sharpeBelow` or a drawdown above `drawdownAbove` requests an optimization
 * naming those figures, unless the strategy is cooling down. The slot is the UTC day: at most one
 * request per strategy per day, whichever process leads.
 */
export function underperformanceOptimizer(deps: TriggerDeps): ProcessManager {
  return {
    name: UNDERPERFORMANCE_OPTIMIZER,
    capability: 'optimize_on_underperformance' satisfies Capability,
    handles: [],
    tickMs: deps.tickMs ?? 600_000,
    react: () => Promise.resolve([]),
    async tick(now) {
      const setting = await settingOf(deps.commands, 'optimize_on_underperformance');
      if (!setting.enabled) return undefined;
      // A threshold added after the policy was last set is missing from it: parsing fills it.
      const thresholds = CAPABILITIES.optimize_on_underperformance.thresholds.parse(
        setting.thresholds,
      );
      const today = Math.floor(now.getTime() / DAY) * DAY;
      const slot = date(today);
      const intents = await decideAll(
        deps,
        UNDERPERFORMANCE_OPTIMIZER,
        slot,
        now,
        thresholds,
        async (strategy) => {
          // The day before the window gives its starting equity.
          const rows = await deps.reads.dailyNetPnl(
            strategy.strategyId,
            date(today - thresholds.windowDays * DAY),
            slot,
          );
          return underperformanceTrigger(
            performanceFigures(strategy.capitalRequest, rows),
            thresholds,
          );
        },
      );
      return { slot, intents };
    },
  };
}

/** The last answer of `lastFiring`: it holds from that firing until the next one. */
let lastAnswer: { schedule: string; fired: Date | null; from: number; until: number } | undefined;

/**
 * The latest time `schedule` fired at or before `now` (UTC), or null. Asked at every tick (each
 * 50 ms under a test's market clock), so the answer is kept until the schedule's next firing:
 * croner walks the calendar back for each question.
 */
export function lastFiring(schedule: string, now: Date): Date | null {
  const at = now.getTime();
  const known = lastAnswer;
  if (known?.schedule === schedule && known.from <= at && at < known.until) return known.fired;
  const cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
  try {
    // previousRuns looks strictly before its reference: a second later includes `now` itself.
    const fired = cron.previousRuns(1, new Date(at + 1000))[0] ?? null;
    const next = cron.nextRun(now);
    lastAnswer = {
      schedule,
      fired,
      from: fired?.getTime() ?? Number.NEGATIVE_INFINITY,
      // Within a second of the next firing, the question above already answers that one.
      until: next ? next.getTime() - 1000 : Number.POSITIVE_INFINITY,
    };
    return fired;
  } finally {
    cron.stop();
  }
}

/**
 * Capability 6: on `schedule` (cron, UTC; default 03:00 daily) while it is switched on, every
 * strategy trading on paper or live gets an optimization, unless it is cooling down
 * (`cooldownDays`, default 1, counts every optimization of it). The firing time is the slot: each
 * firing acts once, in the leading process; a firing missed by more than an hour is skipped.
 */
export function periodicOptimizer(deps: TriggerDeps): ProcessManager {
  return {
    name: PERIODIC_OPTIMIZER,
    capability: 'periodic_optimization' satisfies Capability,
    handles: [],
    tickMs: deps.tickMs ?? 60_000,
    react: () => Promise.resolve([]),
    async tick(now) {
      const setting = await settingOf(deps.commands, 'periodic_optimization');
      if (!setting.enabled) return undefined;
      const thresholds = CAPABILITIES.periodic_optimization.thresholds.parse(setting.thresholds);
      const fired = lastFiring(thresholds.schedule, now);
      if (!fired || now.getTime() - fired.getTime() > SCHEDULE_GRACE_MS) return undefined;
      const slot = fired.toISOString();
      const trigger: OptimizationTrigger = { type: 'schedule', schedule: thresholds.schedule };
      const intents = await decideAll(deps, PERIODIC_OPTIMIZER, slot, now, thresholds, () =>
        Promise.resolve(trigger),
      );
      return { slot, intents };
    },
  };
}
