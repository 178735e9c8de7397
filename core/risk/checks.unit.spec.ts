import { describe, expect, it } from 'vitest';
import type { OrderRequest } from '../trading/orders.js';
import { BTC, ETH, MINUTE, T0, bar } from '../trading/fixtures.spec.js';
import {
  Stepper,
  type BookExposure,
  type RiskContext,
  type RiskPortfolio,
} from '../trading/stepper.js';
import {
  DENIAL_CODES,
  createRiskCheck,
  effectOf,
  emptySnapshot,
  preTradeCheck,
  strictestState,
  type RiskSnapshot,
} from './checks.js';
import { DEFAULT_LIMITS, type RiskLimits } from './limits.js';

const TIME = T0 + 10 * MINUTE;

const order = (overrides: Partial<OrderRequest> = {}): OrderRequest => ({
  clientOrderId: 'o1',
  portfolioId: 'p1',
  strategyId: 's1',
  symbol: BTC.symbol,
  side: 'buy',
  type: 'market',
  quantity: 1,
  limitPrice: null,
  stopPrice: null,
  reduceOnly: false,
  ...overrides,
});

const context = (overrides: Partial<RiskContext> = {}): RiskContext => ({
  portfolioId: 'p1',
  strategyId: 's1',
  symbol: BTC.symbol,
  time: TIME,
  referencePrice: 100,
  equity: 10_000,
  cash: 10_000,
  positionQuantity: 0,
  openOrders: 0,
  ...overrides,
});

const book = (overrides: Partial<BookExposure> = {}): BookExposure => ({
  strategyId: 's1',
  symbol: BTC.symbol,
  quantity: 0,
  pending: 0,
  mark: 100,
  orderTimes: [],
  ...overrides,
});

/** Books s1 and s2 on BTC (100) and ETH (10); `books` overrides by `<strategy>/<symbol>`. */
function portfolio(books: Record<string, Partial<BookExposure>> = {}): RiskPortfolio {
  const all: BookExposure[] = [];
  for (const strategyId of ['s1', 's2'])
    for (const [symbol, mark] of [
      [BTC.symbol, 100],
      [ETH.symbol, 10],
    ] as const)
      all.push(book({ strategyId, symbol, mark, ...books[`${strategyId}/${symbol}`] }));
  return { books: all };
}

const withLimits = (
  limits: Record<string, Partial<RiskLimits>>,
  snapshot: RiskSnapshot = emptySnapshot(),
): RiskSnapshot => {
  const next = { ...snapshot, limits: { ...snapshot.limits } };
  for (const [key, partial] of Object.entries(limits)) {
    const type = key.slice(0, key.indexOf(':')) as keyof typeof DEFAULT_LIMITS;
    next.limits[key] = { ...DEFAULT_LIMITS[type], ...partial };
  }
  return next;
};

const withStates = (states: RiskSnapshot['states'], snapshot = emptySnapshot()): RiskSnapshot => ({
  ...snapshot,
  states: { ...snapshot.states, ...states },
});

const permanent = (base: 'REDUCING' | 'HALTED') => ({ base, temporary: null, resetAt: null });

const check = (
  o: Partial<OrderRequest>,
  snapshot: RiskSnapshot = emptySnapshot(),
  books: Record<string, Partial<BookExposure>> = {},
  ctx: Partial<RiskContext> = {},
) => preTradeCheck(order(o), context(ctx), snapshot, portfolio(books));

const OK = { ok: true };
const denied = (reason: string) => ({ ok: false, reason });

describe('pre-trade check: what passes', () => {
  it('passes an ordinary order under the default limits', () => {
    expect(check({ quantity: 5 })).toEqual(OK);
  });

  it('works without the portfolio argument (the book alone)', () => {
    expect(preTradeCheck(order({ quantity: 5 }), context(), emptySnapshot())).toEqual(OK);
    expect(preTradeCheck(order({ quantity: 25 }), context(), emptySnapshot())).toEqual(
      denied(
        'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=0.25, max=0.2, notional=2500, equity=10000',
      ),
    );
  });

  it('lists every code it can answer with', () => {
    expect(DENIAL_CODES).toHaveLength(11);
  });
});

describe('order effect', () => {
  it('counts open orders as filled; reducing means smaller without a flip', () => {
    expect(effectOf({ side: 'sell', quantity: 3 }, book({ quantity: 5 }))).toEqual({
      before: 5,
      after: 2,
      reducing: true,
    });
    expect(effectOf({ side: 'sell', quantity: 5 }, book({ quantity: 5 })).reducing).toBe(true);
    expect(effectOf({ side: 'sell', quantity: 8 }, book({ quantity: 5 })).reducing).toBe(false);
    expect(effectOf({ side: 'sell', quantity: 1 }, book({ quantity: 0 })).reducing).toBe(false);
    expect(effectOf({ side: 'buy', quantity: 1 }, book({ quantity: -2 })).reducing).toBe(true);
    expect(effectOf({ side: 'sell', quantity: 1 }, book({ quantity: 5, pending: -5 }))).toEqual({
      before: 0,
      after: -1,
      reducing: false,
    });
  });
});

describe('REDUCE_ONLY_WOULD_INCREASE_POSITION', () => {
  it('denies a reduce-only order that opens, grows or flips a position', () => {
    expect(check({ reduceOnly: true })).toEqual(
      denied('REDUCE_ONLY_WOULD_INCREASE_POSITION: position=0, side=buy, quantity=1'),
    );
    expect(
      check({ side: 'sell', quantity: 8, reduceOnly: true }, emptySnapshot(), {
        's1/BTCUSDT': { quantity: 5 },
      }),
    ).toEqual(denied('REDUCE_ONLY_WOULD_INCREASE_POSITION: position=5, side=sell, quantity=8'));
  });

  it('passes one that shrinks it, and counts the open orders', () => {
    expect(
      check({ side: 'sell', quantity: 5, reduceOnly: true }, emptySnapshot(), {
        's1/BTCUSDT': { quantity: 5 },
      }),
    ).toEqual(OK);
    expect(
      check({ side: 'sell', quantity: 1, reduceOnly: true }, emptySnapshot(), {
        's1/BTCUSDT': { quantity: 5, pending: -5 },
      }),
    ).toEqual(denied('REDUCE_ONLY_WOULD_INCREASE_POSITION: position=0, side=sell, quantity=1'));
  });
});

describe('KILL_SWITCH_ENGAGED', () => {
  const engaged: RiskSnapshot = {
    ...emptySnapshot(),
    killSwitch: { engaged: true, flatten: false, since: T0 },
  };

  it('denies every order but reduce-only ones that shrink', () => {
    expect(check({}, engaged)).toEqual(
      denied(`KILL_SWITCH_ENGAGED: since=${new Date(T0).toISOString()}`),
    );
    const long = { 's1/BTCUSDT': { quantity: 5 } };
    expect(check({ side: 'sell', quantity: 2 }, engaged, long)).toEqual(
      denied(`KILL_SWITCH_ENGAGED: since=${new Date(T0).toISOString()}`),
    );
    expect(check({ side: 'sell', quantity: 2, reduceOnly: true }, engaged, long)).toEqual(OK);
  });
});

describe('TRADING_HALTED and REDUCING_ONLY', () => {
  const long = { 's1/BTCUSDT': { quantity: 5 } };

  it('HALTED passes only reduce-only orders, naming the scope', () => {
    const halted = withStates({ 'strategy:s1': permanent('HALTED') });
    expect(check({}, halted)).toEqual(denied('TRADING_HALTED: scope=strategy:s1'));
    expect(check({ side: 'sell', quantity: 2 }, halted, long)).toEqual(
      denied('TRADING_HALTED: scope=strategy:s1'),
    );
    expect(check({ side: 'sell', quantity: 2, reduceOnly: true }, halted, long)).toEqual(OK);
    // Another strategy trades on.
    expect(check({ strategyId: 's2' }, halted, {}, { strategyId: 's2' })).toEqual(OK);
  });

  it('a temporary halt names its end and is over at it', () => {
    const until = TIME + MINUTE;
    const cooling = withStates({
      'symbol:BTCUSDT': {
        base: 'ACTIVE',
        temporary: { state: 'HALTED', until, triggerId: 't1' },
        resetAt: null,
      },
    });
    expect(check({}, cooling)).toEqual(
      denied(`TRADING_HALTED: scope=symbol:BTCUSDT, until=${until}`),
    );
    expect(check({}, cooling, {}, { time: until })).toEqual(OK);
  });

  it('REDUCING passes any order that shrinks, reduce-only or not', () => {
    const reducing = withStates({ 'portfolio:p1': permanent('REDUCING') });
    expect(check({}, reducing)).toEqual(denied('REDUCING_ONLY: scope=portfolio:p1'));
    expect(check({ side: 'sell', quantity: 2 }, reducing, long)).toEqual(OK);
    expect(check({ side: 'sell', quantity: 7 }, reducing, long)).toEqual(
      denied('REDUCING_ONLY: scope=portfolio:p1'),
    );
  });

  it('the strictest scope wins; on a tie the first of portfolio, strategy, symbol', () => {
    const mixed = withStates({
      'portfolio:p1': permanent('REDUCING'),
      'symbol:BTCUSDT': permanent('HALTED'),
      'strategy:s1': permanent('HALTED'),
    });
    expect(check({}, mixed)).toEqual(denied('TRADING_HALTED: scope=strategy:s1'));
    expect(
      strictestState(
        mixed,
        [
          { type: 'portfolio', id: 'p1' },
          { type: 'symbol', id: 'ETHUSDT' },
        ],
        TIME,
      ),
    ).toEqual({ state: 'REDUCING', scope: { type: 'portfolio', id: 'p1' } });
  });
});

describe('NO_REFERENCE_PRICE', () => {
  it('denies when the symbol has no price yet', () => {
    expect(check({}, emptySnapshot(), {}, { referencePrice: NaN })).toEqual(
      denied('NO_REFERENCE_PRICE: symbol=BTCUSDT'),
    );
  });
});

describe('ORDER_RATE_EXCEEDED', () => {
  const rate = { maxOrders: 2, windowMs: MINUTE };

  it('counts the orders of the scope within the window', () => {
    const limited = withLimits({ 'strategy:s1': { orderRate: rate } });
    const recent = {
      's1/BTCUSDT': { orderTimes: [TIME - 30_000] },
      's1/ETHUSDT': { orderTimes: [TIME - 1_000] },
    };
    expect(check({}, limited, recent)).toEqual(
      denied('ORDER_RATE_EXCEEDED: scope=strategy:s1, orders=2, max=2, windowMs=60000'),
    );
    // One of them left the window (it is exclusive at its start).
    const older = { ...recent, 's1/BTCUSDT': { orderTimes: [TIME - MINUTE] } };
    expect(check({}, limited, older)).toEqual(OK);
    // Another strategy's orders do not count for s1's limit, but do for the portfolio's.
    const others = { 's2/BTCUSDT': { orderTimes: [TIME - 2, TIME - 1] } };
    expect(check({}, limited, others)).toEqual(OK);
    expect(check({}, withLimits({ 'portfolio:p1': { orderRate: rate } }), others)).toEqual(
      denied('ORDER_RATE_EXCEEDED: scope=portfolio:p1, orders=2, max=2, windowMs=60000'),
    );
  });

  it('never holds up an order that shrinks a position', () => {
    const limited = withLimits({
      'symbol:BTCUSDT': { orderRate: { maxOrders: 1, windowMs: MINUTE } },
    });
    const books = { 's1/BTCUSDT': { quantity: 5, orderTimes: [TIME - 1] } };
    expect(check({}, limited, books)).toEqual(
      denied('ORDER_RATE_EXCEEDED: scope=symbol:BTCUSDT, orders=1, max=1, windowMs=60000'),
    );
    expect(check({ side: 'sell', quantity: 5 }, limited, books)).toEqual(OK);
  });
});

describe('NOTIONAL_EXCEEDS_MAX_PER_ORDER', () => {
  const limited = withLimits({ 'portfolio:p1': { maxOrderNotional: 1000 } });

  it('at the last close for a market order, at its price for a limit or stop order', () => {
    expect(check({ quantity: 11 }, limited)).toEqual(
      denied('NOTIONAL_EXCEEDS_MAX_PER_ORDER: scope=portfolio:p1, notional=1100, max=1000'),
    );
    expect(check({ quantity: 10 }, limited)).toEqual(OK);
    expect(check({ quantity: 11, type: 'limit', limitPrice: 90 }, limited)).toEqual(OK);
    expect(check({ quantity: 9, type: 'stop', stopPrice: 120 }, limited)).toEqual(
      denied('NOTIONAL_EXCEEDS_MAX_PER_ORDER: scope=portfolio:p1, notional=1080, max=1000'),
    );
  });

  it('does not stop an order that shrinks a position', () => {
    expect(
      check({ side: 'sell', quantity: 15 }, limited, { 's1/BTCUSDT': { quantity: 15 } }),
    ).toEqual(OK);
  });
});

describe('POSITION_EXCEEDS_MAX_NOTIONAL', () => {
  it('the strategy scope measures its own position', () => {
    const limited = withLimits({ 'strategy:s1': { maxPositionNotional: 1500 } });
    expect(check({ quantity: 6 }, limited, { 's1/BTCUSDT': { quantity: 10 } })).toEqual(
      denied('POSITION_EXCEEDS_MAX_NOTIONAL: scope=strategy:s1, notional=1600, max=1500'),
    );
    expect(check({ quantity: 5 }, limited, { 's1/BTCUSDT': { quantity: 10 } })).toEqual(OK);
  });

  it("the symbol and portfolio scopes measure the portfolio's net position in the symbol", () => {
    const limited = withLimits({ 'symbol:BTCUSDT': { maxPositionNotional: 1500 } });
    // s2 is short 10: s1 buying 20 leaves the portfolio net long 10.
    expect(check({ quantity: 20 }, limited, { 's2/BTCUSDT': { quantity: -10 } })).toEqual(OK);
    expect(check({ quantity: 26 }, limited, { 's2/BTCUSDT': { quantity: -10 } })).toEqual(
      denied('POSITION_EXCEEDS_MAX_NOTIONAL: scope=symbol:BTCUSDT, notional=1600, max=1500'),
    );
  });

  it('counts open orders, as if filled', () => {
    const limited = withLimits({ 'strategy:s1': { maxPositionNotional: 1500 } });
    expect(check({ quantity: 6 }, limited, { 's1/BTCUSDT': { pending: 10 } })).toEqual(
      denied('POSITION_EXCEEDS_MAX_NOTIONAL: scope=strategy:s1, notional=1600, max=1500'),
    );
  });
});

describe('POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY', () => {
  it('defaults to 20% of the equity at the portfolio scope', () => {
    expect(check({ quantity: 20 })).toEqual(OK);
    expect(check({ quantity: 21 })).toEqual(
      denied(
        'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=0.21, max=0.2, notional=2100, equity=10000',
      ),
    );
  });

  it('with no equity left, no position may grow', () => {
    expect(check({ quantity: 0.01 }, emptySnapshot(), {}, { equity: -5 })).toEqual(
      denied(
        'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=Infinity, max=0.2, notional=1, equity=-5',
      ),
    );
  });

  it('a position above the limit after a price move may shrink or flip smaller, never grow', () => {
    const big = { 's1/BTCUSDT': { quantity: 30 } };
    expect(check({ side: 'sell', quantity: 5 }, emptySnapshot(), big)).toEqual(OK);
    expect(check({ side: 'sell', quantity: 50 }, emptySnapshot(), big)).toEqual(OK);
    expect(check({ side: 'sell', quantity: 70 }, emptySnapshot(), big)).toEqual(
      denied(
        'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=0.4, max=0.2, notional=4000, equity=10000',
      ),
    );
    expect(check({ quantity: 1 }, emptySnapshot(), big)).toEqual(
      denied(
        'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=0.31, max=0.2, notional=3100, equity=10000',
      ),
    );
  });
});

describe('GROSS_EXPOSURE_EXCEEDS_MAX and LEVERAGE_EXCEEDS_MAX', () => {
  const noShare = { maxPositionShareOfEquity: null };

  it('gross exposure sums |position| × mark over the scope', () => {
    const limited = withLimits({ 'portfolio:p1': { ...noShare, maxGrossExposure: 3000 } });
    const held = { 's2/ETHUSDT': { quantity: -100 }, 's1/BTCUSDT': { quantity: 10 } };
    expect(check({ quantity: 10 }, limited, held)).toEqual(OK);
    expect(check({ quantity: 11 }, limited, held)).toEqual(
      denied('GROSS_EXPOSURE_EXCEEDS_MAX: scope=portfolio:p1, gross=3100, max=3000'),
    );
    // The strategy scope counts the strategy's books only.
    const strategy = withLimits({ 'strategy:s1': { maxGrossExposure: 1500 } });
    expect(check({ quantity: 5 }, strategy, held)).toEqual(OK);
    expect(check({ quantity: 6 }, strategy, held)).toEqual(
      denied('GROSS_EXPOSURE_EXCEEDS_MAX: scope=strategy:s1, gross=1600, max=1500'),
    );
  });

  it('leverage is gross exposure over equity; the default is 10', () => {
    const big = { ...noShare, maxLeverage: 1 };
    expect(check({ quantity: 100 }, withLimits({ 'portfolio:p1': big }))).toEqual(OK);
    expect(check({ quantity: 101 }, withLimits({ 'portfolio:p1': big }))).toEqual(
      denied(
        'LEVERAGE_EXCEEDS_MAX: scope=portfolio:p1, leverage=1.01, max=1, gross=10100, equity=10000',
      ),
    );
    expect(check({ quantity: 1001 }, withLimits({ 'portfolio:p1': noShare }))).toEqual(
      denied(
        'LEVERAGE_EXCEEDS_MAX: scope=portfolio:p1, leverage=10.01, max=10, gross=100100, equity=10000',
      ),
    );
  });
});

describe('the engine hook', () => {
  const config = (risk: ReturnType<typeof createRiskCheck>) =>
    new Stepper({
      portfolioId: 'p1',
      currency: 'USDT',
      initialCash: 10_000,
      timeframe: '1m',
      instruments: [BTC, ETH],
      books: [
        {
          strategyId: 's1',
          symbol: BTC.symbol,
          kind: 'sma_crossover',
          parameters: { fastPeriod: 2, slowPeriod: 3, positionFraction: 0.5 },
          allocation: 1,
          enabled: false,
        },
      ],
      venue: { slippageBps: 0, makerFeeBps: 0, takerFeeBps: 0, maxVolumeShare: null },
      risk,
    });
  const manual = (id: string, quantity: number, side: 'buy' | 'sell' = 'buy', reduceOnly = false) =>
    order({ clientOrderId: id, quantity, side, reduceOnly });

  it('sees the snapshot of the moment, the rate of orders and the open orders', () => {
    let snapshot = withLimits({
      'strategy:s1': { orderRate: { maxOrders: 2, windowMs: 5 * MINUTE } },
    });
    const stepper = config(createRiskCheck(() => snapshot));
    const state = stepper.initialState();
    stepper.step(state, bar(T0, 100, 100));
    const at = T0 + MINUTE;
    const reasons = (id: string, quantity: number, side?: 'buy' | 'sell', reduceOnly?: boolean) =>
      stepper
        .submit(state, manual(id, quantity, side, reduceOnly), at)
        .events.map((e) => (e.type === 'OrderDenied' ? e.data.reason : e.type));
    expect(reasons('a', 15)).toEqual(['OrderSubmitted', 'OrderAccepted']);
    // The open 15 counts: 15 + 6 = 21 > 20% of 10 000 at 100.
    expect(reasons('b', 6)).toEqual([
      'OrderSubmitted',
      'POSITION_EXCEEDS_MAX_SHARE_OF_EQUITY: scope=portfolio:p1, share=0.21, max=0.2, notional=2100, equity=10000',
    ]);
    expect(reasons('c', 5)).toEqual(['OrderSubmitted', 'OrderAccepted']);
    expect(state.books[0]!.orderTimes).toEqual([at, at]);
    expect(reasons('d', 1)).toEqual([
      'OrderSubmitted',
      'ORDER_RATE_EXCEEDED: scope=strategy:s1, orders=2, max=2, windowMs=300000',
    ]);
    snapshot = { ...snapshot, killSwitch: { engaged: true, flatten: true, since: at } };
    expect(reasons('e', 1)).toEqual([
      'OrderSubmitted',
      `KILL_SWITCH_ENGAGED: since=${new Date(at).toISOString()}`,
    ]);
    // Filled: the reduce-only exit passes the kill switch and the rate limit.
    stepper.step(state, bar(T0 + MINUTE, 100, 100));
    expect(state.account.positions[0]!.quantity).toBe(20);
    expect(reasons('f', 20, 'sell', true)).toEqual(['OrderSubmitted', 'OrderAccepted']);
  });
});
