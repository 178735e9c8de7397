import type { DomainEvent } from '../decider.js';
import type { Side } from './orders.js';
import { cleanQuantity } from './rounding.js';

/**
 * Netting positions per (strategy, symbol) and the cash account of a portfolio.
 *
 * - A position has a signed quantity (long > 0, short < 0) and one average entry price.
 * - A fill on the position's side adds: the average entry becomes the quantity-weighted mean.
 * - A fill against it reduces: PnL (fill price − average entry) × closed quantity × sign is
 *   realized; the average entry stays. Down to zero it closes.
 * - A fill against it larger than it flips: the whole position is closed (realized as above) and
 *   the rest opens on the other side at the fill price. The fill's fee is split pro rata.
 * - Cash (quote currency): a buy pays quantity × price + fee, a sell receives quantity × price − fee.
 *   Equity = cash + Σ quantity × mark (a short's value is negative).
 *
 * A round trip ("trade") runs from a position leaving zero to its return to zero (or its flip); it
 * closes with its net PnL = realized PnL − every fee paid during it (entry fees included).
 */

export type Trip = {
  side: 'long' | 'short';
  openedAt: number;
  entryQuantity: number;
  entryNotional: number;
  exitQuantity: number;
  exitNotional: number;
  realizedPnl: number;
  fees: number;
};

export type Position = {
  strategyId: string;
  symbol: string;
  /** Signed base quantity: long > 0, short < 0. */
  quantity: number;
  /** 0 while flat. */
  averageEntryPrice: number;
  /** Over the position's whole life, before fees. */
  realizedPnl: number;
  feesPaid: number;
  /** The open round trip; null while flat. */
  trip: Trip | null;
};

/** A finished round trip. `netPnl` = `realizedPnl` − `fees`. */
export type ClosedTrade = {
  strategyId: string;
  symbol: string;
  side: 'long' | 'short';
  openedAt: number;
  closedAt: number;
  /** Total quantity entered during the round trip. */
  quantity: number;
  /** Quantity-weighted mean price of the entries and of the exits. */
  entryPrice: number;
  exitPrice: number;
  realizedPnl: number;
  fees: number;
  netPnl: number;
};

export type Account = {
  portfolioId: string;
  /** Quote currency of cash, fees and PnL. */
  currency: string;
  cash: number;
  feesPaid: number;
  /** One per (strategy, symbol) the portfolio trades. */
  positions: Position[];
};

export const flatPosition = (strategyId: string, symbol: string): Position => ({
  strategyId,
  symbol,
  quantity: 0,
  averageEntryPrice: 0,
  realizedPnl: 0,
  feesPaid: 0,
  trip: null,
});

/** Unrealized PnL at `mark`: (mark − average entry) × signed quantity. */
export const unrealizedPnl = (position: Position, mark: number): number =>
  position.quantity === 0 ? 0 : (mark - position.averageEntryPrice) * position.quantity;

export type PositionFill = {
  side: Side;
  quantity: number;
  price: number;
  fee: number;
  time: number;
};

export type PositionUpdate = {
  position: Position;
  /** Realized by this fill, before fees. */
  realizedPnl: number;
  /** The round trip this fill ended, if it ended one (a close or a flip). */
  closed: ClosedTrade | null;
};

const trip = (
  side: 'long' | 'short',
  openedAt: number,
  entryQuantity: number,
  entryNotional: number,
  exitQuantity: number,
  exitNotional: number,
  realizedPnl: number,
  fees: number,
): Trip => ({
  side,
  openedAt,
  entryQuantity,
  entryNotional,
  exitQuantity,
  exitNotional,
  realizedPnl,
  fees,
});

// Object literals, not spreads: V8 copies `{ ...a, b }` slowly, and fills are on the backtest's path.
const position = (
  from: Position,
  quantity: number,
  averageEntryPrice: number,
  realizedPnl: number,
  feesPaid: number,
  open: Trip | null,
): Position => ({
  strategyId: from.strategyId,
  symbol: from.symbol,
  quantity,
  averageEntryPrice,
  realizedPnl,
  feesPaid,
  trip: open,
});

/** The round trip a fill ended, as a closed trade. */
const closedTrade = (held: Position, ended: Trip, closedAt: number): ClosedTrade => ({
  strategyId: held.strategyId,
  symbol: held.symbol,
  side: ended.side,
  openedAt: ended.openedAt,
  closedAt,
  quantity: ended.entryQuantity,
  entryPrice: ended.entryQuantity > 0 ? ended.entryNotional / ended.entryQuantity : 0,
  exitPrice: ended.exitNotional / ended.exitQuantity,
  realizedPnl: ended.realizedPnl,
  fees: ended.fees,
  netPnl: ended.realizedPnl - ended.fees,
});

/** The position after one fill (a new object; the input is not changed). */
export function applyFill(held: Position, fill: PositionFill): PositionUpdate {
  const { quantity, price, fee, time } = fill;
  if (!(quantity > 0) || !(price > 0) || !(fee >= 0))
    throw new RangeError('a fill needs quantity > 0, price > 0 and fee ≥ 0');
  const signed = fill.side === 'buy' ? quantity : -quantity;
  const before = held.quantity;
  const after = cleanQuantity(before + signed);
  const feesPaid = held.feesPaid + fee;
  const was = held.trip;

  if (before === 0 || Math.sign(before) === Math.sign(signed)) {
    // Open or add.
    const open = was
      ? trip(
          was.side,
          was.openedAt,
          cleanQuantity(was.entryQuantity + quantity),
          was.entryNotional + quantity * price,
          was.exitQuantity,
          was.exitNotional,
          was.realizedPnl,
          was.fees + fee,
        )
      : trip(signed > 0 ? 'long' : 'short', time, quantity, quantity * price, 0, 0, 0, fee);
    const averageEntryPrice =
      before === 0
        ? price
        : (Math.abs(before) * held.averageEntryPrice + quantity * price) / Math.abs(after);
    return {
      position: position(held, after, averageEntryPrice, held.realizedPnl, feesPaid, open),
      realizedPnl: 0,
      closed: null,
    };
  }

  // Reduce, close or flip.
  const closing = Math.min(quantity, Math.abs(before));
  const realized = (price - held.averageEntryPrice) * closing * Math.sign(before);
  const closingFee = closing === quantity ? fee : (fee * closing) / quantity;
  const current = was ?? trip(before > 0 ? 'long' : 'short', time, 0, 0, 0, 0, 0, 0);
  const ended = trip(
    current.side,
    current.openedAt,
    current.entryQuantity,
    current.entryNotional,
    cleanQuantity(current.exitQuantity + closing),
    current.exitNotional + closing * price,
    current.realizedPnl + realized,
    current.fees + closingFee,
  );
  const realizedPnl = held.realizedPnl + realized;
  if (after !== 0 && Math.sign(after) === Math.sign(before)) {
    return {
      position: position(held, after, held.averageEntryPrice, realizedPnl, feesPaid, ended),
      realizedPnl: realized,
      closed: null,
    };
  }
  const closed = closedTrade(held, ended, time);
  if (after === 0) {
    return {
      position: position(held, 0, 0, realizedPnl, feesPaid, null),
      realizedPnl: realized,
      closed,
    };
  }
  // Flip: the rest opens on the other side at the fill price, with the rest of the fee.
  const rest = Math.abs(after);
  const opened = trip(
    after > 0 ? 'long' : 'short',
    time,
    rest,
    rest * price,
    0,
    0,
    0,
    fee - closingFee,
  );
  return {
    position: position(held, after, price, realizedPnl, feesPaid, opened),
    realizedPnl: realized,
    closed,
  };
}

/** Cash change of a fill: −(quantity × price) − fee for a buy, +(quantity × price) − fee for a sell. */
export const cashChange = (fill: PositionFill): number =>
  (fill.side === 'buy' ? -1 : 1) * fill.quantity * fill.price - fill.fee;

/**
 * Equity = cash + Σ quantity × mark. `markOf` gives a symbol's mark price; a position whose symbol
 * has no mark yet is valued at its average entry.
 */
export function equity(account: Account, markOf: (symbol: string) => number | undefined): number {
  let total = account.cash;
  for (const position of account.positions) {
    if (position.quantity === 0) continue;
    total += position.quantity * (markOf(position.symbol) ?? position.averageEntryPrice);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Events.

/** Streams: one per position, one per portfolio account. */
export const positionStream = (portfolioId: string, strategyId: string, symbol: string): string =>
  `position-${portfolioId}-${strategyId}-${symbol}`;
export const accountStream = (portfolioId: string): string => `account-${portfolioId}`;

type FillRef = { portfolioId: string; clientOrderId: string; fillId: string; time: number };

export type PositionChangedData = FillRef & {
  strategyId: string;
  symbol: string;
  side: Side;
  fillQuantity: number;
  fillPrice: number;
  fee: number;
  /** After the fill. */
  quantity: number;
  averageEntryPrice: number;
  /** Realized by this fill (before fees) and over the position's life. */
  realizedPnlChange: number;
  realizedPnl: number;
  feesPaid: number;
};

export type PositionClosedData = FillRef & ClosedTrade;

/** The round trip in a PositionClosed event. */
export const tradeOf = (data: PositionClosedData): ClosedTrade => ({
  strategyId: data.strategyId,
  symbol: data.symbol,
  side: data.side,
  openedAt: data.openedAt,
  closedAt: data.closedAt,
  quantity: data.quantity,
  entryPrice: data.entryPrice,
  exitPrice: data.exitPrice,
  realizedPnl: data.realizedPnl,
  fees: data.fees,
  netPnl: data.netPnl,
});

export type CashBalanceChangedData = FillRef & {
  currency: string;
  /** Signed change: trade amount and fee. */
  change: number;
  fee: number;
  balance: number;
};

export type AccountingEvent =
  | DomainEvent<'PositionChanged', PositionChangedData>
  | DomainEvent<'PositionClosed', PositionClosedData>
  | DomainEvent<'CashBalanceChanged', CashBalanceChangedData>;

/**
 * Books one fill into the account: the position at `index` and the cash. Returns the new account
 * and the events, in this order: PositionClosed (when the fill ended a round trip),
 * PositionChanged, CashBalanceChanged.
 */
export function bookFill(
  account: Account,
  index: number,
  fill: PositionFill & { clientOrderId: string; fillId: string },
): { account: Account; events: AccountingEvent[]; closed: ClosedTrade | null } {
  const position = account.positions[index];
  if (!position) throw new RangeError(`no position at index ${index}`);
  const update = applyFill(position, fill);
  const change = cashChange(fill);
  const positions = account.positions.slice();
  positions[index] = update.position;
  const next: Account = {
    portfolioId: account.portfolioId,
    currency: account.currency,
    cash: account.cash + change,
    feesPaid: account.feesPaid + fill.fee,
    positions,
  };
  const { portfolioId } = account;
  const { clientOrderId, fillId, time } = fill;
  const events: AccountingEvent[] = [];
  const closed = update.closed;
  if (closed) {
    events.push({
      type: 'PositionClosed',
      data: {
        portfolioId,
        clientOrderId,
        fillId,
        time,
        strategyId: closed.strategyId,
        symbol: closed.symbol,
        side: closed.side,
        openedAt: closed.openedAt,
        closedAt: closed.closedAt,
        quantity: closed.quantity,
        entryPrice: closed.entryPrice,
        exitPrice: closed.exitPrice,
        realizedPnl: closed.realizedPnl,
        fees: closed.fees,
        netPnl: closed.netPnl,
      },
    });
  }
  const after = update.position;
  events.push({
    type: 'PositionChanged',
    data: {
      portfolioId,
      clientOrderId,
      fillId,
      time,
      strategyId: after.strategyId,
      symbol: after.symbol,
      side: fill.side,
      fillQuantity: fill.quantity,
      fillPrice: fill.price,
      fee: fill.fee,
      quantity: after.quantity,
      averageEntryPrice: after.averageEntryPrice,
      realizedPnlChange: update.realizedPnl,
      realizedPnl: after.realizedPnl,
      feesPaid: after.feesPaid,
    },
  });
  events.push({
    type: 'CashBalanceChanged',
    data: {
      portfolioId,
      clientOrderId,
      fillId,
      time,
      currency: account.currency,
      change,
      fee: fill.fee,
      balance: next.cash,
    },
  });
  return { account: next, events, closed: update.closed };
}
