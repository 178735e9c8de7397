import { describe, expect, it } from 'vitest';
import {
  applyFill,
  bookFill,
  cashChange,
  equity,
  flatPosition,
  unrealizedPnl,
  type Account,
  type Position,
  type PositionFill,
} from './accounting.js';

const buy = (quantity: number, price: number, fee: number, time = 0): PositionFill => ({
  side: 'buy',
  quantity,
  price,
  fee,
  time,
});
const sell = (quantity: number, price: number, fee: number, time = 0): PositionFill => ({
  ...buy(quantity, price, fee, time),
  side: 'sell',
});

/** Applies fills in turn; returns every intermediate update. */
function replay(fills: PositionFill[], start: Position = flatPosition('s1', 'BTCUSDT')) {
  let position = start;
  return fills.map((fill) => {
    const update = applyFill(position, fill);
    position = update.position;
    return update;
  });
}

describe('netting position', () => {
  it('opens, adds at a weighted average, reduces realizing PnL, and values the rest at the mark', () => {
    const [opened, added, reduced] = replay([
      buy(2, 100, 0.2, 1),
      buy(1, 106, 0.1, 2),
      sell(1, 110, 0.11, 3),
    ]);
    expect(opened!.position).toMatchObject({ quantity: 2, averageEntryPrice: 100, realizedPnl: 0 });
    // (2 × 100 + 1 × 106) / 3 = 102.
    expect(added!.position.quantity).toBe(3);
    expect(added!.position.averageEntryPrice).toBeCloseTo(102, 12);
    // (110 − 102) × 1 = 8 realized; the average entry stays.
    expect(reduced!.realizedPnl).toBeCloseTo(8, 12);
    expect(reduced!.closed).toBeNull();
    expect(reduced!.position.quantity).toBe(2);
    expect(reduced!.position.averageEntryPrice).toBeCloseTo(102, 12);
    expect(reduced!.position.feesPaid).toBeCloseTo(0.41, 12);
    // (105 − 102) × 2 = 6 unrealized at a mark of 105.
    expect(unrealizedPnl(reduced!.position, 105)).toBeCloseTo(6, 12);
  });

  it('flips long → short in one fill: realizes the closed part, opens the rest at the fill price', () => {
    const updates = replay([
      buy(2, 100, 0.2, 1),
      buy(1, 106, 0.1, 2),
      sell(1, 110, 0.11, 3),
      sell(5, 100, 0.5, 4),
    ]);
    const flip = updates[3]!;
    // Closes 2 at 100 against 102: −4. Opens 3 short at 100. Fee 0.5 split 2/5 : 3/5.
    expect(flip.realizedPnl).toBeCloseTo(-4, 12);
    expect(flip.position).toMatchObject({ quantity: -3, averageEntryPrice: 100 });
    expect(flip.position.realizedPnl).toBeCloseTo(4, 12);
    expect(flip.position.trip).toMatchObject({
      side: 'short',
      openedAt: 4,
      entryQuantity: 3,
      exitQuantity: 0,
    });
    expect(flip.position.trip!.fees).toBeCloseTo(0.3, 12);
    // The closed long round trip: entered 3 at 102, left 1 at 110 and 2 at 100 (103.33),
    // realized 8 − 4 = 4, fees 0.2 + 0.1 + 0.11 + 0.2 = 0.61, net 3.39.
    const trade = flip.closed!;
    expect(trade).toMatchObject({ side: 'long', openedAt: 1, closedAt: 4, quantity: 3 });
    expect(trade.entryPrice).toBeCloseTo(102, 12);
    expect(trade.exitPrice).toBeCloseTo(310 / 3, 12);
    expect(trade.realizedPnl).toBeCloseTo(4, 12);
    expect(trade.fees).toBeCloseTo(0.61, 12);
    expect(trade.netPnl).toBeCloseTo(3.39, 12);
    // Short 3 from 100, mark 90: (90 − 100) × −3 = +30.
    expect(unrealizedPnl(flip.position, 90)).toBeCloseTo(30, 12);
  });

  it('closes a short: PnL (average − price) × quantity, and the short round trip', () => {
    const updates = replay([sell(3, 100, 0.3, 1), buy(3, 95, 0.285, 2)]);
    const closed = updates[1]!;
    expect(closed.realizedPnl).toBeCloseTo(15, 12);
    expect(closed.position).toMatchObject({ quantity: 0, averageEntryPrice: 0, trip: null });
    expect(closed.closed).toMatchObject({ side: 'short', entryPrice: 100, exitPrice: 95 });
    expect(closed.closed!.netPnl).toBeCloseTo(15 - 0.585, 12);
  });

  it('books partial fills of one order as separate fills with a weighted entry', () => {
    const updates = replay([
      buy(0.4, 100, 0),
      buy(0.6, 101, 0),
      sell(0.3, 102, 0),
      sell(0.7, 102, 0),
    ]);
    // (0.4 × 100 + 0.6 × 101) / 1 = 100.6; realized (102 − 100.6) × 0.3 and × 0.7.
    expect(updates[1]!.position.averageEntryPrice).toBeCloseTo(100.6, 12);
    expect(updates[2]!.realizedPnl).toBeCloseTo(0.42, 12);
    expect(updates[2]!.position.quantity).toBe(0.7);
    expect(updates[3]!.realizedPnl).toBeCloseTo(0.98, 12);
    expect(updates[3]!.position.quantity).toBe(0);
    expect(updates[3]!.closed!.netPnl).toBeCloseTo(1.4, 12);
  });

  it('leaves no float dust: 0.1 + 0.2 − 0.3 is flat', () => {
    const updates = replay([buy(0.1, 10, 0), buy(0.2, 10, 0), sell(0.3, 10, 0)]);
    expect(updates[2]!.position.quantity).toBe(0);
    expect(updates[2]!.closed).not.toBeNull();
  });

  it('does not change the position it is given', () => {
    const position = flatPosition('s1', 'BTCUSDT');
    applyFill(position, buy(1, 100, 0));
    expect(position).toEqual(flatPosition('s1', 'BTCUSDT'));
    expect(() => applyFill(position, buy(0, 100, 0))).toThrow(RangeError);
  });
});

describe('portfolio account', () => {
  const account = (): Account => ({
    portfolioId: 'p1',
    currency: 'USDT',
    cash: 10_000,
    feesPaid: 0,
    positions: [flatPosition('s1', 'BTCUSDT'), flatPosition('s2', 'ETHUSDT')],
  });

  it('debits trades and fees from cash; equity = cash + Σ quantity × mark', () => {
    let current = account();
    const fills: [number, PositionFill][] = [
      [0, buy(2, 100, 0.2)],
      [0, buy(1, 106, 0.1)],
      [0, sell(1, 110, 0.11)],
      [0, sell(5, 100, 0.5)],
      [1, buy(4, 50, 0.1)],
    ];
    const cash: number[] = [];
    for (const [index, fill] of fills) {
      current = bookFill(current, index, { ...fill, clientOrderId: 'c', fillId: 'f' }).account;
      cash.push(current.cash);
    }
    // 10000 − 200.2 = 9799.8; − 106.1 = 9693.7; + 109.89 = 9803.59; + 499.5 = 10303.09; − 200.1.
    expect(cash.map((c) => Number(c.toFixed(6)))).toEqual([
      9799.8, 9693.7, 9803.59, 10303.09, 10102.99,
    ]);
    expect(current.feesPaid).toBeCloseTo(1.01, 12);
    // BTC −3 marked at 90, ETH 4 marked at 55: 10102.99 − 270 + 220 = 10052.99
    // = 10000 + realized 4 + unrealized (30 + 20) − fees 1.01.
    const marks: Record<string, number> = { BTCUSDT: 90, ETHUSDT: 55 };
    expect(equity(current, (symbol) => marks[symbol])).toBeCloseTo(10_052.99, 9);
    // Without a mark a position counts at its average entry.
    expect(equity(current, () => undefined)).toBeCloseTo(10_102.99 - 300 + 200, 9);
  });

  it('emits PositionClosed, PositionChanged and CashBalanceChanged for a flip, in that order', () => {
    let current = bookFill(account(), 0, {
      ...buy(2, 100, 0.2, 1),
      clientOrderId: 'o1',
      fillId: 'o1#1',
    }).account;
    const booked = bookFill(current, 0, {
      ...sell(3, 90, 0.27, 2),
      clientOrderId: 'o2',
      fillId: 'o2#1',
    });
    current = booked.account;
    expect(booked.events.map((e) => e.type)).toEqual([
      'PositionClosed',
      'PositionChanged',
      'CashBalanceChanged',
    ]);
    const [closed, changed, cashEvent] = booked.events;
    expect(closed!.data).toMatchObject({
      portfolioId: 'p1',
      clientOrderId: 'o2',
      fillId: 'o2#1',
      strategyId: 's1',
      side: 'long',
      quantity: 2,
      entryPrice: 100,
      exitPrice: 90,
      realizedPnl: -20,
    });
    // Fees: 0.2 entry + 2/3 of 0.27 = 0.38; net −20.38.
    expect(closed!.type === 'PositionClosed' && closed!.data.netPnl).toBeCloseTo(-20.38, 12);
    expect(changed!.data).toMatchObject({
      quantity: -1,
      averageEntryPrice: 90,
      realizedPnlChange: -20,
      realizedPnl: -20,
      fillQuantity: 3,
      fillPrice: 90,
    });
    expect(cashEvent!.data).toMatchObject({ currency: 'USDT', balance: current.cash });
    expect(cashEvent!.type === 'CashBalanceChanged' && cashEvent!.data.change).toBeCloseTo(
      269.73,
      12,
    );
    expect(cashChange(sell(3, 90, 0.27))).toBeCloseTo(269.73, 12);
  });
});
