import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import { orderRequestSchema, type OrderRequest } from '../trading/orders.js';

/**
 * The manual trading desk: the inbox of orders and cancels people ask for, one stream per
 * portfolio (`desk-<portfolioId>`). The API writes it through the decider below; the paper engine
 * takes the requests in at its next cycle and answers with the usual order events (an order's
 * own stream, `order-<clientOrderId>`). Manual client order ids are `m-<uuid>`.
 */

/** The portfolio the paper engine runs for a timeframe. */
export const portfolioOf = (timeframe: string): string => `paper-${timeframe}`;

/** The desk stream of a portfolio. */
export const deskStream = (portfolioId: string): string => `desk-${portfolioId}`;

/** Client order ids of manual orders start with this. */
export const MANUAL_ORDER_PREFIX = 'm-';
export const isManualOrder = (clientOrderId: string): boolean =>
  clientOrderId.startsWith(MANUAL_ORDER_PREFIX);

export const manualOrderRequestedData = z.object({
  order: orderRequestSchema,
  /** Epoch ms. */
  requestedAt: z.number(),
});
export const manualCancelRequestedData = z.object({
  clientOrderId: z.string(),
  reason: z.string(),
  /** Epoch ms. */
  requestedAt: z.number(),
});
export type ManualOrderRequestedData = { order: OrderRequest; requestedAt: number };
export type ManualCancelRequestedData = z.infer<typeof manualCancelRequestedData>;

export const deskEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ManualOrderRequested'), data: manualOrderRequestedData }),
  z.object({ type: z.literal('ManualCancelRequested'), data: manualCancelRequestedData }),
]);

export type DeskEvent =
  | DomainEvent<'ManualOrderRequested', ManualOrderRequestedData>
  | DomainEvent<'ManualCancelRequested', ManualCancelRequestedData>;

export type DeskCommand =
  | { type: 'RequestOrder'; order: OrderRequest; requestedAt: number }
  | { type: 'RequestCancel'; clientOrderId: string; reason: string; requestedAt: number };

/**
 * The requests remembered, by client order id (plain JSON, O(1) look-ups), and their ids oldest
 * first. Only the last `remembers` (up to twice as many) orders and cancels are kept (ADR 012,
 * "The desk"): the state, and so its snapshot, stays bounded however long the stream grows.
 */
export type DeskState = {
  orders: Record<string, OrderRequest>;
  cancels: Record<string, true>;
  orderIds: string[];
  cancelIds: string[];
};

/** How many orders and how many cancels a desk remembers for idempotency (ADR 012). */
export const DESK_REMEMBERS = 1000;

const invalid = (message: string): never => {
  throw new QcatError('INVALID_ORDER', message);
};

function checkOrder(order: OrderRequest): void {
  if (!isManualOrder(order.clientOrderId) || order.clientOrderId.length <= 2)
    invalid(`a manual order's clientOrderId starts with '${MANUAL_ORDER_PREFIX}'`);
  if (!(order.quantity > 0) || !Number.isFinite(order.quantity)) invalid('quantity must be > 0');
  const positive = (price: number | null): boolean =>
    price !== null && price > 0 && Number.isFinite(price);
  if ((order.type === 'limit') !== (order.limitPrice !== null))
    invalid('limitPrice is required for a limit order and only for one');
  if ((order.type === 'stop') !== (order.stopPrice !== null))
    invalid('stopPrice is required for a stop order and only for one');
  if (order.limitPrice !== null && !positive(order.limitPrice)) invalid('limitPrice must be > 0');
  if (order.stopPrice !== null && !positive(order.stopPrice)) invalid('stopPrice must be > 0');
}

const ORDER_KEYS = Object.keys(orderRequestSchema.shape) as (keyof OrderRequest)[];
const sameOrder = (a: OrderRequest, b: OrderRequest): boolean =>
  ORDER_KEYS.every((key) => a[key] === b[key]);

/**
 * `map` with `id` added; once it holds twice `remembers` ids, only the last `remembers` are kept
 * (rebuilt at once, so folding stays O(1) per event amortized).
 */
function remember<V>(
  map: Record<string, V>,
  ids: string[],
  id: string,
  value: V,
  remembers: number,
): Record<string, V> {
  if (!Object.hasOwn(map, id)) ids.push(id);
  map[id] = value;
  if (ids.length < 2 * remembers) return map;
  ids.splice(0, ids.length - remembers);
  return Object.fromEntries(ids.map((kept) => [kept, map[kept] as V]));
}

/**
 * Requests are idempotent per client order id among at least the last `remembers` orders and
 * cancels: the same order or cancel asked for again writes nothing (so a retried HTTP request is
 * harmless); a different order under a remembered id is refused. Older ids are forgotten; the API never reuses
 * one (ids are fresh UUIDs, or derived from an Idempotency-Key whose retry finds its own events),
 * and cancels are checked against the order's status first (ADR 012, "The desk").
 */
export function deskDecider(
  remembers = DESK_REMEMBERS,
): Decider<DeskState, DeskCommand, DeskEvent> {
  return {
    initialState: () => ({ orders: {}, cancels: {}, orderIds: [], cancelIds: [] }),

    // Updates the state in place and returns it: copying the maps on every event would make
    // loading a desk stream of n requests O(n²). A state is only ever folded from initialState().
    evolve: (state, event) => {
      switch (event.type) {
        case 'ManualOrderRequested': {
          const { order } = event.data;
          state.orders = remember(
            state.orders,
            state.orderIds,
            order.clientOrderId,
            order,
            remembers,
          );
          return state;
        }
        case 'ManualCancelRequested':
          state.cancels = remember(
            state.cancels,
            state.cancelIds,
            event.data.clientOrderId,
            true as const,
            remembers,
          );
          return state;
      }
    },

    decide: (command, state) => {
      switch (command.type) {
        case 'RequestOrder': {
          const { order } = command;
          const before = Object.hasOwn(state.orders, order.clientOrderId)
            ? state.orders[order.clientOrderId]
            : undefined;
          if (before !== undefined) {
            // The same order again (a retried request) is a no-op; another one under its id is not.
            if (sameOrder(before, order)) return [];
            throw new QcatError(
              'ORDER_ID_REUSED',
              `client order id ${order.clientOrderId} is taken by a different order`,
            );
          }
          checkOrder(order);
          return [
            {
              type: 'ManualOrderRequested',
              data: { order, requestedAt: command.requestedAt },
            },
          ];
        }
        case 'RequestCancel': {
          const { clientOrderId, reason, requestedAt } = command;
          if (Object.hasOwn(state.cancels, clientOrderId)) return [];
          if (clientOrderId === '') invalid('clientOrderId must not be empty');
          return [{ type: 'ManualCancelRequested', data: { clientOrderId, reason, requestedAt } }];
        }
      }
    },

    parseEvent: (event) => deskEvent.parse(event),
  };
}

/** The desk of every portfolio. */
export const desk = deskDecider();
