import type { JsonObject } from '../eventstore/event-store.js';
import { type Instrument } from '../market/types.js';
import type { Timeframe } from '../strategies/kinds.js';
import { type Account, type AccountingEvent } from './accounting.js';
import { type OrderEvent, type OrderRequest } from './orders.js';
import { type SignalState } from './signals.js';
import { type PaperVenueCosts, type PaperVenueState } from './venue.js';

/** The step function's configuration, state and results (stepper.ts), and its risk check's port. */
/** A pre-trade check: `reason` is `CODE: key=value, ...` (see `reason()` in orders.ts). */
export type RiskDecision = { ok: true } | { ok: false; reason: string };

export type RiskContext = {
  portfolioId: string;
  strategyId: string;
  symbol: string;
  /** Submission time (the close of the deciding bar). */
  time: number;
  /** The last close of the symbol. */
  referencePrice: number;
  equity: number;
  cash: number;
  /** The book's position before the order. */
  positionQuantity: number;
  /** Open orders of the book. */
  openOrders: number;
};

/** One book as a risk check sees it, for limits that span books (core/risk/checks.ts). */
export type BookExposure = {
  strategyId: string;
  symbol: string;
  /** Signed position quantity. */
  quantity: number;
  /** Signed remaining quantity of the book's open orders (buys +, sells −). */
  pending: number;
  /** Last close of the symbol; before the first bar, the position's average entry. */
  mark: number;
  /** When the book's last orders passed the risk check, oldest first (BookState.orderTimes). */
  orderTimes: readonly number[];
};

/** The whole portfolio at the time of a check: every book, the order's own included. */
export type RiskPortfolio = { books: readonly BookExposure[] };

/** How many order times a book keeps for order-rate limits (so a limit allows at most this many). */
export const RECENT_ORDERS_KEPT = 100;

export type RiskCheck = (
  order: OrderRequest,
  context: RiskContext,
  portfolio: RiskPortfolio,
) => RiskDecision;

/** The default: every order passes. */
export const allowAll: RiskCheck = () => ({ ok: true });

/** A strategy trading one symbol with a share of the portfolio's equity. */
export type BookConfig = {
  strategyId: string;
  symbol: string;
  /** A kind of core/strategies/kinds.ts and its parameters (checked, defaults filled in). */
  kind: string;
  parameters: JsonObject;
  /** Share of the portfolio's equity the strategy trades with, > 0 (≥ 0 with `sizing`). */
  allocation: number;
  /**
   * With `sizing`: the strategy's own capital (what it asked for), the fixed base of its risk
   * measures (drawdown), so that a change of allocation does not read as a loss. Unused by `step`.
   */
  capital?: number;
  /**
   * false: the book's signal is not evaluated, so it places no orders of its own (a paused or
   * retiring strategy); its position, open orders and fills carry on. Default true.
   */
  enabled?: boolean;
};

export type StepperConfig = {
  portfolioId: string;
  /** Quote currency of every instrument traded: the account's currency. */
  currency: string;
  initialCash: number;
  /** Candles of this timeframe drive the books; others are ignored. */
  timeframe: Timeframe;
  instruments: readonly Instrument[];
  books: readonly BookConfig[];
  venue?: Partial<PaperVenueCosts>;
  /**
   * How the books' own orders are named: `book` (the default) `<strategyId>-<symbol>-<bar>-<n>`;
   * `strategy` `<strategyId>-<bar>-<n>`, which gave two books of one strategy ordering on one bar
   * the same id. Only the paper engine's records written before it was fixed say `strategy`.
   */
  clientOrderIds?: 'book' | 'strategy';
  risk?: RiskCheck;
  /**
   * Balance-driven sizing (a portfolio allocation, docs/portfolio.md): each bar, every enabled
   * book's position is moved toward allocation × equity × target when it is off by more than
   * `band` (a fraction of the target), one market order at a time, within `headroom`. A book's
   * allocation may then be 0 (its position is closed). Absent: positions are sized only when a
   * signal's target changes, as always.
   */
  sizing?: { band: number };
  /** With `sizing`: what the risk limits leave room for (code, like `risk`). */
  headroom?: Headroom;
};

/** The largest order and position (quote currency) the risk limits allow a book now. */
export type Headroom = (
  book: { strategyId: string; symbol: string },
  equity: number,
) => { orderNotional: number; positionNotional: number };

export type BookState = {
  strategyId: string;
  symbol: string;
  signal: SignalState;
  /** The target fraction last acted on. */
  target: number;
  /** Bar (openTime) of the book's last order and how many it placed on that bar. */
  orderBar: number;
  ordersOnBar: number;
  /**
   * Times (submission) of the book's last orders that passed the risk check, oldest first, at most
   * RECENT_ORDERS_KEPT: for order-rate limits. Absent until the first such order.
   */
  orderTimes?: number[];
};

/** Everything the step function needs from one bar to the next. Plain JSON. */
export type EngineState = {
  version: 1;
  /** Candles processed. */
  bars: number;
  account: Account;
  venue: PaperVenueState;
  /** One per book of the configuration, in its order; positions likewise. */
  books: BookState[];
  /** Last close per symbol. */
  marks: Record<string, number>;
  /** openTime of the last candle processed per symbol. */
  lastOpenTime: Record<string, number>;
};

export type TradingEvent = OrderEvent | AccountingEvent;

export type StepResult = {
  state: EngineState;
  /** In the order they happened; a shared empty array when nothing did. */
  events: readonly TradingEvent[];
};
