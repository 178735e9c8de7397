import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import {
  afterFill,
  clientOrderId,
  orders,
  reason,
  submitted,
  type Fill,
  type OrderEvent,
  type OrderRequest,
} from './orders.js';

const request: OrderRequest = {
  clientOrderId: 's1-1704067200000-0',
  portfolioId: 'p1',
  strategyId: 's1',
  symbol: 'BTCUSDT',
  side: 'buy',
  type: 'market',
  quantity: 2,
  limitPrice: null,
  stopPrice: null,
  reduceOnly: false,
};
const id = request.clientOrderId;
const T = 1_704_067_260_000;

const fill = (n: number, quantity: number, price: number): Fill => ({
  fillId: `${id}#${n}`,
  price,
  quantity,
  fee: price * quantity * 5e-4,
  feeCurrency: 'USDT',
  liquidity: 'taker',
  slippage: 0,
});

const submittedEvent: OrderEvent = { type: 'OrderSubmitted', data: submitted(request, T) };
const accepted: OrderEvent = {
  type: 'OrderAccepted',
  data: {
    clientOrderId: id,
    venueOrderId: `paper:${id}`,
    quantity: 2,
    limitPrice: null,
    stopPrice: null,
    time: T,
  },
};
const partial: OrderEvent = {
  type: 'OrderPartiallyFilled',
  data: {
    clientOrderId: id,
    portfolioId: 'p1',
    strategyId: 's1',
    symbol: 'BTCUSDT',
    side: 'buy',
    fill: fill(1, 0.5, 100),
    filledQuantity: 0.5,
    remainingQuantity: 1.5,
    averagePrice: 100,
    time: T + 60_000,
  },
};

describe('client order ids', () => {
  it('derive from strategy, symbol, bar time and sequence, so a restart gets the same ids', () => {
    expect(clientOrderId('s1', 'BTCUSDT', 1_704_067_200_000, 0)).toBe('s1-BTCUSDT-1704067200000-0');
    expect(clientOrderId('s1', 'BTCUSDT', 1_704_067_200_000, 1)).not.toBe(
      clientOrderId('s1', 'BTCUSDT', 1_704_067_200_000, 0),
    );
    // Two books of one strategy on the same bar: two orders, two ids.
    expect(clientOrderId('s1', 'ETHUSDT', 1_704_067_200_000, 0)).not.toBe(
      clientOrderId('s1', 'BTCUSDT', 1_704_067_200_000, 0),
    );
    // The paper engine's records from before keep the ids they were written with.
    expect(clientOrderId('s1', 'BTCUSDT', 1_704_067_200_000, 0, true)).toBe('s1-1704067200000-0');
  });

  it('reasons read CODE: key=value, ...', () => {
    expect(reason('MAX_NOTIONAL', { notional: 12_000, max: 10_000 })).toBe(
      'MAX_NOTIONAL: notional=12000, max=10000',
    );
    expect(reason('HALTED')).toBe('HALTED');
  });
});

describe('order decider', () => {
  it('submits a new order', () => {
    given(orders, []).when({ type: 'SubmitOrder', order: request, time: T }).then([submittedEvent]);
  });

  it('treats the same order under the same id as already done, another one as a conflict', () => {
    given(orders, [submittedEvent])
      .when({ type: 'SubmitOrder', order: { ...request }, time: T + 1 })
      .then([]);
    given(orders, [submittedEvent])
      .when({ type: 'SubmitOrder', order: { ...request, quantity: 3 }, time: T })
      .thenRefuses('ORDER_ID_REUSED');
  });

  it('refuses malformed orders', () => {
    given(orders, [])
      .when({ type: 'SubmitOrder', order: { ...request, type: 'limit' }, time: T })
      .thenRefuses('INVALID_ORDER', /limitPrice/);
    given(orders, [])
      .when({ type: 'SubmitOrder', order: { ...request, quantity: 0 }, time: T })
      .thenRefuses('INVALID_ORDER');
  });

  it('accepts, rejects or denies only a submitted order', () => {
    given(orders, [submittedEvent])
      .when({
        type: 'AcceptOrder',
        clientOrderId: id,
        venueOrderId: `paper:${id}`,
        quantity: 2,
        limitPrice: null,
        stopPrice: null,
        time: T,
      })
      .then([accepted]);
    given(orders, [submittedEvent])
      .when({ type: 'DenyOrder', clientOrderId: id, reason: 'HALTED: state=HALTED', time: T })
      .then([
        {
          type: 'OrderDenied',
          data: { clientOrderId: id, reason: 'HALTED: state=HALTED', time: T },
        },
      ]);
    given(orders, [submittedEvent, accepted])
      .when({ type: 'RejectOrder', clientOrderId: id, reason: 'X', time: T })
      .thenRefuses('ORDER_TRANSITION_NOT_ALLOWED', /it is accepted/);
    given(orders, [])
      .when({ type: 'RejectOrder', clientOrderId: id, reason: 'X', time: T })
      .thenRefuses('ORDER_NOT_FOUND');
  });

  it('records partial fills with running totals and ends filled', () => {
    given(orders, [submittedEvent, accepted])
      .when({ type: 'RecordFill', clientOrderId: id, fill: fill(1, 0.5, 100), time: T + 60_000 })
      .then([partial]);
    const [done] = given(orders, [submittedEvent, accepted, partial])
      .when({ type: 'RecordFill', clientOrderId: id, fill: fill(2, 1.5, 104), time: T + 120_000 })
      .then([
        {
          type: 'OrderFilled',
          data: {
            ...partial.data,
            fill: fill(2, 1.5, 104),
            filledQuantity: 2,
            remainingQuantity: 0,
            averagePrice: 103, // (0.5 × 100 + 1.5 × 104) / 2
            time: T + 120_000,
          },
        },
      ]);
    const state = given(orders, [submittedEvent, accepted, partial, done!]).state;
    expect(state).toMatchObject({ status: 'filled', filledQuantity: 2, averagePrice: 103 });
  });

  it('refuses a fill larger than what is left, ignores a fill it already has', () => {
    given(orders, [submittedEvent, accepted, partial])
      .when({ type: 'RecordFill', clientOrderId: id, fill: fill(2, 1.6, 100), time: T })
      .thenRefuses('FILL_EXCEEDS_REMAINING');
    given(orders, [submittedEvent, accepted, partial])
      .when({ type: 'RecordFill', clientOrderId: id, fill: fill(1, 0.5, 100), time: T })
      .then([]);
    given(orders, [submittedEvent])
      .when({ type: 'RecordFill', clientOrderId: id, fill: fill(1, 0.5, 100), time: T })
      .thenRefuses('ORDER_TRANSITION_NOT_ALLOWED');
  });

  it('cancels an open order with what was filled; a finished one cannot be cancelled', () => {
    given(orders, [submittedEvent, accepted, partial])
      .when({ type: 'CancelOrder', clientOrderId: id, reason: 'TARGET_CHANGED: target=0', time: T })
      .then([
        {
          type: 'OrderCancelled',
          data: {
            clientOrderId: id,
            reason: 'TARGET_CHANGED: target=0',
            filledQuantity: 0.5,
            remainingQuantity: 1.5,
            time: T,
          },
        },
      ]);
    const denied: OrderEvent = {
      type: 'OrderDenied',
      data: { clientOrderId: id, reason: 'X', time: T },
    };
    given(orders, [submittedEvent, denied])
      .when({ type: 'CancelOrder', clientOrderId: id, reason: 'late', time: T })
      .thenRefuses('ORDER_TRANSITION_NOT_ALLOWED', /denied/);
  });

  it('parses stored events and refuses malformed ones', () => {
    expect(orders.parseEvent(JSON.parse(JSON.stringify(partial)) as OrderEvent)).toEqual(partial);
    expect(() => orders.parseEvent({ type: 'OrderFilled', data: { clientOrderId: id } })).toThrow();
  });

  it('sums fill quantities without float dust', () => {
    const first = afterFill(
      { quantity: 0.3, filledQuantity: 0, averagePrice: 0 },
      { price: 1, quantity: 0.1 },
    );
    const second = afterFill({ quantity: 0.3, ...first }, { price: 1, quantity: 0.2 });
    expect(second).toMatchObject({ filledQuantity: 0.3, remainingQuantity: 0 });
    expect(second.averagePrice).toBeCloseTo(1, 12);
  });
});
