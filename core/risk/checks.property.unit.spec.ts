import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OrderRequest } from '../trading/orders.js';
import type { BookExposure, RiskContext } from '../trading/stepper.js';
import { scopeKey, strictness, type RiskScope, type TradingState } from './common.js';
import { emptySnapshot, preTradeCheck, type RiskSnapshot } from './checks.js';
import { DEFAULT_LIMITS, type RiskLimits } from './limits.js';

/**
 * For any limits, trading states and random stream of orders and price moves: no accepted order
 * leaves a limit breached. The model below keeps its own exposure: an accepted order fills at once
 * at the reference price (no fees), so equity only moves with prices. Every measure is computed
 * here independently of checks.ts. "Not breached" means: at or below the limit, or — when a price
 * move had already pushed it above — not larger than before the order.
 */

const T0 = Date.UTC(2024, 0, 1);
const STRATEGIES = ['s1', 's2'] as const;
const SYMBOLS = ['BTCUSDT', 'ETHUSDT'] as const;
const START_PRICE: Record<string, number> = { BTCUSDT: 100, ETHUSDT: 10 };

type Book = { strategyId: string; symbol: string; quantity: number; orderTimes: number[] };

const limitsArb = (type: RiskScope['type']): fc.Arbitrary<RiskLimits> =>
  fc
    .record({
      maxOrderNotional: fc.option(fc.integer({ min: 300, max: 5_000 }), { nil: null, freq: 2 }),
      maxPositionNotional: fc.option(fc.integer({ min: 100, max: 8_000 }), { nil: null, freq: 2 }),
      maxPositionShareOfEquity: fc.option(fc.constantFrom(0.05, 0.1, 0.2, 0.5, 1), {
        nil: null,
        freq: 2,
      }),
      maxGrossExposure: fc.option(fc.integer({ min: 200, max: 30_000 }), { nil: null, freq: 2 }),
      maxLeverage: fc.option(fc.constantFrom(0.3, 0.5, 1, 2, 10), { nil: null, freq: 2 }),
      orderRate: fc.option(
        fc.record({
          maxOrders: fc.integer({ min: 1, max: 6 }),
          windowMs: fc.constantFrom(60_000, 300_000),
        }),
        { nil: null, freq: 2 },
      ),
    })
    .map((chosen) => ({ ...DEFAULT_LIMITS[type], ...chosen }));

const stateArb: fc.Arbitrary<TradingState> = fc.oneof(
  { weight: 12, arbitrary: fc.constant('ACTIVE' as const) },
  { weight: 1, arbitrary: fc.constant('REDUCING' as const) },
  { weight: 1, arbitrary: fc.constant('HALTED' as const) },
);

const actionArb = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('price' as const),
      symbol: fc.constantFrom(...SYMBOLS),
      factor: fc.integer({ min: 50, max: 150 }).map((n) => n / 100),
      dt: fc.integer({ min: 0, max: 90_000 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('order' as const),
      book: fc.integer({ min: 0, max: 3 }),
      side: fc.constantFrom('buy' as const, 'sell' as const),
      quantity: fc.integer({ min: 1, max: 250 }).map((n) => n / 10),
      reduceOnly: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      limitOffset: fc.option(
        fc.integer({ min: -20, max: 20 }).map((n) => 1 + n / 100),
        {
          nil: null,
        },
      ),
      dt: fc.integer({ min: 0, max: 40_000 }),
    }),
  },
);

const scenarioArb = fc.record({
  cash: fc.integer({ min: 1_000, max: 50_000 }),
  portfolio: limitsArb('portfolio'),
  strategies: fc.tuple(limitsArb('strategy'), limitsArb('strategy')),
  symbols: fc.tuple(limitsArb('symbol'), limitsArb('symbol')),
  states: fc.array(stateArb, { minLength: 5, maxLength: 5 }),
  killSwitch: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  actions: fc.array(actionArb, { minLength: 10, maxLength: 80 }),
});

const tolerance = (x: number): number => 1e-6 * Math.max(1, Math.abs(x));

describe('pre-trade check: property', () => {
  it('no accepted order leaves a limit breached', () => {
    let accepted = 0;
    let deniedCount = 0;
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const scopes: RiskScope[] = [
          { type: 'portfolio', id: 'p1' },
          ...STRATEGIES.map((id) => ({ type: 'strategy' as const, id })),
          ...SYMBOLS.map((id) => ({ type: 'symbol' as const, id })),
        ];
        const snapshot: RiskSnapshot = {
          ...emptySnapshot(),
          killSwitch: { engaged: scenario.killSwitch, flatten: false, since: T0 },
        };
        const limitsList = [scenario.portfolio, ...scenario.strategies, ...scenario.symbols];
        scopes.forEach((scope, i) => {
          snapshot.limits[scopeKey(scope)] = limitsList[i]!;
          snapshot.states[scopeKey(scope)] = {
            base: scenario.states[i]!,
            temporary: null,
            resetAt: null,
          };
        });

        const prices: Record<string, number> = { ...START_PRICE };
        const books: Book[] = STRATEGIES.flatMap((strategyId) =>
          SYMBOLS.map((symbol) => ({ strategyId, symbol, quantity: 0, orderTimes: [] })),
        );
        let cash = scenario.cash;
        let time = T0;
        const equity = () => books.reduce((sum, b) => sum + b.quantity * prices[b.symbol]!, cash);

        const inScope = (b: Book, scope: RiskScope) =>
          scope.type === 'portfolio' ||
          (scope.type === 'strategy' ? b.strategyId === scope.id : b.symbol === scope.id);
        /** Position (net in the symbol; the book's own at strategy scope) and gross exposure. */
        const measures = (scope: RiskScope, own: Book) => {
          const net = books
            .filter((b) => b.symbol === own.symbol && (scope.type !== 'strategy' || b === own))
            .reduce((sum, b) => sum + b.quantity, 0);
          const gross = books
            .filter((b) => inScope(b, scope))
            .reduce((sum, b) => sum + Math.abs(b.quantity) * prices[b.symbol]!, 0);
          return { position: Math.abs(net) * prices[own.symbol]!, gross };
        };

        for (const action of scenario.actions) {
          time += action.dt;
          if (action.kind === 'price') {
            prices[action.symbol] = prices[action.symbol]! * action.factor;
            continue;
          }
          const own = books[action.book]!;
          const price = prices[own.symbol]!;
          const order: OrderRequest = {
            clientOrderId: `o-${time}`,
            portfolioId: 'p1',
            strategyId: own.strategyId,
            symbol: own.symbol,
            side: action.side,
            type: action.limitOffset === null ? 'market' : 'limit',
            quantity: action.quantity,
            limitPrice: action.limitOffset === null ? null : price * action.limitOffset,
            stopPrice: null,
            reduceOnly: action.reduceOnly,
          };
          const equityBefore = equity();
          const context: RiskContext = {
            portfolioId: 'p1',
            strategyId: own.strategyId,
            symbol: own.symbol,
            time,
            referencePrice: price,
            equity: equityBefore,
            cash,
            positionQuantity: own.quantity,
            openOrders: 0,
          };
          const exposure: BookExposure[] = books.map((b) => ({
            strategyId: b.strategyId,
            symbol: b.symbol,
            quantity: b.quantity,
            pending: 0,
            mark: prices[b.symbol]!,
            orderTimes: b.orderTimes,
          }));
          const decision = preTradeCheck(order, context, snapshot, { books: exposure });
          if (!decision.ok) {
            deniedCount++;
            continue;
          }
          accepted++;

          const orderScopes = scopes.filter(
            (s) =>
              s.type === 'portfolio' ||
              (s.type === 'strategy' ? s.id === own.strategyId : s.id === own.symbol),
          );
          const before = orderScopes.map((scope) => measures(scope, own));
          const held = own.quantity;
          const signed = action.side === 'buy' ? action.quantity : -action.quantity;
          own.quantity = held + signed;
          cash -= signed * price;
          own.orderTimes.push(time);
          const reducing =
            held !== 0 &&
            Math.abs(own.quantity) < Math.abs(held) - 1e-12 &&
            (Math.abs(own.quantity) < 1e-12 || Math.sign(own.quantity) === Math.sign(held));

          // A fill at the reference price moves no equity.
          expect(Math.abs(equity() - equityBefore)).toBeLessThan(tolerance(equityBefore));
          if (order.reduceOnly) expect(reducing).toBe(true);
          const states = orderScopes.map((s) => snapshot.states[scopeKey(s)]!.base);
          const strictest = Math.max(...states.map(strictness));
          if (scenario.killSwitch || strictest === strictness('HALTED'))
            expect(order.reduceOnly && reducing).toBe(true);
          if (strictest === strictness('REDUCING')) expect(reducing).toBe(true);

          orderScopes.forEach((scope, i) => {
            const limits = snapshot.limits[scopeKey(scope)]!;
            const was = before[i]!;
            const now = measures(scope, own);
            const kept = (after: number, prior: number, bound: number) =>
              after <= bound + tolerance(bound) || after <= prior + tolerance(prior);
            const where = `${scopeKey(scope)} after ${JSON.stringify(order)}`;
            if (!reducing) {
              const notional = order.quantity * (order.limitPrice ?? price);
              if (limits.maxOrderNotional !== null)
                expect(notional, where).toBeLessThanOrEqual(
                  limits.maxOrderNotional + tolerance(limits.maxOrderNotional),
                );
              if (limits.orderRate !== null) {
                const from = time - limits.orderRate.windowMs;
                const inWindow = books
                  .filter((b) => inScope(b, scope))
                  .flatMap((b) => b.orderTimes)
                  .filter((t) => t > from && t <= time).length;
                expect(inWindow, where).toBeLessThanOrEqual(limits.orderRate.maxOrders);
              }
            }
            const e = Math.max(equityBefore, 0);
            if (limits.maxPositionNotional !== null)
              expect(kept(now.position, was.position, limits.maxPositionNotional), where).toBe(
                true,
              );
            if (limits.maxPositionShareOfEquity !== null)
              expect(
                kept(now.position, was.position, limits.maxPositionShareOfEquity * e),
                where,
              ).toBe(true);
            if (limits.maxGrossExposure !== null)
              expect(kept(now.gross, was.gross, limits.maxGrossExposure), where).toBe(true);
            if (limits.maxLeverage !== null)
              expect(kept(now.gross, was.gross, limits.maxLeverage * e), where).toBe(true);
          });
        }
      }),
      { numRuns: 300 },
    );
    // The property is not vacuous: orders were both accepted and denied.
    expect(accepted).toBeGreaterThan(300);
    expect(deniedCount).toBeGreaterThan(1000);
  });
});
