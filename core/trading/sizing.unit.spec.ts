import { describe, expect, it } from 'vitest';
import type { Candle } from '../market/types.js';
import { BTC, ETH, MINUTE, T0, bar } from './fixtures.spec.js';
import { Stepper, type StepperConfig, type TradingEvent } from './stepper.js';
import type { OrderRequest } from './orders.js';

/**
 * Balance-driven sizing (`StepperConfig.sizing`, docs/portfolio.md): positions follow
 * allocation × equity × target as equity and allocations change, in steps the limits allow.
 */

// Long while SMA(2) > SMA(3): from the third rising bar on, as long as prices keep rising.
const rising = { fastPeriod: 2, slowPeriod: 3, positionFraction: 1 };

const config = (overrides: Partial<StepperConfig> = {}): StepperConfig => ({
  portfolioId: 'p1',
  currency: 'USDT',
  initialCash: 10_000,
  timeframe: '1m',
  instruments: [BTC, ETH],
  books: [
    {
      strategyId: 's1',
      symbol: 'BTCUSDT',
      kind: 'sma_crossover',
      parameters: rising,
      allocation: 0.4,
    },
    {
      strategyId: 's2',
      symbol: 'ETHUSDT',
      kind: 'sma_crossover',
      parameters: rising,
      allocation: 0.4,
    },
  ],
  venue: { slippageBps: 0, makerFeeBps: 0, takerFeeBps: 0, maxVolumeShare: null },
  sizing: { band: 0.05 },
  ...overrides,
});

/** Bar i of both symbols: BTC and ETH closes given. */
const both = (i: number, btc: [number, number], eth: [number, number]): Candle[] => [
  bar(T0 + i * MINUTE, btc[0], btc[1]),
  bar(T0 + i * MINUTE, eth[0], eth[1], { symbol: 'ETHUSDT' }),
];

function run(stepper: Stepper, candles: readonly Candle[], state = stepper.initialState()) {
  const events: TradingEvent[] = [];
  for (const candle of candles) events.push(...stepper.step(state, candle).events);
  return { state, events };
}

const submitted = (events: readonly TradingEvent[]): OrderRequest[] =>
  events.flatMap((e) => (e.type === 'OrderSubmitted' ? [e.data] : []));
const quantityOf = (stepper: Stepper, state: ReturnType<Stepper['initialState']>, i: number) =>
  state.account.positions[i]?.quantity ?? NaN;

// Bars 0–3: both rise (both go long at the close of bar 2, fill at bar 3's open).
const BUILD = [
  ...both(0, [100, 100], [10, 10]),
  ...both(1, [100, 101], [10, 10.1]),
  ...both(2, [101, 102], [10.1, 10.2]),
  ...both(3, [102, 103], [10.2, 10.3]),
];

describe('balance-driven sizing', () => {
  it('builds each book to allocation × equity × target', () => {
    const stepper = new Stepper(config());
    const { state } = run(stepper, BUILD);
    // 10,000 × 0.4 / 102 = 39.215 BTC; 10,000 × 0.4 / 10.2 = 392.15 ETH (lots 0.001, 0.01).
    expect(quantityOf(stepper, state, 0)).toBe(39.215);
    expect(quantityOf(stepper, state, 1)).toBe(392.15);
  });

  it('equity falls 20%: the other book is reduced toward its new target, reduce-only', () => {
    const stepper = new Stepper(config());
    const { state } = run(stepper, BUILD);
    const before = stepper.equity(state);
    // ETH halves (its signal goes flat: it sells) while BTC creeps up: equity −20%.
    const crash = both(4, [103, 103.1], [10.3, 5.15]);
    const { events } = run(stepper, crash, state);
    const after = stepper.equity(state);
    expect(after / before).toBeLessThan(0.81);
    // BTC's next bar sees the new equity (its bar 4 came before ETH's).
    events.push(...run(stepper, both(5, [103.1, 103.2], [5.15, 5.1]), state).events);
    const orders = submitted(events);
    const btc = orders.find((o) => o.symbol === 'BTCUSDT');
    expect(btc).toMatchObject({ side: 'sell', reduceOnly: true });
    // Filled at the next open; the BTC book is then within its band of 0.4 × equity.
    expect(btc?.quantity).toBeGreaterThan(5);
    expect(orders.find((o) => o.symbol === 'ETHUSDT')).toMatchObject({ side: 'sell' });
    // Filled at the next open: the BTC book is within its band of 0.4 × the new equity.
    run(stepper, both(6, [103.2, 103.3], [5.1, 5.05]), state);
    const notional = quantityOf(stepper, state, 0) * 103.3;
    const target = 0.4 * stepper.equity(state);
    expect(Math.abs(notional - target) / target).toBeLessThanOrEqual(0.05);
  });

  it('inside the band nothing is ordered', () => {
    const stepper = new Stepper(config());
    const { state } = run(stepper, BUILD);
    const { events } = run(stepper, both(4, [103, 103.5], [10.3, 10.35]), state);
    expect(submitted(events)).toEqual([]);
  });

  it('weight zero closes the position', () => {
    const first = new Stepper(config());
    const { state } = run(first, BUILD);
    const zero = config();
    const second = new Stepper({
      ...zero,
      books: zero.books.map((b) => (b.strategyId === 's2' ? { ...b, allocation: 0 } : b)),
    });
    const { events } = run(second, both(4, [103, 103.1], [10.3, 10.4]), state);
    expect(submitted(events)).toEqual([
      expect.objectContaining({
        symbol: 'ETHUSDT',
        side: 'sell',
        quantity: 392.15,
        reduceOnly: true,
      }),
    ]);
    run(second, both(5, [103.1, 103.2], [10.4, 10.5]), state);
    expect(quantityOf(second, state, 1)).toBe(0);
  });

  it('moves in steps the limits allow: no order above the order headroom, no position above its cap', () => {
    const stepper = new Stepper(
      config({
        headroom: () => ({ orderNotional: 1_000, positionNotional: 3_000 }),
      }),
    );
    const btc = (i: number): number => 100 + i;
    const eth = (i: number): number => 10 + i / 10;
    const candles = Array.from({ length: 12 }, (_, i) =>
      both(i, [btc(Math.max(0, i - 1)), btc(i)], [eth(Math.max(0, i - 1)), eth(i)]),
    ).flat();
    const { state, events } = run(stepper, candles);
    const orders = submitted(events);
    expect(orders.length).toBeGreaterThan(4);
    for (const order of orders.filter((o) => o.symbol === 'BTCUSDT')) {
      // Decided at the close of the bar whose id it carries.
      const i = (Number(order.clientOrderId.split('-').at(-2)) - T0) / MINUTE;
      expect(order.quantity * btc(i)).toBeLessThanOrEqual(1_000);
    }
    const position = quantityOf(stepper, state, 0) * btc(11);
    expect(position).toBeLessThanOrEqual(3_000 * (btc(11) / btc(10)));
    expect(position).toBeGreaterThan(2_500);
  });

  it('allocation 0 is refused without sizing, as before', () => {
    const plain = config();
    delete plain.sizing;
    expect(
      () => new Stepper({ ...plain, books: plain.books.map((b) => ({ ...b, allocation: 0 })) }),
    ).toThrow(/allocation must be > 0/);
  });
});
