/**
 * The paper engine's planning step (engine.ts): the configuration the strategies, the applied
 * allocation and the automation policy ask for now, and how a new configuration takes over the
 * state of the one before; and how a recorded configuration reads back. Its output is recorded in
 * the write-ahead log as it is built here, so the order of its fields is part of the record.
 */
import { capabilityOff, type EngineAutomation } from '../capabilities/engine.js';
import type { Instrument } from '../market/types.js';
import type { BookConfig, EngineState } from '../trading/stepper.js';
import { DEFAULT_VENUE_COSTS } from '../trading/venue.js';
import { bookAllocation, type AppliedAllocation } from './allocation.js';
import type { EngineOptions, PortfolioConfig, StrategyBook } from './engine-ports.js';

export const sameJson = (a: unknown, b: unknown): boolean =>
  JSON.stringify(a) === JSON.stringify(b);
export const keyOf = (strategyId: string, symbol: string): string => `${strategyId}|${symbol}`;

/**
 * What a recorded configuration without them meant: the venue's costs were the code's defaults of
 * then (not recorded), and the books' orders were named per strategy. Fixed here, so that a later
 * change of the defaults never changes the replay of an old record.
 */
const BEFORE_RECORDED: Required<Pick<PortfolioConfig, 'venue' | 'clientOrderIds'>> = {
  venue: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
  clientOrderIds: 'strategy',
};

/** A configuration as recorded (write-ahead log, snapshot), with what older records left out. */
export const asRecorded = (config: PortfolioConfig): PortfolioConfig => ({
  ...config,
  venue: config.venue ?? BEFORE_RECORDED.venue,
  clientOrderIds: config.clientOrderIds ?? BEFORE_RECORDED.clientOrderIds,
});

export type PlanOptions = Pick<
  EngineOptions,
  | 'portfolioId'
  | 'timeframe'
  | 'currency'
  | 'initialCash'
  | 'candles'
  | 'strategies'
  | 'allocations'
  | 'automation'
  | 'costs'
>;

/**
 * The configuration the strategies ask for now, given the engine's current configuration and
 * state; undefined while there is nothing to trade. The current one itself when nothing changed.
 */
export async function planConfig(
  options: PlanOptions,
  current: PortfolioConfig | undefined,
  state: EngineState | undefined,
): Promise<PortfolioConfig | undefined> {
  const { timeframe, initialCash } = options;
  const strategies = await options.strategies.strategies(timeframe);
  const applied = await options.allocations?.current(options.portfolioId);
  const switches = await options.automation?.switches();
  const sizingAsked = applied?.sizing.enabled === true;
  const sizingOff = sizingAsked && switches?.balanceSizing === false;
  const allocation = sizingAsked && !sizingOff ? applied : undefined;
  const held = heldBooks(current, state);
  const wanted = wantedBooks(strategies, held, allocation, initialCash);
  // Books that disappeared from the read model but still hold something stay, disabled.
  for (const book of current?.books ?? []) {
    const key = keyOf(book.strategyId, book.symbol);
    if (!wanted.has(key) && held.has(key))
      wanted.set(key, {
        ...book,
        enabled: false,
        // Back from an allocation (weight 0) to capital-based sizing: a book needs a share.
        ...(allocation || book.allocation > 0 ? {} : { allocation: 1e-6 }),
      });
  }
  if (wanted.size === 0 && !current) return undefined;
  const symbols = [...new Set([...wanted.values()].map((book) => book.symbol))].sort();
  // Only instruments quoted in the portfolio's currency can be booked in its account.
  const instruments = (await options.candles.instruments(symbols)).filter(
    (instrument) => instrument.quote === options.currency,
  );
  const books = orderedBooks(current, wanted, instruments);
  const config: PortfolioConfig = {
    portfolioId: options.portfolioId,
    currency: options.currency,
    initialCash: current?.initialCash ?? initialCash,
    timeframe,
    instruments: instruments.filter((instrument) =>
      books.some((book) => book.symbol === instrument.symbol),
    ),
    books,
    ...(allocation ? { sizing: { band: allocation.sizing.band } } : {}),
    venue: { ...(options.costs ?? DEFAULT_VENUE_COSTS) },
    clientOrderIds: 'book',
    ...(switches ? { automation: automationOf(switches, sizingOff) } : {}),
  };
  return sameJson(config, current) ? current : config;
}

const automationOf = (
  switches: EngineAutomation,
  sizingOff: boolean,
): NonNullable<PortfolioConfig['automation']> => ({
  autoExits: switches.autoExits,
  dynamicExits: switches.dynamicExits,
  sizingHeld: sizingOff ? capabilityOff('balance_sizing') : null,
});

/** The books of the current configuration that hold a position or an open order. */
function heldBooks(
  current: PortfolioConfig | undefined,
  state: EngineState | undefined,
): Set<string> {
  const held = new Set<string>();
  if (!current || !state) return held;
  current.books.forEach((book, index) => {
    const position = state.account.positions[index];
    const open = state.venue.open.some(
      (order) =>
        order.request.strategyId === book.strategyId && order.request.symbol === book.symbol,
    );
    if ((position && position.quantity !== 0) || open)
      held.add(keyOf(book.strategyId, book.symbol));
  });
  return held;
}

/** A book per symbol of each strategy that trades (paper, live), is paused, or still holds. */
function wantedBooks(
  strategies: readonly StrategyBook[],
  held: ReadonlySet<string>,
  allocation: AppliedAllocation | undefined,
  initialCash: number,
): Map<string, BookConfig> {
  const wanted = new Map<string, BookConfig>();
  for (const strategy of strategies) {
    const enabled = strategy.status === 'paper' || strategy.status === 'live';
    for (const symbol of strategy.symbols) {
      const key = keyOf(strategy.strategyId, symbol);
      if (!enabled && strategy.status !== 'paused' && !held.has(key)) continue;
      wanted.set(key, {
        strategyId: strategy.strategyId,
        symbol,
        kind: strategy.kind,
        parameters: strategy.parameters,
        ...(allocation
          ? {
              allocation: bookAllocation(allocation, strategy.strategyId, strategy.symbols.length),
              capital: strategy.capital,
            }
          : { allocation: Math.min(1, Math.max(strategy.capital / initialCash, 1e-6)) }),
        enabled,
      });
    }
  }
  return wanted;
}

/** Existing books keep their order; new ones with a tradable instrument follow, sorted. */
function orderedBooks(
  current: PortfolioConfig | undefined,
  wanted: Map<string, BookConfig>,
  instruments: readonly Instrument[],
): BookConfig[] {
  const tradable = new Set(instruments.map((instrument) => instrument.symbol));
  const books: BookConfig[] = [];
  for (const book of current?.books ?? []) {
    const next = wanted.get(keyOf(book.strategyId, book.symbol));
    if (next) books.push(next);
    wanted.delete(keyOf(book.strategyId, book.symbol));
  }
  books.push(
    ...[...wanted.values()]
      .filter((book) => tradable.has(book.symbol))
      .sort((a, b) => keyOf(a.strategyId, a.symbol).localeCompare(keyOf(b.strategyId, b.symbol))),
  );
  return books;
}

/**
 * The state of a new configuration's Stepper (`next`, fresh) given the one before: the account,
 * the venue and the marks carry over, each kept book its position, and its signal state while its
 * kind and parameters are the same (else only its target and order counters).
 */
export function carryOver(
  next: EngineState,
  config: PortfolioConfig,
  previous: EngineState,
  old: PortfolioConfig,
): void {
  next.bars = previous.bars;
  next.account.cash = previous.account.cash;
  next.account.feesPaid = previous.account.feesPaid;
  next.venue = previous.venue;
  next.marks = previous.marks;
  next.lastOpenTime = previous.lastOpenTime;
  const before = new Map(
    old.books.map((book, index) => [keyOf(book.strategyId, book.symbol), index]),
  );
  config.books.forEach((book, index) => {
    const was = before.get(keyOf(book.strategyId, book.symbol));
    if (was === undefined) return;
    const position = previous.account.positions[was];
    const bookState = previous.books[was];
    const oldBook = old.books[was];
    if (position) next.account.positions[index] = position;
    const fresh = next.books[index];
    if (!bookState || !fresh || !oldBook) return;
    const sameSignal = oldBook.kind === book.kind && sameJson(oldBook.parameters, book.parameters);
    next.books[index] = sameSignal
      ? bookState
      : {
          ...fresh,
          target: bookState.target,
          orderBar: bookState.orderBar,
          ordersOnBar: bookState.ordersOnBar,
        };
  });
}
