import type { Candle, Instrument } from '../../core/market/types.js';
import type { Timeframe } from '../../core/strategies/kinds.js';
import { backtest } from '../../core/trading/backtest.js';
import type { EliminationCandidate } from '../../projections/elimination-queries.js';

/** Where the shadow run gets its market data (MarketDataStore). */
export interface ShadowMarket {
  instruments(symbols: readonly string[]): Promise<Instrument[]>;
  candlesAfter(
    timeframe: Timeframe,
    symbols: readonly string[],
    after: number,
    limit: number,
  ): Promise<Candle[]>;
}

const PAGE = 5_000;
/** Capital of a strategy that asked for none. */
const DEFAULT_CAPITAL = 100_000;

/**
 * A strategy's daily equity over [from, to), from a backtest of its current kind, parameters and
 * symbols on the stored candles, with its capital split evenly across its symbols: the same
 * measure whether it trades or is suspended (a suspended strategy earns nothing, so its own PnL
 * cannot tell whether it would have recovered). docs/adr/021. Null without candles or instruments.
 */
export async function shadowEquity(
  market: ShadowMarket,
  strategy: EliminationCandidate,
  from: Date,
  to: Date,
): Promise<{ equity: number[]; days: string[] } | null> {
  const timeframe = strategy.timeframe as Timeframe;
  const instruments = await market.instruments(strategy.symbols);
  const currency = instruments[0]?.quote;
  const traded = instruments.filter((i) => i.quote === currency);
  if (!currency || traded.length === 0) return null;
  const symbols = traded.map((i) => i.symbol);
  const candles: Candle[] = [];
  let after = from.getTime() - 1;
  for (;;) {
    const page = await market.candlesAfter(timeframe, symbols, after, PAGE);
    const inside = page.filter((c) => c.openTime < to.getTime());
    candles.push(...inside);
    if (page.length < PAGE || inside.length < page.length) break;
    after = (page.at(-1) as Candle).openTime;
    // A page may end inside a bar time: take that bar time again, whole.
    while (candles.length > 0 && (candles.at(-1) as Candle).openTime === after) candles.pop();
    after -= 1;
  }
  if (candles.length === 0) return null;
  const initialCash = strategy.capital > 0 ? strategy.capital : DEFAULT_CAPITAL;
  const result = backtest(
    {
      portfolioId: `shadow-${strategy.strategyId}`,
      currency,
      initialCash,
      timeframe,
      instruments: traded,
      books: symbols.map((symbol) => ({
        strategyId: strategy.strategyId,
        symbol,
        kind: strategy.kind,
        parameters: strategy.parameters,
        allocation: 1 / symbols.length,
      })),
    },
    candles,
    { keepEvents: false },
  );
  return {
    equity: [initialCash, ...result.equity.map((e) => e.equity)],
    days: result.equity.map((e) => e.date),
  };
}
