import { reason, type OrderRequest } from '../trading/orders.js';
import { cleanQuantity } from '../trading/rounding.js';
import type {
  BookExposure,
  RiskCheck,
  RiskContext,
  RiskDecision,
  RiskPortfolio,
} from '../trading/stepper.js';
import { num, scopeKey, strictness, type RiskScope, type TradingState } from './common.js';
import type { ExitSettings } from './exits.js';
import { DEFAULT_LIMITS, type RiskLimits } from './limits.js';
import { effectiveState, type ScopeTradingState } from './trading-state.js';

/**
 * The pre-trade check: a pure function of the order, the risk snapshot (limits, trading states,
 * kill switch) and the portfolio's exposure. A refusal's reason is `CODE: key=value, ...`; every
 * code is in DENIAL_CODES and docs/risk.md.
 */

export const DENIAL_CODES = [
  'REDUCE_ONLY_WOULD_INCREASE_POSITION',
  'KILL_SWITCH_ENGAGED',
  'TRADING_HALTED',
  'REDUCING_ONLY',
  'NO_REFERENCE_PRICE',
  'ORDER_RATE_EXCEEDED',
  'NOTIONAL_EXCEEDS_MAX_PER_ORDER',
  'POSITION_EXCEEDS_MAX_NOTIONAL',
  'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY',
  'GROSS_EXPOSURE_EXCEEDS_MAX',
  'LEVERAGE_EXCEEDS_MAX',
] as const;
export type DenialCode = (typeof DENIAL_CODES)[number];

/** Everything the risk streams say that the engine needs: plain JSON, folded by evolveSnapshot. */
export type RiskSnapshot = {
  /** By scopeKey (`portfolio:p1`); a scope without an entry has DEFAULT_LIMITS of its type. */
  limits: Record<string, RiskLimits>;
  /** By scopeKey; a scope without an entry is ACTIVE. */
  states: Record<string, Pick<ScopeTradingState, 'base' | 'temporary' | 'resetAt'>>;
  killSwitch: { engaged: boolean; flatten: boolean; since: number | null };
  /** Exit rules and moved levels by exitsKey (core/risk/exits.ts). */
  exits: Record<string, ExitSettings>;
};

export const emptySnapshot = (): RiskSnapshot => ({
  limits: {},
  states: {},
  killSwitch: { engaged: false, flatten: false, since: null },
  exits: {},
});

export const limitsIn = (snapshot: RiskSnapshot, scope: RiskScope): RiskLimits =>
  snapshot.limits[scopeKey(scope)] ?? { ...DEFAULT_LIMITS[scope.type] };

/** The scope's state in force at `time`. */
export function stateIn(snapshot: RiskSnapshot, scope: RiskScope, time: number): TradingState {
  const state = snapshot.states[scopeKey(scope)];
  return state ? effectiveState(state, time) : 'ACTIVE';
}

/** The scopes an order of this book falls under, in the order checks visit them. */
export const scopesOf = (portfolioId: string, strategyId: string, symbol: string): RiskScope[] => [
  { type: 'portfolio', id: portfolioId },
  { type: 'strategy', id: strategyId },
  { type: 'symbol', id: symbol },
];

/**
 * The strictest state among the scopes at `time` and the first scope holding it (portfolio,
 * strategy, symbol): the state an order of the book trades under.
 */
export function strictestState(
  snapshot: RiskSnapshot,
  scopes: readonly RiskScope[],
  time: number,
): { state: TradingState; scope: RiskScope | null } {
  let found: { state: TradingState; scope: RiskScope | null } = { state: 'ACTIVE', scope: null };
  for (const scope of scopes) {
    const state = stateIn(snapshot, scope, time);
    if (strictness(state) > strictness(found.state)) found = { state, scope };
  }
  return found;
}

/** What an order does to its book's position (open orders counted as if filled). */
export type OrderEffect = {
  /** Position + open orders, before and after this order. */
  before: number;
  after: number;
  /** It shrinks the position without flipping it. */
  reducing: boolean;
};

const signedQuantity = (order: Pick<OrderRequest, 'side' | 'quantity'>): number =>
  order.side === 'buy' ? order.quantity : -order.quantity;

export function effectOf(
  order: Pick<OrderRequest, 'side' | 'quantity'>,
  book: BookExposure,
): OrderEffect {
  const before = cleanQuantity(book.quantity + book.pending);
  const after = cleanQuantity(before + signedQuantity(order));
  const reducing =
    before !== 0 &&
    Math.abs(after) < Math.abs(before) &&
    (after === 0 || Math.sign(after) === Math.sign(before));
  return { before, after, reducing };
}

/** The books of the portfolio, the order's own book guaranteed among them. */
function booksOf(context: RiskContext, portfolio: RiskPortfolio | undefined): BookExposure[] {
  const books = portfolio ? [...portfolio.books] : [];
  if (!books.some((b) => b.strategyId === context.strategyId && b.symbol === context.symbol))
    books.push({
      strategyId: context.strategyId,
      symbol: context.symbol,
      quantity: context.positionQuantity,
      pending: 0,
      mark: context.referencePrice,
      orderTimes: [],
    });
  return books;
}

const inScope = (book: BookExposure, scope: RiskScope): boolean =>
  scope.type === 'portfolio' ||
  (scope.type === 'strategy' ? book.strategyId === scope.id : book.symbol === scope.id);

/** a > b beyond float noise. */
const above = (a: number, b: number): boolean => a - b > 1e-9 * Math.max(1, Math.abs(b));

const deny = (
  code: DenialCode,
  fields: Record<string, string | number | boolean>,
): RiskDecision => ({
  ok: false,
  reason: reason(code, fields),
});

/** The price an order's notional is taken at: its limit or stop price, else the last close. */
const orderPrice = (order: OrderRequest, referencePrice: number): number =>
  (order.type === 'limit' ? order.limitPrice : order.type === 'stop' ? order.stopPrice : null) ??
  referencePrice;

type Measures = { position: number; gross: number };

/**
 * The pre-trade check. In this order, the first that fails answers:
 * 1. a reduce-only order must shrink its position (REDUCE_ONLY_WOULD_INCREASE_POSITION);
 * 2. while the kill switch is engaged only reduce-only orders pass (KILL_SWITCH_ENGAGED);
 * 3. the strictest trading state of the portfolio, strategy and symbol: HALTED passes only
 *    reduce-only orders (TRADING_HALTED), REDUCING only orders that shrink (REDUCING_ONLY);
 * 4. a reference price is needed (NO_REFERENCE_PRICE);
 * 5. an order that does not shrink its position: order rate, then notional per order;
 * 6. position notional, position share of equity, gross exposure, leverage: an order is denied
 *    when it makes the measure larger and leaves it above the limit (so a shrinking order never
 *    fails them, and a measure already above its limit after a price move may still go down).
 * Each limit is checked at the portfolio, the strategy and the symbol scope, in that order.
 */
export function preTradeCheck(
  order: OrderRequest,
  context: RiskContext,
  snapshot: RiskSnapshot,
  portfolio?: RiskPortfolio,
): RiskDecision {
  const { strategyId, symbol, time } = context;
  const books = booksOf(context, portfolio);
  const own = books.find((b) => b.strategyId === strategyId && b.symbol === symbol);
  if (!own) throw new Error('unreachable: booksOf adds the own book');
  const effect = effectOf(order, own);
  const scopes = scopesOf(context.portfolioId, strategyId, symbol);
  const stopped = stateDenial(order, effect, snapshot, scopes, time);
  if (stopped) return stopped;

  const price = context.referencePrice;
  if (!(price > 0) || !Number.isFinite(price)) return deny('NO_REFERENCE_PRICE', { symbol });

  const limits = scopes.map((scope) => ({
    scope,
    key: scopeKey(scope),
    ...limitsIn(snapshot, scope),
  }));
  if (!effect.reducing) {
    const denied = orderDenial(order, orderPrice(order, price), books, limits, time);
    if (denied) return denied;
  }
  return exposureDenial({ books, own, effect, limits, context }) ?? { ok: true };
}

type ScopedLimits = RiskLimits & { scope: RiskScope; key: string };

/** Steps 1 to 3: reduce-only, the kill switch, the strictest trading state. */
function stateDenial(
  order: OrderRequest,
  effect: OrderEffect,
  snapshot: RiskSnapshot,
  scopes: readonly RiskScope[],
  time: number,
): RiskDecision | null {
  const protective = order.reduceOnly && effect.reducing;
  if (order.reduceOnly && !effect.reducing)
    return deny('REDUCE_ONLY_WOULD_INCREASE_POSITION', {
      position: effect.before,
      side: order.side,
      quantity: order.quantity,
    });
  if (snapshot.killSwitch.engaged && !protective) {
    const since = snapshot.killSwitch.since;
    // An ISO instant, as every other reason and event writes times for people.
    return deny('KILL_SWITCH_ENGAGED', {
      since: since === null ? 'unknown' : new Date(since).toISOString(),
    });
  }
  const strictest = strictestState(snapshot, scopes, time);
  if (!strictest.scope) return null;
  const where = scopeKey(strictest.scope);
  const temporary = snapshot.states[where]?.temporary;
  const until: Record<string, number> =
    temporary && time < temporary.until ? { until: temporary.until } : {};
  if (strictest.state === 'HALTED' && !protective)
    return deny('TRADING_HALTED', { scope: where, ...until });
  if (strictest.state === 'REDUCING' && !effect.reducing)
    return deny('REDUCING_ONLY', { scope: where, ...until });
  return null;
}

/** Step 5, for an order that does not shrink its position: order rate, then notional per order. */
function orderDenial(
  order: OrderRequest,
  atPrice: number,
  books: readonly BookExposure[],
  limits: readonly ScopedLimits[],
  time: number,
): RiskDecision | null {
  for (const { scope, key, orderRate } of limits) {
    if (!orderRate) continue;
    const from = time - orderRate.windowMs;
    let orders = 0;
    for (const book of books) {
      if (!inScope(book, scope)) continue;
      for (const at of book.orderTimes) if (at > from && at <= time) orders++;
    }
    if (orders >= orderRate.maxOrders)
      return deny('ORDER_RATE_EXCEEDED', {
        scope: key,
        orders,
        max: orderRate.maxOrders,
        windowMs: orderRate.windowMs,
      });
  }
  const notional = order.quantity * atPrice;
  for (const { key, maxOrderNotional } of limits) {
    if (maxOrderNotional !== null && above(notional, maxOrderNotional))
      return deny('NOTIONAL_EXCEEDS_MAX_PER_ORDER', {
        scope: key,
        notional: num(notional),
        max: maxOrderNotional,
      });
  }
  return null;
}

/** Step 6: position notional and share of equity, gross exposure, leverage, before and after. */
function exposureDenial(input: {
  books: readonly BookExposure[];
  own: BookExposure;
  effect: OrderEffect;
  limits: readonly ScopedLimits[];
  context: RiskContext;
}): RiskDecision | null {
  const { books, own, effect, limits, context } = input;
  const { symbol, equity, referencePrice: price } = context;
  const markOf = (book: BookExposure): number => (book.symbol === symbol ? price : book.mark);
  const measure = (scope: RiskScope, withOrder: boolean): Measures => {
    let net = 0;
    let gross = 0;
    for (const book of books) {
      const mine = book === own;
      const quantity = mine
        ? withOrder
          ? effect.after
          : effect.before
        : book.quantity + book.pending;
      if (book.symbol === symbol && (scope.type !== 'strategy' || mine)) net += quantity;
      if (inScope(book, scope)) gross += Math.abs(quantity) * (markOf(book) || 0);
    }
    return { position: Math.abs(cleanQuantity(net)) * price, gross };
  };
  const measured = limits.map((entry) => ({
    ...entry,
    before: measure(entry.scope, false),
    after: measure(entry.scope, true),
  }));
  const grows = (after: number, before: number, bound: number): boolean =>
    above(after, bound) && above(after, before);
  const share = (value: number): number =>
    equity > 0 ? num(value / equity) : value > 0 ? Infinity : 0;
  for (const { key, maxPositionNotional, before, after } of measured) {
    if (maxPositionNotional !== null && grows(after.position, before.position, maxPositionNotional))
      return deny('POSITION_EXCEEDS_MAX_NOTIONAL', {
        scope: key,
        notional: num(after.position),
        max: maxPositionNotional,
      });
  }
  for (const { key, maxPositionShareOfEquity: max, before, after } of measured) {
    if (max !== null && grows(after.position, before.position, max * Math.max(equity, 0)))
      return deny('POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY', {
        scope: key,
        share: share(after.position),
        max,
        notional: num(after.position),
        equity: num(equity),
      });
  }
  for (const { key, maxGrossExposure, before, after } of measured) {
    if (maxGrossExposure !== null && grows(after.gross, before.gross, maxGrossExposure))
      return deny('GROSS_EXPOSURE_EXCEEDS_MAX', {
        scope: key,
        gross: num(after.gross),
        max: maxGrossExposure,
      });
  }
  for (const { key, maxLeverage, before, after } of measured) {
    if (maxLeverage !== null && grows(after.gross, before.gross, maxLeverage * Math.max(equity, 0)))
      return deny('LEVERAGE_EXCEEDS_MAX', {
        scope: key,
        leverage: share(after.gross),
        max: maxLeverage,
        gross: num(after.gross),
        equity: num(equity),
      });
  }
  return null;
}

/**
 * The engine's RiskCheck (StepperConfig.risk) over a snapshot: a fixed one, or a function that
 * returns the current one on every check (so a live engine sees limits, states and the kill switch
 * change without a new Stepper).
 */
export function createRiskCheck(source: RiskSnapshot | (() => RiskSnapshot)): RiskCheck {
  return (order, context, portfolio) =>
    preTradeCheck(order, context, typeof source === 'function' ? source() : source, portfolio);
}
