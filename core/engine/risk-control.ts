/**
 * The risk layer of a paper engine cycle (docs/risk.md, "How the engine uses it"): after the bars
 * of a cycle, the circuit breakers, the kill switch's flatten, the end of cooldowns and the
 * take-profit / stop-loss exits. Pure: everything it does is derived from the engine state, the
 * bars and the risk snapshot, and it hands its events to the engine to append.
 */
import type { Capability } from '../capabilities/capabilities.js';
import { capabilityOff } from '../capabilities/engine.js';
import type { DomainEvent } from '../decider.js';
import type { Candle } from '../market/types.js';
import { evolveSnapshot } from '../risk/aggregate.js';
import {
  bookInScope,
  evaluateBreakers,
  flattenOrders,
  initialBreakerState,
  strategyEquity,
  type BreakerState,
} from '../risk/breakers.js';
import { emptySnapshot, type RiskSnapshot } from '../risk/checks.js';
import { exitsStream, tradingStateStream, type RiskScope } from '../risk/common.js';
import { evaluateExit, exits, exitsKey, type ExitTracker } from '../risk/exits.js';
import {
  tradingStates,
  type RiskTriggerFiredData,
  type ScopeTradingState,
  type TradingStateCommand,
} from '../risk/trading-state.js';
import { reason, type OrderRequest } from '../trading/orders.js';
import type { EngineState, Stepper, TradingEvent } from '../trading/stepper.js';

/** What the engine keeps of risk between cycles (plain JSON, part of its snapshot). */
export type EngineRiskState = {
  /** The risk streams folded (the read model's copy, plus the engine's own events at once). */
  snapshot: RiskSnapshot;
  breakers: BreakerState;
  /** By exitsKey. */
  exits: Record<string, ExitTracker>;
  /**
   * By exitsKey: the round trip (openedAt) whose exit the automation policy held, so the hold
   * is recorded once per trip and not on every bar after.
   */
  held?: Record<string, number>;
  /** The kill switch engagement (its `since`) whose flatten was done. */
  flattenedSince: number | null;
};

export const initialRiskState = (): EngineRiskState => ({
  snapshot: emptySnapshot(),
  breakers: initialBreakerState(),
  exits: {},
  flattenedSince: null,
});

export type RiskStep = {
  portfolioId: string;
  stepper: Stepper;
  state: EngineState;
  risk: EngineRiskState;
  /** The cycle's bars (one bar time). */
  candles: readonly Candle[];
  barMs: number;
  /** The automation policy's switches for exits (5) and their adjustment, the trailing stop (9). */
  automation: { autoExits: boolean; dynamicExits: boolean };
  /** Records what a switched-off capability would have done (engine.ts writes the event). */
  held: (capability: Capability, streamId: string, command: string, reason: string) => void;
  /** Capital of a strategy (its allocation of the initial cash), for its equity. */
  capitalOf: (strategyId: string) => number;
  trading: (events: readonly TradingEvent[]) => void;
  riskEvents: (streamId: string, events: readonly DomainEvent[]) => void;
};

const scopeOf = (key: string): RiskScope => {
  const at = key.indexOf(':');
  return { type: key.slice(0, at) as RiskScope['type'], id: key.slice(at + 1) };
};

/** The trading-state decider's view of a scope, from the snapshot. */
function scopeState(snapshot: RiskSnapshot, scope: RiskScope): ScopeTradingState {
  const entry = snapshot.states[`${scope.type}:${scope.id}`];
  return {
    base: entry?.base ?? 'ACTIVE',
    temporary: entry?.temporary ?? null,
    since: null,
    reason: '',
    resetAt: entry?.resetAt ?? null,
    triggers: [],
    resets: [],
  };
}

/** Breakers, kill switch flatten, cooldowns and exits after the cycle's bars. */
export function afterBars(step: RiskStep): void {
  const first = step.candles[0];
  if (!first) return;
  const cycle = cycleActions(step, first.openTime + step.barMs);
  tripBreakers(step, cycle);
  flattenOnKillSwitch(step, cycle);
  endCooldowns(step, cycle);
  // Take-profit and stop-loss of each open position with exit rules.
  for (const candle of step.candles)
    for (const position of step.state.account.positions) {
      if (position.symbol === candle.symbol) exitPosition(step, cycle, candle, position);
    }
}

/** What the steps of one cycle do, bound to its step and its time (the close of its bars). */
type CycleActions = {
  time: number;
  decideState: (scope: RiskScope, command: TradingStateCommand) => void;
  cancelBook: (strategyId: string, symbol: string, why: string) => void;
  submit: (order: OrderRequest, at: number) => void;
  flatten: (scope: RiskScope, why: string) => void;
  fire: (trigger: RiskTriggerFiredData) => void;
};

function cycleActions(step: RiskStep, time: number): CycleActions {
  const { portfolioId, stepper, state, risk } = step;

  const decideState = (scope: RiskScope, command: TradingStateCommand): void => {
    const events = tradingStates.decide(command, scopeState(risk.snapshot, scope));
    if (events.length === 0) return;
    step.riskEvents(tradingStateStream(scope), events);
    for (const event of events) risk.snapshot = evolveSnapshot(risk.snapshot, event);
  };

  const cancelBook = (strategyId: string, symbol: string, why: string): void => {
    for (const open of stepper.venue.openOrders(state.venue, strategyId, symbol))
      step.trading(stepper.cancel(state, open.clientOrderId, why, time).events);
  };

  const submit = (order: OrderRequest, at: number): void => {
    step.trading(stepper.submit(state, order, at).events);
  };

  const flattened = new Set<string>();
  /**
   * Cancels every open order of the books in scope (resting entries must not fill after a
   * flatten; exit and flatten orders stay) and closes their positions, once per book and cycle.
   */
  const flatten = (scope: RiskScope, why: string): void => {
    for (const book of state.books) {
      if (!bookInScope(scope, portfolioId, book)) continue;
      for (const open of stepper.venue.openOrders(state.venue, book.strategyId, book.symbol))
        if (!/-(exit|flat)-/.test(open.clientOrderId))
          step.trading(stepper.cancel(state, open.clientOrderId, why, time).events);
    }
    const orders = flattenOrders(portfolioId, state.account.positions, scope, time);
    for (const order of orders) {
      const key = `${order.strategyId}|${order.symbol}`;
      if (flattened.has(key)) continue;
      flattened.add(key);
      submit(order, time);
    }
  };

  const fire = (trigger: RiskTriggerFiredData): void => {
    const scope: RiskScope = { type: trigger.scopeType, id: trigger.scopeId };
    decideState(scope, { type: 'FireTrigger', trigger });
    if (trigger.action === 'FLATTEN')
      flatten(scope, reason('FLATTEN', { rule: trigger.rule, trigger: trigger.triggerId }));
  };

  return { time, decideState, cancelBook, submit, flatten, fire };
}

/** Circuit breakers: once per bar (the price breaker is per symbol). */
function tripBreakers(step: RiskStep, cycle: CycleActions): void {
  const { portfolioId, stepper, state, risk, candles, barMs } = step;
  const { time } = cycle;
  const markOf = (symbol: string) => state.marks[symbol];
  const strategies = [...new Set(state.account.positions.map((p) => p.strategyId))].map((id) => ({
    id,
    equity: strategyEquity(
      step.capitalOf(id),
      state.account.positions.filter((p) => p.strategyId === id),
      markOf,
    ),
  }));
  const equity = stepper.equity(state);
  for (const candle of candles) {
    const result = evaluateBreakers(risk.breakers, {
      time,
      portfolio: { id: portfolioId, equity },
      strategies,
      bar: { candle, barMs },
      snapshot: risk.snapshot,
    });
    risk.breakers = result.state;
    for (const trigger of result.triggers) cycle.fire(trigger);
  }
}

/** Kill switch with flatten: every position of the portfolio, once per engagement. */
function flattenOnKillSwitch(step: RiskStep, cycle: CycleActions): void {
  const { risk, portfolioId } = step;
  const { killSwitch } = risk.snapshot;
  if (killSwitch.engaged && killSwitch.flatten && risk.flattenedSince !== killSwitch.since) {
    risk.flattenedSince = killSwitch.since;
    cycle.flatten({ type: 'portfolio', id: portfolioId }, reason('KILL_SWITCH', { flatten: true }));
  }
}

/** Temporary states whose cooldown has ended. */
function endCooldowns(step: RiskStep, cycle: CycleActions): void {
  const { risk, portfolioId, state } = step;
  const { time } = cycle;
  // In key order: the snapshot's keys come back from jsonb in another order than they were made.
  for (const key of Object.keys(risk.snapshot.states).sort()) {
    const entry = risk.snapshot.states[key];
    if (!entry?.temporary || entry.temporary.until > time) continue;
    const scope = scopeOf(key);
    // Only the scopes this portfolio trades: another engine ends the others'.
    const own =
      scope.type === 'portfolio'
        ? scope.id === portfolioId
        : state.books.some((book) => bookInScope(scope, portfolioId, book));
    if (own) cycle.decideState(scope, { type: 'EndCooldown', scope, time });
  }
}

type HeldPosition = EngineState['account']['positions'][number];

/** Take-profit and stop-loss of one open position with exit rules, on one bar. */
function exitPosition(
  step: RiskStep,
  cycle: CycleActions,
  candle: Candle,
  position: HeldPosition,
): void {
  const { portfolioId, stepper, state, risk, barMs } = step;
  const key = exitsKey(portfolioId, position.strategyId, position.symbol);
  const settings = risk.snapshot.exits[key];
  if (!settings?.rules && !settings?.levels) return;
  const open = stepper.venue.openOrders(state.venue, position.strategyId, position.symbol);
  const input = {
    position: {
      portfolioId,
      strategyId: position.strategyId,
      symbol: position.symbol,
      quantity: position.quantity,
      averageEntryPrice: position.averageEntryPrice,
      openedAt: position.trip?.openedAt ?? null,
    },
    candle,
    barMs,
    settings,
    exitPending: open.some((o) => /-(exit|flat)-/.test(o.clientOrderId)),
  };
  const before = risk.exits[key];
  // Capability 9 off (5 on): the levels do not follow the price (no trailing stop). With 5
  // off every exit, a trailing one too, is held as 5's.
  const fixed =
    step.automation.autoExits && !step.automation.dynamicExits && settings.rules?.trailing
      ? { ...settings, rules: { ...settings.rules, trailing: null } }
      : settings;
  const result = evaluateExit(before, { ...input, settings: fixed });
  risk.exits[key] = result.tracker;
  const stream = exitsStream(portfolioId, position.strategyId, position.symbol);
  const trip = position.trip?.openedAt ?? 0;
  const holdOnce = (capability: Capability, why: string): void => {
    if (risk.held?.[key] === trip) return;
    risk.held = { ...risk.held, [key]: trip };
    step.held(capability, stream, 'RecordExit', `${capabilityOff(capability)} (${why})`);
  };
  if (fixed !== settings && !result.exit) {
    const trailing = evaluateExit(before, input).exit;
    if (trailing?.kind === 'TRAILING_STOP')
      holdOnce('dynamic_exits', `TRAILING_STOP at ${trailing.level} not placed`);
  }
  const exit = result.exit;
  if (!exit) return;
  if (!step.automation.autoExits) {
    holdOnce('auto_exits', `${exit.kind} at ${exit.level} not placed`);
    return;
  }
  cycle.cancelBook(position.strategyId, position.symbol, exit.reason);
  cycle.submit(exit.order, exit.time);
  const recorded = exits.decide({ type: 'RecordExit', exit }, { ...settings, lastExit: null });
  step.riskEvents(stream, recorded);
  for (const event of recorded) risk.snapshot = evolveSnapshot(risk.snapshot, event);
}
