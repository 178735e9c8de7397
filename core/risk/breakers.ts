import type { Candle } from '../market/types.js';
import { unrealizedPnl, type Position } from '../trading/accounting.js';
import { closingOrder, type OrderRequest } from '../trading/orders.js';
import { num, scopeKey, type RiskScope } from './common.js';
import { limitsIn, type RiskSnapshot } from './checks.js';
import type { PriceBreakerLimit } from './limits.js';
import type { RiskRule, RiskTriggerFiredData, TriggerAction } from './trading-state.js';
import { dailyLossOf, drawdownOf } from './measures.js';

/**
 * Circuit breakers as pure evaluators: each takes its tracker (plain JSON, kept by the engine from
 * bar to bar) and an observation, and answers with the next tracker and, on a breach, the data of a
 * `RiskTriggerFired` event (FireTrigger on the scope's trading-state stream applies it). A breaker
 * fires once per breach: it re-arms when the scope is reset (an approved `risk_reset`, seen as a
 * newer `resetAt`), and the daily-loss breaker also at the next UTC day. Behaviour: docs/risk.md.
 */

export const DAY_MS = 86_400_000;

/** `<rule>-<scopeType>-<scopeId>-<time>`: the same breach always gets the same id. */
export const triggerIdOf = (rule: RiskRule, scope: RiskScope, time: number): string =>
  `${rule}-${scope.type}-${scope.id}-${time}`;

const fire = (
  rule: RiskRule,
  scope: RiskScope,
  fields: {
    threshold: number;
    observed: number;
    reference: number;
    value: number;
    window: { from: number; to: number };
    action: TriggerAction;
    until: number | null;
    time: number;
  },
): RiskTriggerFiredData => ({
  triggerId: triggerIdOf(rule, scope, fields.time),
  rule,
  scopeType: scope.type,
  scopeId: scope.id,
  threshold: fields.threshold,
  observed: num(fields.observed),
  reference: num(fields.reference),
  value: num(fields.value),
  window: fields.window,
  action: fields.action,
  until: fields.until,
  time: fields.time,
});

/** A reset newer than the one the tracker has seen. */
const newReset = (resetAt: number | null, seen: number | null): boolean =>
  resetAt !== null && (seen === null || resetAt > seen);

// ---------------------------------------------------------------------------------------------
// Drawdown (portfolio: the circuit breaker; strategy).

export type DrawdownTracker = {
  highWater: number;
  highWaterAt: number;
  fired: boolean;
  resetSeen: number | null;
};

export type EquityObservation = {
  /** A portfolio or a strategy. */
  scope: RiskScope;
  equity: number;
  time: number;
  /** The scope's last approved reset (RiskSnapshot.states[…].resetAt). */
  resetAt: number | null;
};

/**
 * Drawdown = (high-water mark − equity) / high-water mark, the mark being the highest equity seen
 * since the tracker started or the scope was last reset. Above `maxDrawdown` (strictly): a
 * portfolio fires FLATTEN (halted, every position closed), a strategy HALTED. No `until`.
 */
export function evaluateDrawdown(
  tracker: DrawdownTracker | undefined,
  observation: EquityObservation & { maxDrawdown: number | null },
): { tracker: DrawdownTracker; trigger: RiskTriggerFiredData | null } {
  const { scope, equity, time, resetAt, maxDrawdown } = observation;
  let next: DrawdownTracker =
    !tracker || newReset(resetAt, tracker.resetSeen)
      ? { highWater: equity, highWaterAt: time, fired: false, resetSeen: resetAt }
      : { ...tracker };
  if (equity > next.highWater) next = { ...next, highWater: equity, highWaterAt: time };
  if (next.fired || maxDrawdown === null || !(next.highWater > 0))
    return { tracker: next, trigger: null };
  const drawdown = drawdownOf(next.highWater, equity) ?? 0;
  if (!(drawdown > maxDrawdown)) return { tracker: next, trigger: null };
  const portfolio = scope.type === 'portfolio';
  return {
    tracker: { ...next, fired: true },
    trigger: fire(portfolio ? 'portfolio_drawdown' : 'strategy_drawdown', scope, {
      threshold: maxDrawdown,
      observed: drawdown,
      reference: next.highWater,
      value: equity,
      window: { from: next.highWaterAt, to: time },
      action: portfolio ? 'FLATTEN' : 'HALTED',
      until: null,
      time,
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Daily loss (portfolio, strategy).

export type DailyLossTracker = {
  /** UTC day number (time / DAY_MS, floored). */
  day: number;
  /** Equity at the start of the day: the last one observed before it. */
  opening: number;
  last: number;
  fired: boolean;
  resetSeen: number | null;
};

/**
 * Loss = (opening equity − equity) / opening equity within one UTC day; the opening equity is the
 * last equity observed before the day's first observation (the first one ever, on the first day),
 * or the equity at an approved reset. Above `dailyLossLimit` (strictly): REDUCING until the end
 * of the UTC day (`until` = next 00:00 UTC).
 */
export function evaluateDailyLoss(
  tracker: DailyLossTracker | undefined,
  observation: EquityObservation & { dailyLossLimit: number | null },
): { tracker: DailyLossTracker; trigger: RiskTriggerFiredData | null } {
  const { scope, equity, time, resetAt, dailyLossLimit } = observation;
  const day = Math.floor(time / DAY_MS);
  let next: DailyLossTracker;
  if (!tracker) next = { day, opening: equity, last: equity, fired: false, resetSeen: resetAt };
  else if (tracker.day !== day)
    next = { day, opening: tracker.last, last: equity, fired: false, resetSeen: tracker.resetSeen };
  else next = { ...tracker, last: equity };
  if (newReset(resetAt, next.resetSeen))
    next = { ...next, opening: equity, fired: false, resetSeen: resetAt };
  if (next.fired || dailyLossLimit === null || !(next.opening > 0))
    return { tracker: next, trigger: null };
  const loss = dailyLossOf(next.opening, equity) ?? 0;
  if (!(loss > dailyLossLimit)) return { tracker: next, trigger: null };
  return {
    tracker: { ...next, fired: true },
    trigger: fire('daily_loss', scope, {
      threshold: dailyLossLimit,
      observed: loss,
      reference: next.opening,
      value: equity,
      window: { from: day * DAY_MS, to: time },
      action: 'REDUCING',
      until: (day + 1) * DAY_MS,
      time,
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Price breaker (symbol).

export type PriceTracker = {
  /** [close time, close] of the bars within the window, oldest first. */
  samples: [number, number][];
  /** End of the cooldown of the last firing. */
  until: number | null;
  resetSeen: number | null;
};

/**
 * On each bar (time = its close): the references are the closes of earlier bars that closed
 * within `windowMs` before it, and the bar's own open. Move = the larger of
 * (highest reference − low) / highest reference and (high − lowest reference) / lowest reference.
 * Above `maxMove` (strictly), and not in a cooldown: HALTED for the symbol until
 * time + `cooldownMs`; after it the symbol trades again by itself.
 */
export function evaluatePriceMove(
  tracker: PriceTracker | undefined,
  observation: {
    symbol: string;
    candle: Pick<Candle, 'openTime' | 'open' | 'high' | 'low' | 'close'>;
    barMs: number;
    priceBreaker: PriceBreakerLimit | null;
    resetAt: number | null;
  },
): { tracker: PriceTracker; trigger: RiskTriggerFiredData | null } {
  const { symbol, candle, barMs, priceBreaker: limit, resetAt } = observation;
  const time = candle.openTime + barMs;
  let state: PriceTracker =
    !tracker || newReset(resetAt, tracker.resetSeen)
      ? { samples: [], until: null, resetSeen: resetAt ?? tracker?.resetSeen ?? null }
      : tracker;
  if (!limit) return { tracker: { ...state, samples: [] }, trigger: null };
  const from = time - limit.windowMs;
  let highest = candle.open;
  let lowest = candle.open;
  for (const [at, price] of state.samples) {
    if (at < from) continue;
    highest = Math.max(highest, price);
    lowest = Math.min(lowest, price);
  }
  const drop = (highest - candle.low) / highest;
  const rise = (candle.high - lowest) / lowest;
  const observed = Math.max(drop, rise);
  const samples = state.samples.filter(([at]) => at >= from);
  samples.push([time, candle.close]);
  let trigger: RiskTriggerFiredData | null = null;
  if (observed > limit.maxMove && (state.until === null || time >= state.until)) {
    const until = time + limit.cooldownMs;
    trigger = fire(
      'price_breaker',
      { type: 'symbol', id: symbol },
      {
        threshold: limit.maxMove,
        observed,
        reference: drop >= rise ? highest : lowest,
        value: drop >= rise ? candle.low : candle.high,
        window: { from: Math.min(from, candle.openTime), to: time },
        action: 'HALTED',
        until,
        time,
      },
    );
    state = { ...state, until };
  }
  return { tracker: { ...state, samples }, trigger };
}

// ---------------------------------------------------------------------------------------------
// All breakers of a bar.

export type BreakerState = {
  /** By scopeKey. */
  drawdown: Record<string, DrawdownTracker>;
  dailyLoss: Record<string, DailyLossTracker>;
  /** By symbol. */
  price: Record<string, PriceTracker>;
};

export const initialBreakerState = (): BreakerState => ({ drawdown: {}, dailyLoss: {}, price: {} });

export type BreakerInput = {
  /** The bar's close time. */
  time: number;
  portfolio: { id: string; equity: number };
  /** Strategies of the portfolio with their equity (strategyEquity). */
  strategies: readonly { id: string; equity: number }[];
  /** The bar, for the price breaker of its symbol. */
  bar?: { candle: Candle; barMs: number };
  /** Limits and the scopes' last resets. */
  snapshot: RiskSnapshot;
};

/**
 * Every breaker for one bar: drawdown and daily loss of the portfolio and of each strategy, the
 * price breaker of the bar's symbol. Returns a new state (the input is not changed) and the
 * triggers in that order.
 */
export function evaluateBreakers(
  state: BreakerState,
  input: BreakerInput,
): { state: BreakerState; triggers: RiskTriggerFiredData[] } {
  const { time, snapshot } = input;
  const next: BreakerState = {
    drawdown: { ...state.drawdown },
    dailyLoss: { ...state.dailyLoss },
    price: { ...state.price },
  };
  const triggers: RiskTriggerFiredData[] = [];
  const resetOf = (scope: RiskScope): number | null =>
    snapshot.states[scopeKey(scope)]?.resetAt ?? null;
  const equities: { scope: RiskScope; equity: number }[] = [
    { scope: { type: 'portfolio', id: input.portfolio.id }, equity: input.portfolio.equity },
    ...input.strategies.map(({ id, equity }) => ({
      scope: { type: 'strategy' as const, id },
      equity,
    })),
  ];
  for (const { scope, equity } of equities) {
    const key = scopeKey(scope);
    const limits = limitsIn(snapshot, scope);
    const observation = { scope, equity, time, resetAt: resetOf(scope) };
    const drawdown = evaluateDrawdown(state.drawdown[key], {
      ...observation,
      maxDrawdown: limits.maxDrawdown,
    });
    next.drawdown[key] = drawdown.tracker;
    if (drawdown.trigger) triggers.push(drawdown.trigger);
    const daily = evaluateDailyLoss(state.dailyLoss[key], {
      ...observation,
      dailyLossLimit: limits.dailyLossLimit,
    });
    next.dailyLoss[key] = daily.tracker;
    if (daily.trigger) triggers.push(daily.trigger);
  }
  if (input.bar) {
    const { candle, barMs } = input.bar;
    const scope: RiskScope = { type: 'symbol', id: candle.symbol };
    const price = evaluatePriceMove(state.price[candle.symbol], {
      symbol: candle.symbol,
      candle,
      barMs,
      priceBreaker: limitsIn(snapshot, scope).priceBreaker,
      resetAt: resetOf(scope),
    });
    next.price[candle.symbol] = price.tracker;
    if (price.trigger) triggers.push(price.trigger);
  }
  return { state: next, triggers };
}

// ---------------------------------------------------------------------------------------------
// Helpers for the engine.

/**
 * A strategy's equity: its capital plus the net PnL of its positions (realized − fees +
 * unrealized at the marks; a position without a mark at its average entry).
 */
export function strategyEquity(
  capital: number,
  positions: readonly Position[],
  markOf: (symbol: string) => number | undefined,
): number {
  let total = capital;
  for (const position of positions) {
    const mark = markOf(position.symbol) ?? position.averageEntryPrice;
    total += position.realizedPnl - position.feesPaid + unrealizedPnl(position, mark);
  }
  return total;
}

/** Whether a book (strategy × symbol) of the portfolio falls under a scope. */
export const bookInScope = (
  scope: RiskScope,
  portfolioId: string,
  book: { strategyId: string; symbol: string },
): boolean =>
  scope.type === 'portfolio'
    ? scope.id === portfolioId
    : scope.type === 'strategy'
      ? book.strategyId === scope.id
      : book.symbol === scope.id;

/**
 * Reduce-only market orders closing every open position of the portfolio under `scope` (a FLATTEN
 * trigger, or the kill switch with `flatten` and the portfolio scope). Client order ids are
 * `<strategyId>-<symbol>-flat-<time>`, so the same event always makes the same orders. The
 * engine cancels the books' open orders first.
 */
export function flattenOrders(
  portfolioId: string,
  positions: readonly Pick<Position, 'strategyId' | 'symbol' | 'quantity'>[],
  scope: RiskScope,
  time: number,
): OrderRequest[] {
  return positions
    .filter((p) => p.quantity !== 0 && bookInScope(scope, portfolioId, p))
    .map((p) => closingOrder(`${p.strategyId}-${p.symbol}-flat-${time}`, { ...p, portfolioId }));
}
