import { ValidationError, QcatError } from '../errors.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from '../market/types.js';
import { bookFill, equity, flatPosition, tradeOf, type ClosedTrade } from './accounting.js';
import { clientOrderId, reason, submitted, type OrderEvent, type OrderRequest } from './orders.js';
import { cleanQuantity, decimalsOf, floorToStep } from './rounding.js';
import { createSignal, type Signal } from './signals.js';
import { PaperVenue } from './venue.js';
import {
  RECENT_ORDERS_KEPT,
  allowAll,
  type RiskDecision,
  type RiskPortfolio,
  type RiskCheck,
  type BookConfig,
  type StepperConfig,
  type BookState,
  type EngineState,
  type TradingEvent,
  type StepResult,
} from './stepper-types.js';

export * from './stepper-types.js';

/**
 * The one step function of trading: `step(state, candle) → { state, events }`. The backtester
 * calls it for every bar of a range; the live paper engine will call it for every bar as it closes.
 * Same state, same candles → same events, whether run in one go or stopped, serialized (JSON) and
 * continued: that is what makes a backtest and a paper replay of the same candles agree.
 *
 * Per candle (of the configured timeframe, of a symbol some book trades, newer than the last one
 * of its symbol — anything else is ignored, so a replayed bar after a restart does nothing):
 *   1. the venue fills resting orders on this bar (market orders at its open, limit and stop
 *      orders where its path crosses them); each fill is booked: position, cash;
 *   2. the bar's close becomes the symbol's mark price;
 *   3. each book (strategy × symbol) on the symbol updates its signal with the bar; when the target
 *      fraction changes, its open orders are cancelled and a market order is sized to reach
 *      target × allocation × equity / close (rounded down to the lot; none below minNotional),
 *      put through the risk check and, if allowed, submitted to the venue. It fills at the next
 *      bar's open.
 *
 * Ownership: `step` updates the state it is given and returns that same object (copying it every
 * bar would cost more than the step). Callers keep no other reference to a state they passed in;
 * a copy that must survive is taken first (`structuredClone` or a JSON round trip). Apart from that
 * it is pure: no clock, no randomness, no I/O; time comes from the candles.
 */

const NONE: readonly TradingEvent[] = Object.freeze([]);

type Book = {
  index: number;
  config: BookConfig;
  signal: Signal;
  instrument: Instrument;
  lotDecimals: number;
};

/** Anything events can be pushed onto. */
type Sink = { push(...events: TradingEvent[]): unknown };

/** `items[index]`, which the configuration guarantees; a state of another configuration throws. */
function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined)
    throw new RangeError(`the state has no book ${index}: another configuration's?`);
  return item;
}

const bookKey = (strategyId: string, symbol: string): string => `${strategyId}\u0000${symbol}`;

export class Stepper {
  readonly venue: PaperVenue;
  private readonly books: Book[] = [];
  private readonly bySymbol = new Map<string, Book[]>();
  private readonly byKey = new Map<string, Book>();
  private readonly barMs: number;
  private readonly risk: RiskCheck;
  private readonly venueEvents: OrderEvent[] = [];
  /** The answer of a step without events for the last state seen: always the same, so shared. */
  private quiet: StepResult | null = null;

  constructor(readonly config: StepperConfig) {
    const invalid = (message: string): never => {
      throw new ValidationError('INVALID_TRADING_CONFIG', message);
    };
    if (!(config.initialCash > 0) || !Number.isFinite(config.initialCash))
      invalid('initialCash must be > 0');
    this.barMs = TIMEFRAME_MS[config.timeframe];
    if (!Number.isFinite(this.barMs)) invalid(`unknown timeframe ${config.timeframe}`);
    this.venue = new PaperVenue(config.instruments, config.venue);
    this.risk = config.risk ?? allowAll;
    config.books.forEach((bookConfig, index) => {
      const { strategyId, symbol, allocation } = bookConfig;
      const instrument = this.venue.instrument(symbol);
      if (!instrument) return invalid(`book ${strategyId}: no instrument ${symbol}`);
      if (instrument.quote !== config.currency)
        invalid(
          `book ${strategyId}: ${symbol} is quoted in ${instrument.quote}, not ${config.currency}`,
        );
      const sized = config.sizing !== undefined;
      if (!(sized ? allocation >= 0 : allocation > 0) || !Number.isFinite(allocation))
        invalid(`book ${strategyId}: allocation must be ${sized ? '≥ 0' : '> 0'}`);
      const key = bookKey(strategyId, symbol);
      if (this.byKey.has(key)) invalid(`book ${strategyId} on ${symbol} is configured twice`);
      const book: Book = {
        index,
        config: bookConfig,
        signal: createSignal(bookConfig.kind, bookConfig.parameters),
        instrument,
        lotDecimals: decimalsOf(instrument.lotSize),
      };
      this.books.push(book);
      this.byKey.set(key, book);
      const onSymbol = this.bySymbol.get(symbol) ?? [];
      onSymbol.push(book);
      this.bySymbol.set(symbol, onSymbol);
    });
  }

  initialState(): EngineState {
    const { portfolioId, currency, initialCash } = this.config;
    return {
      version: 1,
      bars: 0,
      account: {
        portfolioId,
        currency,
        cash: initialCash,
        feesPaid: 0,
        positions: this.books.map(({ config }) => flatPosition(config.strategyId, config.symbol)),
      },
      venue: this.venue.initialState(),
      books: this.books.map(({ config, signal }) => ({
        strategyId: config.strategyId,
        symbol: config.symbol,
        signal: signal.initialState(),
        target: 0,
        orderBar: -1,
        ordersOnBar: 0,
      })),
      marks: {},
      lastOpenTime: {},
    };
  }

  /** One bar: see the module comment. */
  step(state: EngineState, candle: Candle): StepResult {
    if (candle.timeframe !== this.config.timeframe) return this.nothing(state);
    const books = this.bySymbol.get(candle.symbol);
    if (!books) return this.nothing(state);
    const symbol = candle.symbol;
    const last = state.lastOpenTime[symbol];
    if (last !== undefined && candle.openTime <= last) return this.nothing(state);
    state.lastOpenTime[symbol] = candle.openTime;
    state.bars++;

    let events: TradingEvent[] | null = null;
    const fills = this.venueEvents;
    this.venue.onBar(state.venue, candle, fills);
    if (fills.length > 0) {
      events = [];
      this.book(state, fills, events);
      fills.length = 0;
    }
    state.marks[symbol] = candle.close;

    const time = candle.openTime + this.barMs;
    const sizing = this.config.sizing;
    for (const book of books) {
      if (book.config.enabled === false) continue;
      const bookState = at(state.books, book.index);
      const target = book.signal.update(bookState.signal, candle);
      if (target === bookState.target) {
        if (sizing) events = this.resize(state, book, bookState, candle, time, events, sizing.band);
        continue;
      }
      bookState.target = target;
      events ??= [];
      if (sizing) this.resize(state, book, bookState, candle, time, events, 0);
      else this.rebalance(state, book, bookState, candle, time, events);
    }
    return events ? { state, events } : this.nothing(state);
  }

  /** `{ state, events: [] }` without allocating on every quiet bar (it is frozen). */
  private nothing(state: EngineState): StepResult {
    const quiet = this.quiet;
    if (quiet?.state === state) return quiet;
    return (this.quiet = Object.freeze({ state, events: NONE }));
  }

  /**
   * An order from outside the strategies' signals (a person, a take-profit): through the risk
   * check to the venue, like the books' own orders. Its strategy and symbol must be a book.
   */
  submit(state: EngineState, order: OrderRequest, time: number): StepResult {
    const book = this.byKey.get(bookKey(order.strategyId, order.symbol));
    if (!book || order.portfolioId !== this.config.portfolioId)
      throw new QcatError(
        'UNKNOWN_BOOK',
        `portfolio ${this.config.portfolioId} has no book ${order.strategyId} on ${order.symbol}`,
      );
    const events: TradingEvent[] = [];
    this.route(state, book, order, time, events);
    return { state, events };
  }

  /** Cancels an open order; no events if it is not open. */
  cancel(state: EngineState, id: string, why: string, time: number): StepResult {
    const events: TradingEvent[] = [];
    this.venue.cancel(state.venue, id, why, time, events);
    return { state, events };
  }

  /** Cash + Σ quantity × last close. */
  equity(state: EngineState): number {
    return equity(state.account, (symbol) => state.marks[symbol]);
  }

  /** Books the venue's events: each fill is followed by its accounting events. */
  private book(state: EngineState, venueEvents: readonly OrderEvent[], events: Sink): void {
    for (const event of venueEvents) {
      events.push(event);
      if (event.type !== 'OrderFilled' && event.type !== 'OrderPartiallyFilled') continue;
      const { strategyId, symbol, side, fill, clientOrderId: id, time } = event.data;
      const book = this.byKey.get(bookKey(strategyId, symbol));
      if (!book) continue;
      const booked = bookFill(state.account, book.index, {
        side,
        quantity: fill.quantity,
        price: fill.price,
        fee: fill.fee,
        time,
        clientOrderId: id,
        fillId: fill.fillId,
      });
      state.account = booked.account;
      events.push(...booked.events);
    }
  }

  private rebalance(
    state: EngineState,
    book: Book,
    bookState: BookState,
    candle: Candle,
    time: number,
    events: TradingEvent[],
  ): void {
    const { strategyId, symbol, allocation } = book.config;
    const { lotSize, minNotional } = book.instrument;
    for (const open of this.venue.openOrders(state.venue, strategyId, symbol)) {
      this.venue.cancel(
        state.venue,
        open.clientOrderId,
        reason('TARGET_CHANGED', { target: bookState.target }),
        time,
        events,
      );
    }
    const price = candle.close;
    const held = at(state.account.positions, book.index).quantity;
    const capital = Math.max(0, this.equity(state)) * allocation * Math.abs(bookState.target);
    const size = floorToStep(capital / price, lotSize, book.lotDecimals);
    const desired = bookState.target < 0 ? -size : size;
    const delta = cleanQuantity(desired - held);
    if (delta === 0) return;
    const quantity = floorToStep(Math.abs(delta), lotSize, book.lotDecimals);
    if (!(quantity > 0) || quantity * price < minNotional) return;
    this.placeMarketOrder(
      state,
      book,
      bookState,
      candle,
      time,
      { held, desired, delta, quantity },
      events,
    );
  }

  /**
   * Balance-driven sizing (`config.sizing`): moves the book's position toward
   * allocation × equity × |target| (clipped to the limits' position headroom) with one market order
   * no larger than the order headroom. `band` 0 (the target just changed): its open orders are
   * cancelled and it always acts; otherwise it waits for open orders to fill and acts only when the
   * position is off its target by more than `band` of the target (or must close). Answers `events`,
   * created when something happened.
   */
  private resize(
    state: EngineState,
    book: Book,
    bookState: BookState,
    candle: Candle,
    time: number,
    events: TradingEvent[] | null,
    band: number,
  ): TradingEvent[] | null {
    const { strategyId, symbol, allocation } = book.config;
    const { lotSize, minNotional } = book.instrument;
    const open = this.venue.openOrders(state.venue, strategyId, symbol);
    if (band === 0) {
      for (const order of open) {
        events ??= [];
        this.venue.cancel(
          state.venue,
          order.clientOrderId,
          reason('TARGET_CHANGED', { target: bookState.target }),
          time,
          events,
        );
      }
    } else if (open.length > 0) return events;
    const price = candle.close;
    const held = at(state.account.positions, book.index).quantity;
    const equity = Math.max(0, this.equity(state));
    const room = this.config.headroom?.(book.config, equity);
    const wanted = Math.min(
      equity * allocation * Math.abs(bookState.target),
      room?.positionNotional ?? Infinity,
    );
    const size = floorToStep(Math.max(0, wanted) / price, lotSize, book.lotDecimals);
    const desired = bookState.target < 0 ? -size : size;
    const delta = cleanQuantity(desired - held);
    if (delta === 0) return events;
    if (band > 0 && desired !== 0 && Math.abs(delta) <= band * Math.abs(desired)) return events;
    const step =
      room && Number.isFinite(room.orderNotional)
        ? floorToStep(room.orderNotional / price, lotSize, book.lotDecimals)
        : Infinity;
    const quantity = Math.min(floorToStep(Math.abs(delta), lotSize, book.lotDecimals), step);
    if (!(quantity > 0) || quantity * price < minNotional) return events;
    const placed: TradingEvent[] = events ?? [];
    this.placeMarketOrder(
      state,
      book,
      bookState,
      candle,
      time,
      { held, desired, delta, quantity, quiet: band > 0 },
      placed,
    );
    return placed.length > 0 ? placed : events;
  }

  /** A market order of `quantity` in the direction of `delta`, through the risk check. */
  private placeMarketOrder(
    state: EngineState,
    book: Book,
    bookState: BookState,
    candle: Candle,
    time: number,
    move: { held: number; desired: number; delta: number; quantity: number; quiet?: boolean },
    events: TradingEvent[],
  ): void {
    const { strategyId, symbol } = book.config;
    const { held, desired, delta, quantity } = move;
    const sequence = bookState.orderBar === candle.openTime ? bookState.ordersOnBar : 0;
    const reduceOnly =
      held !== 0 && Math.abs(desired) < Math.abs(held) && Math.sign(desired) !== -Math.sign(held);
    const order: OrderRequest = {
      clientOrderId: clientOrderId(
        strategyId,
        symbol,
        candle.openTime,
        sequence,
        this.config.clientOrderIds === 'strategy',
      ),
      portfolioId: this.config.portfolioId,
      strategyId,
      symbol,
      side: delta > 0 ? 'buy' : 'sell',
      type: 'market',
      quantity,
      limitPrice: null,
      stopPrice: null,
      reduceOnly,
    };
    // A resize the limits refuse now is left for a later bar, unrecorded (it would repeat).
    if (move.quiet && !this.check(state, book, order, time).ok) return;
    bookState.orderBar = candle.openTime;
    bookState.ordersOnBar = sequence + 1;
    this.route(state, book, order, time, events);
  }

  /** OrderSubmitted, then the risk check (OrderDenied) or the venue (OrderAccepted/Rejected). */
  private route(
    state: EngineState,
    book: Book,
    order: OrderRequest,
    time: number,
    events: TradingEvent[],
  ): void {
    events.push({ type: 'OrderSubmitted', data: submitted(order, time) });
    const decision = this.check(state, book, order, time);
    if (!decision.ok) {
      events.push({
        type: 'OrderDenied',
        data: { clientOrderId: order.clientOrderId, reason: decision.reason, time },
      });
      return;
    }
    const times = (at(state.books, book.index).orderTimes ??= []);
    times.push(time);
    if (times.length > RECENT_ORDERS_KEPT) times.shift();
    this.venue.submit(state.venue, order, time, events);
  }

  /** The pre-trade check of `order` against the state now (pure). */
  private check(state: EngineState, book: Book, order: OrderRequest, time: number): RiskDecision {
    const { strategyId, symbol } = book.config;
    return this.risk(
      order,
      {
        portfolioId: this.config.portfolioId,
        strategyId,
        symbol,
        time,
        referencePrice: state.marks[symbol] ?? NaN,
        equity: this.equity(state),
        cash: state.account.cash,
        positionQuantity: at(state.account.positions, book.index).quantity,
        openOrders: this.venue.openOrders(state.venue, strategyId, symbol).length,
      },
      this.riskPortfolio(state),
    );
  }

  /** Every book's position, open orders, mark and recent order times, for the risk check. */
  private riskPortfolio(state: EngineState): RiskPortfolio {
    const pending = new Map<string, number>();
    for (const { request, remainingQuantity } of state.venue.open) {
      const key = bookKey(request.strategyId, request.symbol);
      const signed = request.side === 'buy' ? remainingQuantity : -remainingQuantity;
      pending.set(key, cleanQuantity((pending.get(key) ?? 0) + signed));
    }
    return {
      books: this.books.map(({ config, index }) => {
        const position = at(state.account.positions, index);
        return {
          strategyId: config.strategyId,
          symbol: config.symbol,
          quantity: position.quantity,
          pending: pending.get(bookKey(config.strategyId, config.symbol)) ?? 0,
          mark: state.marks[config.symbol] ?? position.averageEntryPrice,
          orderTimes: at(state.books, index).orderTimes ?? [],
        };
      }),
    };
  }
}

export const createStepper = (config: StepperConfig): Stepper => new Stepper(config);

/** The round trips in a list of events (from their PositionClosed events). */
export function closedTrades(events: readonly TradingEvent[]): ClosedTrade[] {
  const trades: ClosedTrade[] = [];
  for (const event of events) {
    if (event.type !== 'PositionClosed') continue;
    trades.push(tradeOf(event.data));
  }
  return trades;
}
