import { describe, expect, it } from 'vitest';
import { BTC, T0, bar } from './fixtures.spec.js';
import type { OrderEvent, OrderFillData, OrderRequest } from './orders.js';
import { PaperVenue, intrabarPath, type PaperVenueCosts, type PaperVenueState } from './venue.js';

const M = 60_000;
const costs: PaperVenueCosts = {
  slippageBps: 10,
  makerFeeBps: 2,
  takerFeeBps: 5,
  maxVolumeShare: null,
};

const order = (
  id: string,
  side: 'buy' | 'sell',
  quantity: number,
  extra: Partial<OrderRequest> = {},
): OrderRequest => ({
  clientOrderId: id,
  portfolioId: 'p1',
  strategyId: 's1',
  symbol: BTC.symbol,
  side,
  type: 'market',
  quantity,
  limitPrice: null,
  stopPrice: null,
  reduceOnly: false,
  ...extra,
});
const limit = (id: string, side: 'buy' | 'sell', quantity: number, price: number) =>
  order(id, side, quantity, { type: 'limit', limitPrice: price });
const stop = (id: string, side: 'buy' | 'sell', quantity: number, price: number) =>
  order(id, side, quantity, { type: 'stop', stopPrice: price });

/** A venue that has seen one bar closing at 100 (so market orders have a reference price). */
function setup(overrides: Partial<PaperVenueCosts> = {}) {
  const venue = new PaperVenue([BTC], { ...costs, ...overrides });
  const state: PaperVenueState = venue.initialState();
  venue.onBar(state, bar(T0, 100, 100), []);
  const submit = (request: OrderRequest, time = T0 + M): OrderEvent[] => {
    const out: OrderEvent[] = [];
    venue.submit(state, request, time, out);
    return out;
  };
  const onBar = (...args: Parameters<typeof bar>): OrderEvent[] => {
    const out: OrderEvent[] = [];
    venue.onBar(state, bar(...args), out);
    return out;
  };
  return { venue, state, submit, onBar };
}

const fills = (events: OrderEvent[]): OrderFillData[] =>
  events.flatMap((e) =>
    e.type === 'OrderFilled' || e.type === 'OrderPartiallyFilled' ? [e.data] : [],
  );

describe('PaperVenue: market orders', () => {
  it('fills a buy at the next bar open plus slippage, as taker', () => {
    const { submit, onBar } = setup();
    expect(submit(order('b1', 'buy', 0.5))).toEqual([
      {
        type: 'OrderAccepted',
        data: {
          clientOrderId: 'b1',
          venueOrderId: 'paper:b1',
          quantity: 0.5,
          limitPrice: null,
          stopPrice: null,
          time: T0 + M,
        },
      },
    ]);
    // open 100 × (1 + 10 bps) = 100.10; fee 100.10 × 0.5 × 5 bps = 0.025025; slippage 0.10 × 0.5.
    const events = onBar(T0 + M, 100, 103, { high: 104, low: 99 });
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('OrderFilled');
    const [fill] = fills(events);
    expect(fill!.fill).toEqual({
      fillId: 'b1#1',
      price: 100.1,
      quantity: 0.5,
      fee: expect.closeTo(0.025025, 12) as number,
      feeCurrency: 'USDT',
      liquidity: 'taker',
      slippage: expect.closeTo(0.05, 12) as number,
    });
    expect(fill).toMatchObject({
      filledQuantity: 0.5,
      remainingQuantity: 0,
      averagePrice: 100.1,
      time: T0 + M,
    });
  });

  it('fills a sell at the open minus slippage, rounded to the tick against the order', () => {
    const { submit, onBar } = setup({ slippageBps: 7 });
    submit(order('s1', 'sell', 1));
    // 101.23 × (1 − 0.0007) = 101.159139 → down to the tick: 101.15.
    const [fill] = fills(onBar(T0 + M, 101.23, 101));
    expect(fill!.fill.price).toBe(101.15);
    expect(fill!.fill.slippage).toBeCloseTo(0.08, 12);
  });

  it('does not fill on a bar that opened before the order was submitted', () => {
    const { submit, onBar, state } = setup();
    submit(order('b1', 'buy', 0.5), T0 + 2 * M);
    expect(onBar(T0 + M, 100, 100)).toEqual([]);
    expect(state.open).toHaveLength(1);
    expect(fills(onBar(T0 + 2 * M, 100, 100))).toHaveLength(1);
    expect(state.open).toHaveLength(0);
  });
});

describe('PaperVenue: limit and stop orders', () => {
  it('fills a resting buy limit at its price when the bar touches it, as maker', () => {
    const { submit, onBar } = setup();
    submit(limit('l1', 'buy', 2, 95));
    expect(onBar(T0 + M, 100, 99, { low: 95.01 })).toEqual([]);
    const [fill] = fills(onBar(T0 + 2 * M, 99, 96, { low: 95 }));
    // 95 × 2 × 2 bps = 0.038.
    expect(fill!.fill).toMatchObject({ price: 95, quantity: 2, liquidity: 'maker', slippage: 0 });
    expect(fill!.fill.fee).toBeCloseTo(0.038, 12);
  });

  it('fills a limit that is marketable on arrival at the open (with slippage, capped at the limit), as taker', () => {
    const { submit, onBar } = setup();
    submit(limit('l1', 'buy', 1, 105));
    submit(limit('l2', 'buy', 1, 100.05));
    const events = fills(onBar(T0 + M, 100, 101));
    expect(events.map((f) => [f.clientOrderId, f.fill.price, f.fill.liquidity])).toEqual([
      ['l1', 100.1, 'taker'],
      ['l2', 100.05, 'taker'],
    ]);
  });

  it('fills a resting limit the market gapped through at the limit, as maker', () => {
    const { submit, onBar } = setup();
    submit(limit('l1', 'sell', 1, 103));
    expect(onBar(T0 + M, 100, 101)).toEqual([]);
    const [fill] = fills(onBar(T0 + 2 * M, 104, 105));
    expect(fill!.fill).toMatchObject({ price: 103, liquidity: 'maker' });
  });

  it('triggers a sell stop when the bar crosses it and fills at the stop minus slippage', () => {
    const { submit, onBar } = setup();
    submit(stop('x1', 'sell', 1, 95));
    expect(onBar(T0 + M, 100, 96, { low: 95.5 })).toEqual([]);
    const [fill] = fills(onBar(T0 + 2 * M, 96, 94.5, { low: 94 }));
    // 95 × 0.999 = 94.905 → down to the tick: 94.90; slippage (95 − 94.90) × 1.
    expect(fill!.fill).toMatchObject({ price: 94.9, liquidity: 'taker' });
    expect(fill!.fill.slippage).toBeCloseTo(0.1, 12);
    expect(fill!.fill.fee).toBeCloseTo(94.9 * 5e-4, 12);
  });

  it('fills a stop at the open when the bar gaps through it', () => {
    const { submit, onBar } = setup();
    submit(stop('x1', 'sell', 1, 95));
    onBar(T0 + M, 100, 97);
    // Opens at 93, below the stop: 93 × 0.999 = 92.907 → 92.90; slippage (95 − 92.90) × 1 = 2.10.
    const [fill] = fills(onBar(T0 + 2 * M, 93, 94));
    expect(fill!.fill.price).toBe(92.9);
    expect(fill!.fill.slippage).toBeCloseTo(2.1, 12);
  });

  it('fills a buy stop at the stop plus slippage when crossed upwards', () => {
    const { submit, onBar } = setup({ slippageBps: 0 });
    submit(stop('x1', 'buy', 1, 102));
    const [fill] = fills(onBar(T0 + M, 100, 101, { high: 102.5 }));
    expect(fill!.fill).toMatchObject({ price: 102, slippage: 0, liquidity: 'taker' });
  });
});

describe('PaperVenue: intrabar order', () => {
  it('walks open → nearer extreme → other extreme → close', () => {
    expect(intrabarPath(bar(T0, 100, 101, { high: 110, low: 98 }))).toEqual([100, 98, 110, 101]);
    expect(intrabarPath(bar(T0, 100, 99, { high: 102, low: 90 }))).toEqual([100, 102, 90, 99]);
    // Equally near: the low first.
    expect(intrabarPath(bar(T0, 100, 100, { high: 105, low: 95 }))).toEqual([100, 95, 105, 100]);
  });

  it('fills the stop before the take-profit when the open is nearer the low', () => {
    const { submit, onBar } = setup();
    submit(limit('tp', 'sell', 1, 105));
    submit(stop('sl', 'sell', 1, 95));
    // open 100, low 94 (6 away), high 106 (6 away): low first → the stop at 95 comes first.
    const events = fills(onBar(T0 + M, 100, 100, { high: 106, low: 94 }));
    expect(events.map((f) => f.clientOrderId)).toEqual(['sl', 'tp']);
  });

  it('fills the take-profit before the stop when the open is nearer the high', () => {
    const { submit, onBar } = setup();
    submit(stop('sl', 'sell', 1, 95));
    submit(limit('tp', 'sell', 1, 105));
    // open 100, high 105.5 (5.5 away), low 93 (7 away): high first → the limit at 105 comes first.
    const events = fills(onBar(T0 + M, 100, 100, { high: 105.5, low: 93 }));
    expect(events.map((f) => f.clientOrderId)).toEqual(['tp', 'sl']);
  });
});

describe('PaperVenue: partial fills by volume', () => {
  it('fills at most the volume share per bar and the rest on following bars', () => {
    const { submit, onBar, state } = setup({ maxVolumeShare: 0.1 });
    submit(order('b1', 'buy', 2));
    // 10% of 12.345 = 1.2345 → 1.234 (lot 0.001) at 100.10.
    const first = onBar(T0 + M, 100, 101, { volume: 12.345 });
    expect(first.map((e) => e.type)).toEqual(['OrderPartiallyFilled']);
    expect(fills(first)[0]).toMatchObject({
      fill: { fillId: 'b1#1', quantity: 1.234, price: 100.1 },
      filledQuantity: 1.234,
      remainingQuantity: 0.766,
    });
    // The rest at the next open 101 × 1.001 = 101.101 → 101.11.
    const second = onBar(T0 + 2 * M, 101, 102, { volume: 20 });
    expect(second.map((e) => e.type)).toEqual(['OrderFilled']);
    const done = fills(second)[0]!;
    expect(done).toMatchObject({
      fill: { fillId: 'b1#2', quantity: 0.766, price: 101.11 },
      filledQuantity: 2,
      remainingQuantity: 0,
    });
    expect(done.averagePrice).toBeCloseTo((1.234 * 100.1 + 0.766 * 101.11) / 2, 10);
    expect(state.open).toEqual([]);
  });

  it('shares one bar’s volume between orders in path order (oldest first on ties)', () => {
    const { submit, onBar } = setup({ maxVolumeShare: 0.5 });
    submit(order('a', 'buy', 1));
    submit(order('b', 'sell', 1));
    const events = fills(onBar(T0 + M, 100, 100, { volume: 3 }));
    expect(events.map((f) => [f.clientOrderId, f.fill.quantity, f.remainingQuantity])).toEqual([
      ['a', 1, 0],
      ['b', 0.5, 0.5],
    ]);
  });
});

describe('PaperVenue: admission', () => {
  it('rejects an order below the minimum notional', () => {
    const { submit, state } = setup();
    expect(submit(order('tiny', 'buy', 0.05))).toEqual([
      {
        type: 'OrderRejected',
        data: {
          clientOrderId: 'tiny',
          reason: 'MIN_NOTIONAL: notional=5, minNotional=10',
          time: T0 + M,
        },
      },
    ]);
    expect(submit(limit('tiny2', 'buy', 0.099, 100))[0]).toMatchObject({
      type: 'OrderRejected',
      data: { reason: 'MIN_NOTIONAL: notional=9.9, minNotional=10' },
    });
    expect(state.open).toEqual([]);
  });

  it('rounds quantity down to the lot and limit prices to the tick in the order’s favour', () => {
    const { submit } = setup();
    const [buy] = submit(limit('l1', 'buy', 0.12345, 95.019));
    const [sell] = submit(limit('l2', 'sell', 0.12345, 105.011));
    const [stopped] = submit(stop('s1', 'sell', 0.2, 94.996));
    expect(buy!.data).toMatchObject({ quantity: 0.123, limitPrice: 95.01 });
    expect(sell!.data).toMatchObject({ quantity: 0.123, limitPrice: 105.02 });
    expect(stopped!.data).toMatchObject({ quantity: 0.2, stopPrice: 95 });
  });

  it('rejects unknown symbols, quantities below one lot, duplicates and market orders without a price', () => {
    const { submit } = setup();
    const reasonOf = (events: OrderEvent[]) =>
      events[0]?.type === 'OrderRejected' ? events[0].data.reason : events[0]?.type;
    expect(reasonOf(submit(order('u', 'buy', 1, { symbol: 'DOGEUSDT' })))).toBe(
      'UNKNOWN_SYMBOL: symbol=DOGEUSDT',
    );
    expect(reasonOf(submit(order('q', 'buy', 0.0004)))).toBe(
      'QUANTITY_BELOW_LOT: quantity=0.0004, lotSize=0.001',
    );
    expect(reasonOf(submit(order('d', 'buy', 1)))).toBe('OrderAccepted');
    expect(reasonOf(submit(order('d', 'buy', 1)))).toBe(
      'DUPLICATE_CLIENT_ORDER_ID: clientOrderId=d',
    );
    const fresh = new PaperVenue([BTC], costs);
    const out: OrderEvent[] = [];
    fresh.submit(fresh.initialState(), order('m', 'buy', 1), T0, out);
    expect(reasonOf(out)).toBe('NO_REFERENCE_PRICE: symbol=BTCUSDT');
  });

  it('cancels an open order once, reporting what was filled', () => {
    const { venue, state, submit, onBar } = setup({ maxVolumeShare: 0.1 });
    submit(order('b1', 'buy', 2));
    onBar(T0 + M, 100, 100, { volume: 5 });
    const out: OrderEvent[] = [];
    expect(venue.cancel(state, 'b1', 'TARGET_CHANGED: target=0', T0 + 2 * M, out)).toBe(true);
    expect(out).toEqual([
      {
        type: 'OrderCancelled',
        data: {
          clientOrderId: 'b1',
          reason: 'TARGET_CHANGED: target=0',
          filledQuantity: 0.5,
          remainingQuantity: 1.5,
          time: T0 + 2 * M,
        },
      },
    ]);
    expect(venue.cancel(state, 'b1', 'again', T0 + 2 * M, out)).toBe(false);
    expect(out).toHaveLength(1);
    expect(onBar(T0 + 2 * M, 100, 100)).toEqual([]);
  });

  it('lists open orders per strategy and symbol', () => {
    const { venue, state, submit } = setup();
    submit(limit('l1', 'buy', 1, 90));
    submit(limit('l2', 'buy', 1, 90), T0 + M);
    submit(order('o1', 'buy', 1, { strategyId: 's2' }));
    expect(venue.openOrders(state, 's1', BTC.symbol).map((o) => o.clientOrderId)).toEqual([
      'l1',
      'l2',
    ]);
    expect(venue.openOrders(state, 's2', BTC.symbol)).toHaveLength(1);
    expect(venue.openOrders(state, 's1', 'ETHUSDT')).toEqual([]);
  });
});
