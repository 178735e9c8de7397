import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { OrderRequest } from '../trading/orders.js';
import { desk, deskStream, isManualOrder, portfolioOf, type DeskEvent } from './desk.js';

const order: OrderRequest = {
  clientOrderId: 'm-0b6f2a4e-93c1-4b8e-a7d5-2c9e8f1b3a60',
  portfolioId: 'paper-1m',
  strategyId: 's1',
  symbol: 'BTCUSDT',
  side: 'buy',
  type: 'limit',
  quantity: 0.01,
  limitPrice: 64_000,
  stopPrice: null,
  reduceOnly: false,
};
const requested: DeskEvent = {
  type: 'ManualOrderRequested',
  data: { order, requestedAt: 1_000 },
};
const cancelRequested: DeskEvent = {
  type: 'ManualCancelRequested',
  data: { clientOrderId: order.clientOrderId, reason: 'changed my mind', requestedAt: 2_000 },
};

describe('the manual trading desk', () => {
  it('names its streams and portfolios', () => {
    expect(portfolioOf('1m')).toBe('paper-1m');
    expect(deskStream(portfolioOf('4h'))).toBe('desk-paper-4h');
    expect(isManualOrder(order.clientOrderId)).toBe(true);
    expect(isManualOrder('s1-1700000000000-0')).toBe(false);
  });

  it('records an order request, once per client order id', () => {
    given(desk, []).when({ type: 'RequestOrder', order, requestedAt: 1_000 }).then([requested]);
    given(desk, [requested]).when({ type: 'RequestOrder', order, requestedAt: 5_000 }).then([]);
    given(desk, [requested])
      .when({ type: 'RequestOrder', order: { ...order, quantity: 0.02 }, requestedAt: 5_000 })
      .thenRefuses('ORDER_ID_REUSED');
    const other = { ...order, clientOrderId: 'm-2' };
    given(desk, [requested])
      .when({ type: 'RequestOrder', order: other, requestedAt: 5_000 })
      .then([{ type: 'ManualOrderRequested', data: { order: other, requestedAt: 5_000 } }]);
  });

  it('refuses malformed orders with INVALID_ORDER', () => {
    const when = (changes: Partial<OrderRequest>) =>
      given(desk, []).when({
        type: 'RequestOrder',
        order: { ...order, ...changes },
        requestedAt: 1,
      });
    when({ clientOrderId: 's1-1-0' }).thenRefuses('INVALID_ORDER', /starts with 'm-'/);
    when({ quantity: 0 }).thenRefuses('INVALID_ORDER', /quantity/);
    when({ limitPrice: null }).thenRefuses('INVALID_ORDER', /limitPrice/);
    when({ limitPrice: -1 }).thenRefuses('INVALID_ORDER', /limitPrice/);
    when({ type: 'market' }).thenRefuses('INVALID_ORDER', /limitPrice/);
    when({ type: 'stop', limitPrice: null }).thenRefuses('INVALID_ORDER', /stopPrice/);
    when({ type: 'market', limitPrice: null, stopPrice: 5 }).thenRefuses(
      'INVALID_ORDER',
      /stopPrice/,
    );
  });

  it('records a cancel request once per order, for any order id', () => {
    given(desk, [requested])
      .when({
        type: 'RequestCancel',
        clientOrderId: order.clientOrderId,
        reason: 'changed my mind',
        requestedAt: 2_000,
      })
      .then([cancelRequested]);
    given(desk, [requested, cancelRequested])
      .when({
        type: 'RequestCancel',
        clientOrderId: order.clientOrderId,
        reason: 'again',
        requestedAt: 3_000,
      })
      .then([]);
    // A strategy's order may be cancelled by hand too.
    given(desk, [])
      .when({ type: 'RequestCancel', clientOrderId: 's1-1-0', reason: 'risk', requestedAt: 1 })
      .then([
        {
          type: 'ManualCancelRequested',
          data: { clientOrderId: 's1-1-0', reason: 'risk', requestedAt: 1 },
        },
      ]);
  });

  it('refuses to fold an event it does not know', () => {
    expect(() => desk.parseEvent({ type: 'ManualOrderExploded', data: {} })).toThrow();
    expect(() =>
      desk.parseEvent({ type: 'ManualOrderRequested', data: { order: {}, requestedAt: 1 } }),
    ).toThrow();
  });
});
