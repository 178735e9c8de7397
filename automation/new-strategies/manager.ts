import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../../core/approvals/approval.js';
import { CAPABILITIES } from '../../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationRun,
} from '../../core/optimization/optimization.js';
import { NEW_STRATEGIES_STREAM, newStrategies } from '../../core/strategies/new-strategies.js';
import { strategies, strategyStream } from '../../core/strategies/strategy.js';
import { automationActor, intent, type Intent, type ProcessManager } from '../process-manager.js';
import {
  approvedSymbols,
  candidates,
  creationRefusal,
  room,
  TEMPLATES,
  weekOf,
  type Caps,
  type ListedSymbol,
} from './decide.js';

/** Capability 8 acts as this process manager. */
export const NEW_STRATEGIES = 'new-strategies';
/** An analyst's rights: its strategies need a risk officer's approval to trade (four eyes). */
export const NEW_STRATEGIES_PARTY: Party = { id: automationActor(NEW_STRATEGIES), role: 'analyst' };
/** The timeframe, look-back, search and capital of every candidate (docs/automation.md). */
export const CANDIDATE = {
  timeframe: '1h',
  lookbackDays: 90,
  method: 'random',
  trials: 24,
  capitalRequest: 10_000,
} as const;
const DAY = 86_400_000;
const NAMESPACE = '5b9e2c41-0d7a-4f63-8e15-a2c4d6b8f0e3';
const derived = (name: string): string => uuidv5(name, NAMESPACE);

/** What it reads besides streams: the tradable list of hot symbols, and the market. */
export interface NewStrategiesReads {
  /** Every row of the tradable list; `approvedSymbols` decides which are usable at the tick. */
  tradableList(): Promise<ListedSymbol[]>;
  candleCount(symbol: string, timeframe: string, from: Date, to: Date): Promise<number>;
}

/**
 * Capability 8 (docs/automation.md): weekly, tries strategy templates on the approved hot symbols
 * (an optimization each, with the walk-forward gate); a candidate that passes becomes a strategy
 * submitted for a risk officer's approval, and is started in paper once approved. The ledger
 * (core/strategies/new-strategies.ts) enforces the caps.
 */
export function newStrategiesManager(deps: {
  commands: CommandHandler;
  reads: NewStrategiesReads;
  tickMs?: number;
}): ProcessManager {
  const { commands, reads } = deps;
  let ticked: string | null = null;

  return {
    name: NEW_STRATEGIES,
    capability: 'new_strategies',
    handles: ['OptimizationCompleted', 'StrategyApproved'],
    tickMs: deps.tickMs ?? 60_000,

    async react(event) {
      const data = event.data as { optimizationId?: unknown; strategyId?: unknown };
      if (event.type === 'StrategyApproved') {
        if (typeof data.strategyId !== 'string') return [];
        return startApproved(commands, data.strategyId);
      }
      if (typeof data.optimizationId !== 'string') return [];
      return onCandidateTried(commands, data.optimizationId);
    },

    async tick(now) {
      const week = weekOf(now);
      if (ticked === week) return undefined;
      const state = await ledgerOf(commands);
      // Its week's candidates were tried already (before a restart or a change of leader): the
      // slot is acted on once, even while those optimizations run and the room looks unused.
      if (
        Object.entries(state.tried).some(([key, id]) => id === derived(`candidate:${key}:${week}`))
      ) {
        ticked = week;
        return undefined;
      }
      const picked = candidates({
        symbols: approvedSymbols(await reads.tradableList(), now.getTime()),
        templates: Object.keys(TEMPLATES),
        ledger: state,
        caps: await capsOf(commands),
        week,
      });
      const intents = await candidateTrials(reads, picked, now, week);
      ticked = week;
      return { slot: week, intents };
    },
  };
}

/** The caps of the automation policy in force. */
async function capsOf(commands: CommandHandler): Promise<Caps> {
  const { state } = await commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
  return CAPABILITIES.new_strategies.thresholds.parse(
    state.new_strategies.thresholds,
  ) satisfies Caps;
}

const ledgerOf = async (commands: CommandHandler) =>
  (await commands.load(newStrategies, NEW_STRATEGIES_STREAM)).state;

/** A strategy it created, once approved, starts in paper. */
async function startApproved(commands: CommandHandler, strategyId: string): Promise<Intent[]> {
  const { state } = await commands.load(strategies, strategyStream(strategyId));
  if (state.status !== 'approved' || state.owner.id !== NEW_STRATEGIES_PARTY.id) return [];
  return [
    intent(strategies, strategyStream(state.strategyId), {
      type: 'StartPaperTrading',
      strategyId: state.strategyId,
    }),
  ];
}

/**
 * A candidate's optimization completed: if it passed, a reservation in the ledger and, within
 * the caps, the strategy created and submitted for review.
 */
async function onCandidateTried(
  commands: CommandHandler,
  optimizationId: string,
): Promise<Intent[]> {
  const { state: run } = await commands.load(optimizations, optimizationStream(optimizationId));
  if (run.status !== 'completed' || run.requestedBy.id !== NEW_STRATEGIES_PARTY.id) return [];
  const outcome = run.outcome;
  if (!outcome) return [];
  // A refused candidate creates nothing: its verdict already records why.
  if (
    creationRefusal({
      passed: outcome.verdict.passed,
      reasons: outcome.verdict.reasons,
      hasParameters: outcome.bestParameters !== null,
    }) !== null
  )
    return [];
  const caps = await capsOf(commands);
  // The week it counts in is the week it was tried (its data ends on that tick's day), not
  // the week its optimization happened to finish: the same under either clock (ADR 030).
  const week = weekOf(new Date(run.to));
  const strategyId =
    `auto-${run.kind}-${run.symbol}-${run.optimizationId.slice(0, 8)}`.toLowerCase();
  const reserve = intent(
    newStrategies,
    NEW_STRATEGIES_STREAM,
    {
      type: 'ReserveNewStrategy',
      strategyId,
      optimizationId: run.optimizationId,
      week,
      ...caps,
    },
    'reserve',
  );
  // Beyond the caps only the reservation is issued: its refusal records why. A reservation
  // this candidate holds already (a retry after a crash or a conflict) goes on to the creation.
  const held = await ledgerOf(commands);
  const reserved = held.created.some((c) => c.strategyId === strategyId);
  if (!reserved && room(held, caps, week) === 0) return [reserve];
  return [reserve, ...creation(run, strategyId, outcome.bestParameters ?? {})];
}

/** The strategy made of a candidate that passed, submitted for a risk officer's review. */
function creation(run: OptimizationRun, strategyId: string, parameters: JsonObject): Intent[] {
  const stream = strategyStream(strategyId);
  return [
    intent(
      strategies,
      stream,
      {
        type: 'CreateStrategy',
        strategyId,
        owner: NEW_STRATEGIES_PARTY,
        name: `${run.kind} on ${run.symbol} (automatic)`,
        description: `Created by automation capability 8 from optimization ${run.optimizationId}, which passed the walk-forward gate.`,
        kind: run.kind,
        symbols: [run.symbol],
        timeframe: run.timeframe,
        parameters,
        capitalRequest: CANDIDATE.capitalRequest,
      },
      'create',
    ),
    intent(
      strategies,
      stream,
      {
        type: 'SubmitForReview',
        strategyId,
        requestId: derived(`review:${strategyId}`),
        by: NEW_STRATEGIES_PARTY,
      },
      'submit',
    ),
  ];
}

/**
 * The week's trials: for each picked template and symbol with candles in the look-back, the
 * ledger's record and its optimization.
 */
async function candidateTrials(
  reads: NewStrategiesReads,
  picked: readonly { template: string; symbol: string }[],
  now: Date,
  week: string,
): Promise<Intent[]> {
  const to = new Date(Math.floor(now.getTime() / DAY) * DAY);
  const from = new Date(to.getTime() - CANDIDATE.lookbackDays * DAY);
  const intents: Intent[] = [];
  for (const { template, symbol } of picked) {
    const count = await reads.candleCount(symbol, CANDIDATE.timeframe, from, to);
    if (count === 0) continue;
    const optimizationId = derived(`candidate:${template}:${symbol}:${week}`);
    intents.push(
      intent(
        newStrategies,
        NEW_STRATEGIES_STREAM,
        {
          type: 'TryCandidate',
          template,
          symbol,
          optimizationId,
          week,
        },
        `try:${template}:${symbol}`,
      ),
      intent(
        optimizations,
        optimizationStream(optimizationId),
        {
          type: 'RequestOptimization',
          optimizationId,
          requestedBy: NEW_STRATEGIES_PARTY,
          kind: template,
          symbol,
          timeframe: CANDIDATE.timeframe,
          from: from.toISOString(),
          to: to.toISOString(),
          space: TEMPLATES[template] ?? {},
          method: CANDIDATE.method,
          objective: { name: 'sharpe' },
          budget: { trials: CANDIDATE.trials },
          seed: 1,
          trigger: { type: 'new_strategy', template, symbol },
          candlesInWindow: count,
        },
        `optimize:${template}:${symbol}`,
      ),
    );
  }
  return intents;
}
