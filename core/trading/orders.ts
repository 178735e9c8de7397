// Under 400 lines without comments (what the max-lines rule counts): the order decider
// with its refusal reasons; its event schemas are in order-schemas.ts, accounting apart.
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import { orderEvent } from './order-schemas.js';
import { cleanQuantity } from './rounding.js';

/**
 * Orders as events. An order's life: OrderSubmitted → OrderAccepted → OrderPartiallyFilled* →
 * OrderFilled, or it ends OrderCancelled (after acceptance), OrderRejected (by the venue) or
 * OrderDenied (by the pre-trade risk check, before the venue saw it). Each order is its own stream,
 * `order-<clientOrderId>`; the decider below guards the transitions when orders go through the
 * command handler.
 */

export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit' | 'stop';
export type Liquidity = 'maker' | 'taker';

/** An order as a strategy (or a person) asks for it. */
export type OrderRequest = {
  clientOrderId: string;
  portfolioId: string;
  strategyId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  /** Base-currency quantity, > 0. */
  quantity: number;
  /** Limit orders only; else null. */
  limitPrice: number | null;
  /** Stop orders only; else null. */
  stopPrice: number | null;
  /** May only reduce the position (carried for the risk checks; the paper venue does not use it). */
  reduceOnly: boolean;
};

/** One execution. `fee` and `slippage` are in `feeCurrency` (the instrument's quote currency). */
export type Fill = {
  /** `<clientOrderId>#<n>`, n = 1, 2, … per order. */
  fillId: string;
  price: number;
  quantity: number;
  fee: number;
  feeCurrency: string;
  liquidity: Liquidity;
  /** |price − reference price| × quantity; the reference is the bar open (market), stop or limit price. */
  slippage: number;
};

type At = { clientOrderId: string; time: number };
export type OrderSubmittedData = OrderRequest & { time: number };
export type OrderAcceptedData = At & {
  venueOrderId: string;
  /** The quantity and prices the venue works with, after lot and tick rounding. */
  quantity: number;
  limitPrice: number | null;
  stopPrice: number | null;
};
export type OrderReasonData = At & { reason: string };
export type OrderFillData = At & {
  portfolioId: string;
  strategyId: string;
  symbol: string;
  side: Side;
  fill: Fill;
  /** Totals over every fill of the order so far, this one included. */
  filledQuantity: number;
  remainingQuantity: number;
  averagePrice: number;
};
export type OrderCancelledData = At & {
  reason: string;
  filledQuantity: number;
  remainingQuantity: number;
};

export type OrderEvent =
  | DomainEvent<'OrderSubmitted', OrderSubmittedData>
  | DomainEvent<'OrderAccepted', OrderAcceptedData>
  | DomainEvent<'OrderRejected', OrderReasonData>
  | DomainEvent<'OrderDenied', OrderReasonData>
  | DomainEvent<'OrderPartiallyFilled', OrderFillData>
  | DomainEvent<'OrderFilled', OrderFillData>
  | DomainEvent<'OrderCancelled', OrderCancelledData>;

/** Stream of one order. */
/** Every order event type, for readers that meet other events on `order-` streams. */
export const ORDER_EVENT_TYPES: ReadonlySet<string> = new Set<OrderEvent['type']>([
  'OrderSubmitted',
  'OrderAccepted',
  'OrderRejected',
  'OrderDenied',
  'OrderPartiallyFilled',
  'OrderFilled',
  'OrderCancelled',
]);

export const orderStream = (clientOrderId: string): string => `order-${clientOrderId}`;

/**
 * The client order id of the `sequence`-th order (from 0) a strategy's book on `symbol` placed on
 * the bar that opened at `barOpenTime`: the same inputs give the same id, so a restarted engine
 * re-derives the ids it already used and a repeated append is an idempotent no-op. Each book counts
 * its own orders, so the symbol is part of the id: without it, two books of one strategy ordering
 * on the same bar made the same id (`legacy`, kept to replay the paper engine's older records).
 */
export const clientOrderId = (
  strategyId: string,
  symbol: string,
  barOpenTime: number,
  sequence: number,
  legacy = false,
): string =>
  legacy
    ? `${strategyId}-${barOpenTime}-${sequence}`
    : `${strategyId}-${symbol}-${barOpenTime}-${sequence}`;

/** A refusal reason in the `CODE: key=value, key=value` form used by venues and risk checks. */
export function reason(
  code: string,
  fields: Record<string, string | number | boolean> = {},
): string {
  const parts = Object.entries(fields).map(([key, value]) => `${key}=${String(value)}`);
  return parts.length === 0 ? code : `${code}: ${parts.join(', ')}`;
}

/** The data of OrderSubmitted (written out: V8 copies spreads slowly). */
export const submitted = (order: OrderRequest, time: number): OrderSubmittedData => ({
  clientOrderId: order.clientOrderId,
  portfolioId: order.portfolioId,
  strategyId: order.strategyId,
  symbol: order.symbol,
  side: order.side,
  type: order.type,
  quantity: order.quantity,
  limitPrice: order.limitPrice,
  stopPrice: order.stopPrice,
  reduceOnly: order.reduceOnly,
  time,
});

/** Totals after one more fill; the venue and the decider both use this, so they agree exactly. */
export function afterFill(
  totals: { quantity: number; filledQuantity: number; averagePrice: number },
  fill: { price: number; quantity: number },
): { filledQuantity: number; remainingQuantity: number; averagePrice: number } {
  const filledQuantity = cleanQuantity(totals.filledQuantity + fill.quantity);
  const remainingQuantity = Math.max(0, cleanQuantity(totals.quantity - filledQuantity));
  const averagePrice =
    (totals.averagePrice * totals.filledQuantity + fill.price * fill.quantity) / filledQuantity;
  return { filledQuantity, remainingQuantity, averagePrice };
}

// ---------------------------------------------------------------------------------------------
// The order decider.

export const ORDER_STATUSES = [
  'submitted',
  'accepted',
  'partially_filled',
  'filled',
  'cancelled',
  'rejected',
  'denied',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export type Order = {
  status: OrderStatus;
  /** As submitted. */
  request: OrderRequest;
  venueOrderId: string | null;
  /** The working quantity and prices: as submitted, replaced by the venue's once accepted. */
  quantity: number;
  limitPrice: number | null;
  stopPrice: number | null;
  filledQuantity: number;
  remainingQuantity: number;
  averagePrice: number;
  feesPaid: number;
  fillIds: string[];
  /** Why it ended, for cancelled, rejected and denied orders. */
  reason: string | null;
  submittedAt: number;
  updatedAt: number;
};
export type OrderState = { status: 'none' } | Order;

export type OrderCommand =
  | { type: 'SubmitOrder'; order: OrderRequest; time: number }
  | {
      type: 'AcceptOrder';
      clientOrderId: string;
      venueOrderId: string;
      quantity: number;
      limitPrice: number | null;
      stopPrice: number | null;
      time: number;
    }
  | { type: 'RejectOrder'; clientOrderId: string; reason: string; time: number }
  | { type: 'DenyOrder'; clientOrderId: string; reason: string; time: number }
  | { type: 'RecordFill'; clientOrderId: string; fill: Fill; time: number }
  | { type: 'CancelOrder'; clientOrderId: string; reason: string; time: number };

const OPEN: readonly OrderStatus[] = ['accepted', 'partially_filled'];
export const isOpen = (status: OrderStatus): boolean => OPEN.includes(status);

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};

function existing(state: OrderState, clientOrderId: string): Order {
  if (state.status === 'none') refuse('ORDER_NOT_FOUND', `order ${clientOrderId} does not exist`);
  return state as Order;
}

function inStatus(
  state: OrderState,
  clientOrderId: string,
  action: string,
  allowed: readonly OrderStatus[],
): Order {
  const order = existing(state, clientOrderId);
  if (!allowed.includes(order.status)) {
    refuse(
      'ORDER_TRANSITION_NOT_ALLOWED',
      `cannot ${action} order ${clientOrderId}: it is ${order.status}`,
      { currentState: order.status },
    );
  }
  return order;
}

/**
 * A reduce-only market order that closes `position` (a stop, a breaker's flatten, an elimination):
 * the opposite side, the whole quantity.
 */
export function closingOrder(
  clientOrderId: string,
  position: { portfolioId: string; strategyId: string; symbol: string; quantity: number },
): OrderRequest {
  return {
    clientOrderId,
    portfolioId: position.portfolioId,
    strategyId: position.strategyId,
    symbol: position.symbol,
    side: position.quantity > 0 ? 'sell' : 'buy',
    type: 'market',
    quantity: Math.abs(position.quantity),
    limitPrice: null,
    stopPrice: null,
    reduceOnly: true,
  };
}

const REQUEST_KEYS = Object.keys(orderRequestShape()) as (keyof OrderRequest)[];
function orderRequestShape(): Record<keyof OrderRequest, true> {
  return {
    clientOrderId: true,
    portfolioId: true,
    strategyId: true,
    symbol: true,
    side: true,
    type: true,
    quantity: true,
    limitPrice: true,
    stopPrice: true,
    reduceOnly: true,
  };
}
const sameRequest = (a: OrderRequest, b: OrderRequest): boolean =>
  REQUEST_KEYS.every((key) => a[key] === b[key]);

function checkRequest(order: OrderRequest): void {
  const bad = (message: string): never => refuse('INVALID_ORDER', message);
  if (!(order.quantity > 0) || !Number.isFinite(order.quantity)) bad('quantity must be > 0');
  if (order.type === 'limit' && !(order.limitPrice !== null && order.limitPrice > 0))
    bad('a limit order needs limitPrice > 0');
  if (order.type !== 'limit' && order.limitPrice !== null) bad('only limit orders have limitPrice');
  if (order.type === 'stop' && !(order.stopPrice !== null && order.stopPrice > 0))
    bad('a stop order needs stopPrice > 0');
  if (order.type !== 'stop' && order.stopPrice !== null) bad('only stop orders have stopPrice');
  if (order.clientOrderId === '') bad('clientOrderId must not be empty');
}

// A fill of an open order, once: a fill id already recorded (a replayed venue report) changes
// nothing; a fill larger than what is left is refused.
function recordFill(
  state: OrderState,
  command: Extract<OrderCommand, { type: 'RecordFill' }>,
): OrderEvent[] {
  const { clientOrderId, fill, time } = command;
  const current = existing(state, clientOrderId);
  if (current.fillIds.includes(fill.fillId)) return [];
  const order = inStatus(state, clientOrderId, 'fill', OPEN);
  if (!(fill.quantity > 0) || !(fill.price > 0))
    refuse('INVALID_FILL', `a fill needs quantity > 0 and price > 0`);
  if (cleanQuantity(fill.quantity - order.remainingQuantity) > 0)
    refuse(
      'FILL_EXCEEDS_REMAINING',
      `fill of ${fill.quantity} exceeds the ${order.remainingQuantity} left of order ${clientOrderId}`,
      { remainingQuantity: order.remainingQuantity },
    );
  const totals = afterFill(
    {
      quantity: order.quantity,
      filledQuantity: order.filledQuantity,
      averagePrice: order.averagePrice,
    },
    fill,
  );
  const { portfolioId, strategyId, symbol, side } = order.request;
  return [
    {
      type: totals.remainingQuantity === 0 ? 'OrderFilled' : 'OrderPartiallyFilled',
      data: { clientOrderId, portfolioId, strategyId, symbol, side, fill, ...totals, time },
    },
  ];
}

export const orders: Decider<OrderState, OrderCommand, OrderEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'OrderSubmitted') {
      const { time, ...request } = event.data;
      return {
        status: 'submitted',
        request,
        venueOrderId: null,
        quantity: request.quantity,
        limitPrice: request.limitPrice,
        stopPrice: request.stopPrice,
        filledQuantity: 0,
        remainingQuantity: request.quantity,
        averagePrice: 0,
        feesPaid: 0,
        fillIds: [],
        reason: null,
        submittedAt: time,
        updatedAt: time,
      };
    }
    if (state.status === 'none') return state;
    const { time } = event.data;
    switch (event.type) {
      case 'OrderAccepted': {
        const { venueOrderId, quantity, limitPrice, stopPrice } = event.data;
        return {
          ...state,
          status: 'accepted',
          venueOrderId,
          quantity,
          limitPrice,
          stopPrice,
          remainingQuantity: quantity,
          updatedAt: time,
        };
      }
      case 'OrderRejected':
        return { ...state, status: 'rejected', reason: event.data.reason, updatedAt: time };
      case 'OrderDenied':
        return { ...state, status: 'denied', reason: event.data.reason, updatedAt: time };
      case 'OrderPartiallyFilled':
      case 'OrderFilled':
        return {
          ...state,
          status: event.type === 'OrderFilled' ? 'filled' : 'partially_filled',
          filledQuantity: event.data.filledQuantity,
          remainingQuantity: event.data.remainingQuantity,
          averagePrice: event.data.averagePrice,
          feesPaid: state.feesPaid + event.data.fill.fee,
          fillIds: [...state.fillIds, event.data.fill.fillId],
          updatedAt: time,
        };
      case 'OrderCancelled':
        return { ...state, status: 'cancelled', reason: event.data.reason, updatedAt: time };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'SubmitOrder': {
        const { order, time } = command;
        if (state.status !== 'none') {
          // The same order again (a restart re-deriving its ids) is a no-op; another one is not.
          if (sameRequest(state.request, order)) return [];
          refuse(
            'ORDER_ID_REUSED',
            `client order id ${order.clientOrderId} is taken by a different order`,
          );
        }
        checkRequest(order);
        return [{ type: 'OrderSubmitted', data: submitted(order, time) }];
      }
      case 'AcceptOrder': {
        const { clientOrderId, venueOrderId, quantity, limitPrice, stopPrice, time } = command;
        inStatus(state, clientOrderId, 'accept', ['submitted']);
        return [
          {
            type: 'OrderAccepted',
            data: { clientOrderId, venueOrderId, quantity, limitPrice, stopPrice, time },
          },
        ];
      }
      case 'RejectOrder':
      case 'DenyOrder': {
        const { clientOrderId, reason: why, time } = command;
        const rejected = command.type === 'RejectOrder';
        inStatus(state, clientOrderId, rejected ? 'reject' : 'deny', ['submitted']);
        return [
          {
            type: rejected ? 'OrderRejected' : 'OrderDenied',
            data: { clientOrderId, reason: why, time },
          },
        ];
      }
      case 'RecordFill':
        return recordFill(state, command);
      case 'CancelOrder': {
        const { clientOrderId, reason: why, time } = command;
        const order = inStatus(state, clientOrderId, 'cancel', OPEN);
        return [
          {
            type: 'OrderCancelled',
            data: {
              clientOrderId,
              reason: why,
              filledQuantity: order.filledQuantity,
              remainingQuantity: order.remainingQuantity,
              time,
            },
          },
        ];
      }
    }
  },

  parseEvent: (event) => orderEvent.parse(event),
};

// The schemas of the stored events live in order-schemas.ts; readers import them from here too.
export { fillSchema, orderEvent, orderRequestSchema } from './order-schemas.js';
