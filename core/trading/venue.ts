import type { Candle, Instrument } from '../market/types.js';
import {
  afterFill,
  reason,
  type Fill,
  type Liquidity,
  type OrderEvent,
  type OrderRequest,
  type OrderType,
  type Side,
} from './orders.js';
import { ceilToStep, cleanQuantity, decimalsOf, floorToStep, roundToStep } from './rounding.js';

/**
 * Where orders go. Synchronous by design, so the step function stays pure: `submit` answers at
 * once (accepted or rejected), `onBar` hands over the fills the venue has for a bar. An exchange
 * adapter implements it by buffering what the exchange reports asynchronously and handing it over
 * at the next `onBar`; its `S` can be its own bookkeeping. Every method pushes events onto `out`.
 */
/** Where a venue puts its events: an array of them, or of any wider event type. */
export type OrderSink = { push(...events: OrderEvent[]): unknown };

export interface Venue<S> {
  /** Takes an order at `time` (epoch ms): pushes OrderAccepted or OrderRejected. */
  submit(state: S, order: OrderRequest, time: number, out: OrderSink): void;
  /** Cancels an open order: pushes OrderCancelled; false (nothing pushed) if it is not open. */
  cancel(state: S, clientOrderId: string, why: string, time: number, out: OrderSink): boolean;
  /** One bar of one symbol: pushes the fills it causes, in the order they happen. */
  onBar(state: S, candle: Candle, out: OrderSink): void;
  /** The open orders of a strategy on a symbol, oldest first. */
  openOrders(state: S, strategyId: string, symbol: string): OpenOrder[];
}

export type OpenOrder = {
  clientOrderId: string;
  side: Side;
  type: OrderType;
  quantity: number;
  remainingQuantity: number;
};

/** Costs and limits of the paper venue. */
export type PaperVenueCosts = {
  /** Adverse price move on taker fills (market and stop orders), in basis points of the price. */
  slippageBps: number;
  /** Fee of a resting limit order's fill, basis points of the notional. */
  makerFeeBps: number;
  /** Fee of market, stop and marketable limit fills, basis points of the notional. */
  takerFeeBps: number;
  /** Largest share of a bar's volume that orders on the symbol may take in that bar; null: no cap. */
  maxVolumeShare: number | null;
};

export const DEFAULT_VENUE_COSTS: Readonly<PaperVenueCosts> = {
  slippageBps: 5,
  makerFeeBps: 2,
  takerFeeBps: 5,
  maxVolumeShare: 0.1,
};

/** An accepted order waiting in the paper venue. Plain JSON, part of the venue's state. */
export type RestingOrder = {
  /** As accepted: quantity on the lot, prices on the tick. */
  request: OrderRequest;
  /** Acceptance number, the tie-break between orders that trigger at the same point of a bar. */
  sequence: number;
  /** Bars that open at or after this instant may fill it (the submission time). */
  activeFrom: number;
  /** True until the order has seen its first bar. */
  fresh: boolean;
  /** A stop order whose stop was reached; what is left fills like a market order. */
  triggered: boolean;
  filledQuantity: number;
  remainingQuantity: number;
  averagePrice: number;
  fills: number;
};

export type PaperVenueState = {
  /** Open orders, in acceptance order. */
  open: RestingOrder[];
  /** Close of the last bar seen per symbol: the reference price of a market order's notional. */
  lastPrice: Record<string, number>;
  /** Orders accepted so far. */
  accepted: number;
};

type Market = Instrument & { tickDecimals: number; lotDecimals: number };

/** A triggered order in one bar: where on the bar's path, at what price, as maker or taker. */
type Trigger = {
  order: RestingOrder;
  at: number;
  price: number;
  reference: number;
  liquidity: Liquidity;
};

/**
 * Distance along the bar's path (open → first extreme → other extreme → close) at which the price
 * first reaches `level` from above (`down`) or below; -1 if it never does.
 */
function reach(path: readonly number[], level: number, down: boolean): number {
  let travelled = 0;
  let previous = path[0] ?? NaN;
  if (down ? previous <= level : previous >= level) return 0;
  for (let i = 1; i < path.length; i++) {
    const point = path[i] ?? NaN;
    if (down ? point <= level : point >= level) return travelled + Math.abs(previous - level);
    travelled += Math.abs(point - previous);
    previous = point;
  }
  return -1;
}

/**
 * The bar's intrabar path: open, then the nearer extreme (the low when the open is at least as near
 * the low as the high), then the other extreme, then the close.
 */
export function intrabarPath(candle: Candle): [number, number, number, number] {
  const lowFirst = candle.open - candle.low <= candle.high - candle.open;
  return lowFirst
    ? [candle.open, candle.low, candle.high, candle.close]
    : [candle.open, candle.high, candle.low, candle.close];
}

const significant = (value: number): number => Number(value.toPrecision(10));

/**
 * The simulated venue. Deterministic: the same orders and bars give the same fills.
 *
 * - Market orders fill at the open of the first bar after their submission, moved against the
 *   order by `slippageBps` and rounded to the tick against it (taker).
 * - Limit orders fill at the limit when the bar's path reaches it (maker; touching is enough). A
 *   limit that is already marketable at its first bar's open fills at that open with slippage,
 *   never beyond the limit (taker).
 * - Stop orders trigger when the path reaches the stop and fill at the stop, or at the open when
 *   the bar opens beyond it, with slippage (taker); a triggered stop's rest fills like a market order.
 * - Several orders in one bar fill in the order the path reaches them (ties: oldest first).
 * - Orders on a symbol share `maxVolumeShare × volume` per bar (lot-rounded down); what does not
 *   fit stays open for the following bars.
 * - Quantities are rounded down to the lot, limit prices to the tick in the order's favour, stop
 *   prices to the nearest tick; below `minNotional` (at the limit, stop or last close) → rejected.
 */
export class PaperVenue implements Venue<PaperVenueState> {
  private readonly markets = new Map<string, Market>();
  readonly costs: Readonly<PaperVenueCosts>;

  constructor(instruments: readonly Instrument[], costs: Partial<PaperVenueCosts> = {}) {
    for (const instrument of instruments) {
      this.markets.set(instrument.symbol, {
        ...instrument,
        tickDecimals: decimalsOf(instrument.tickSize),
        lotDecimals: decimalsOf(instrument.lotSize),
      });
    }
    this.costs = { ...DEFAULT_VENUE_COSTS, ...costs };
    const { slippageBps, makerFeeBps, takerFeeBps, maxVolumeShare } = this.costs;
    for (const [name, value] of Object.entries({ slippageBps, makerFeeBps, takerFeeBps })) {
      if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be ≥ 0`);
    }
    if (maxVolumeShare !== null && !(maxVolumeShare > 0))
      throw new RangeError('maxVolumeShare must be > 0 or null');
  }

  initialState(): PaperVenueState {
    return { open: [], lastPrice: {}, accepted: 0 };
  }

  instrument(symbol: string): Instrument | undefined {
    return this.markets.get(symbol);
  }

  submit(state: PaperVenueState, order: OrderRequest, time: number, out: OrderSink): void {
    const { clientOrderId } = order;
    const admitted = this.admit(state, order);
    if (typeof admitted === 'string') {
      out.push({ type: 'OrderRejected', data: { clientOrderId, reason: admitted, time } });
      return;
    }
    const { quantity, limitPrice, stopPrice } = admitted;
    state.open.push({
      request: {
        clientOrderId,
        portfolioId: order.portfolioId,
        strategyId: order.strategyId,
        symbol: order.symbol,
        side: order.side,
        type: order.type,
        quantity,
        limitPrice,
        stopPrice,
        reduceOnly: order.reduceOnly,
      },
      sequence: state.accepted++,
      activeFrom: time,
      fresh: true,
      triggered: false,
      filledQuantity: 0,
      remainingQuantity: quantity,
      averagePrice: 0,
      fills: 0,
    });
    out.push({
      type: 'OrderAccepted',
      data: {
        clientOrderId,
        venueOrderId: `paper:${clientOrderId}`,
        quantity,
        limitPrice,
        stopPrice,
        time,
      },
    });
  }

  /** The order's quantity and prices on the lot and tick, or why it is rejected. */
  private admit(
    state: PaperVenueState,
    order: OrderRequest,
  ): string | { quantity: number; limitPrice: number | null; stopPrice: number | null } {
    const market = this.markets.get(order.symbol);
    if (!market) return reason('UNKNOWN_SYMBOL', { symbol: order.symbol });
    const { clientOrderId } = order;
    if (state.open.some((open) => open.request.clientOrderId === clientOrderId))
      return reason('DUPLICATE_CLIENT_ORDER_ID', { clientOrderId });
    const quantity = floorToStep(order.quantity, market.lotSize, market.lotDecimals);
    if (!(quantity > 0))
      return reason('QUANTITY_BELOW_LOT', { quantity: order.quantity, lotSize: market.lotSize });
    const { tickSize, tickDecimals } = market;
    const buy = order.side === 'buy';
    let limitPrice: number | null = null;
    let stopPrice: number | null = null;
    let referencePrice: number | undefined;
    if (order.type === 'limit') {
      const price = order.limitPrice ?? NaN;
      if (!(price > 0)) return reason('INVALID_PRICE', { limitPrice: String(price) });
      limitPrice = (buy ? floorToStep : ceilToStep)(price, tickSize, tickDecimals);
      referencePrice = limitPrice;
    } else if (order.type === 'stop') {
      const price = order.stopPrice ?? NaN;
      if (!(price > 0)) return reason('INVALID_PRICE', { stopPrice: String(price) });
      stopPrice = roundToStep(price, tickSize, tickDecimals);
      referencePrice = stopPrice;
    } else {
      referencePrice = state.lastPrice[order.symbol];
      if (referencePrice === undefined)
        return reason('NO_REFERENCE_PRICE', { symbol: order.symbol });
    }
    if (!(referencePrice > 0)) return reason('PRICE_BELOW_TICK', { tickSize });
    const notional = quantity * referencePrice;
    if (notional < market.minNotional)
      return reason('MIN_NOTIONAL', {
        notional: significant(notional),
        minNotional: market.minNotional,
      });
    return { quantity, limitPrice, stopPrice };
  }

  cancel(
    state: PaperVenueState,
    clientOrderId: string,
    why: string,
    time: number,
    out: OrderSink,
  ): boolean {
    const index = state.open.findIndex((open) => open.request.clientOrderId === clientOrderId);
    const order = state.open[index];
    if (!order) return false;
    state.open.splice(index, 1);
    out.push({
      type: 'OrderCancelled',
      data: {
        clientOrderId,
        reason: why,
        filledQuantity: order.filledQuantity,
        remainingQuantity: order.remainingQuantity,
        time,
      },
    });
    return true;
  }

  openOrders(state: PaperVenueState, strategyId: string, symbol: string): OpenOrder[] {
    return state.open
      .filter((open) => open.request.strategyId === strategyId && open.request.symbol === symbol)
      .map(({ request, remainingQuantity }) => ({
        clientOrderId: request.clientOrderId,
        side: request.side,
        type: request.type,
        quantity: request.quantity,
        remainingQuantity,
      }));
  }

  onBar(state: PaperVenueState, candle: Candle, out: OrderSink): void {
    if (state.open.length > 0) this.fillOn(state, candle, out);
    state.lastPrice[candle.symbol] = candle.close;
  }

  private fillOn(state: PaperVenueState, candle: Candle, out: OrderSink): void {
    const market = this.markets.get(candle.symbol);
    if (!market) return;
    const path = intrabarPath(candle);
    const triggers: Trigger[] = [];
    for (const order of state.open) {
      if (order.request.symbol !== candle.symbol || candle.openTime < order.activeFrom) continue;
      const trigger = this.trigger(order, candle, path, market);
      order.fresh = false;
      if (trigger) triggers.push(trigger);
    }
    if (triggers.length === 0) return;
    triggers.sort((a, b) => a.at - b.at || a.order.sequence - b.order.sequence);

    const { maxVolumeShare, makerFeeBps, takerFeeBps } = this.costs;
    let budget =
      maxVolumeShare === null
        ? Infinity
        : floorToStep(candle.volume * maxVolumeShare, market.lotSize, market.lotDecimals);
    let filledAny = false;
    for (const { order, price, reference, liquidity } of triggers) {
      if (order.request.type === 'stop') order.triggered = true;
      const quantity = Math.min(order.remainingQuantity, budget);
      if (!(quantity > 0)) continue;
      budget = cleanQuantity(budget - quantity);
      const bps = liquidity === 'maker' ? makerFeeBps : takerFeeBps;
      order.fills++;
      const fill: Fill = {
        fillId: `${order.request.clientOrderId}#${order.fills}`,
        price,
        quantity,
        fee: (price * quantity * bps) / 10_000,
        feeCurrency: market.quote,
        liquidity,
        slippage: Math.abs(price - reference) * quantity,
      };
      const totals = afterFill(
        {
          quantity: order.request.quantity,
          filledQuantity: order.filledQuantity,
          averagePrice: order.averagePrice,
        },
        fill,
      );
      order.filledQuantity = totals.filledQuantity;
      order.remainingQuantity = totals.remainingQuantity;
      order.averagePrice = totals.averagePrice;
      filledAny = true;
      const { clientOrderId, portfolioId, strategyId, symbol, side } = order.request;
      out.push({
        type: totals.remainingQuantity === 0 ? 'OrderFilled' : 'OrderPartiallyFilled',
        data: {
          clientOrderId,
          portfolioId,
          strategyId,
          symbol,
          side,
          fill,
          filledQuantity: totals.filledQuantity,
          remainingQuantity: totals.remainingQuantity,
          averagePrice: totals.averagePrice,
          time: candle.openTime,
        },
      });
    }
    if (filledAny) state.open = state.open.filter((order) => order.remainingQuantity > 0);
  }

  /** `base` moved against the order by the slippage, rounded to the tick against it. */
  private adverse(base: number, buy: boolean, market: Market): number {
    const slip = this.costs.slippageBps / 10_000;
    return buy
      ? ceilToStep(base * (1 + slip), market.tickSize, market.tickDecimals)
      : floorToStep(base * (1 - slip), market.tickSize, market.tickDecimals);
  }

  /** Whether, where and at what price `order` executes in this bar; null if it does not. */
  private trigger(
    order: RestingOrder,
    candle: Candle,
    path: readonly number[],
    market: Market,
  ): Trigger | null {
    const { request } = order;
    const buy = request.side === 'buy';
    const open = candle.open;

    if (request.type === 'market' || order.triggered) {
      return {
        order,
        at: 0,
        price: this.adverse(open, buy, market),
        reference: open,
        liquidity: 'taker',
      };
    }
    if (request.type === 'limit') {
      const limit = request.limitPrice ?? NaN;
      // A buy limit executes at or below its price, a sell limit at or above.
      const at = reach(path, limit, buy);
      if (at < 0) return null;
      if (at === 0 && order.fresh) {
        // Marketable on arrival: it takes liquidity at the open, never beyond its limit.
        const taken = this.adverse(open, buy, market);
        const price = buy ? Math.min(taken, limit) : Math.max(taken, limit);
        return { order, at, price, reference: open, liquidity: 'taker' };
      }
      return { order, at, price: limit, reference: limit, liquidity: 'maker' };
    }
    const stop = request.stopPrice ?? NaN;
    // A buy stop triggers at or above its price, a sell stop at or below.
    const at = reach(path, stop, !buy);
    if (at < 0) return null;
    const gapped = buy ? open > stop : open < stop;
    return {
      order,
      at,
      price: this.adverse(gapped ? open : stop, buy, market),
      reference: stop,
      liquidity: 'taker',
    };
  }
}
