import type pg from 'pg';
import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import type { Timeframe } from '../../core/strategies/kinds.js';
import { listedSymbols } from '../../projections/hot-symbol-list.js';
import type { NewStrategiesReads } from './manager.js';

/**
 * Capability 8's reads in a running QCAT: the tradable list of hot symbols (its read model,
 * projections/hot-symbol-list.ts; an analyst proposes a recommendation, a risk officer approves
 * it) and the market's candles. Which rows count at the tick is decided by `approvedSymbols`.
 */
export function newStrategiesReads(deps: {
  pool: pg.Pool;
  market: MarketDataStore;
}): NewStrategiesReads {
  return {
    tradableList: () => listedSymbols(deps.pool),
    candleCount: async (symbol, timeframe, from, to) =>
      (
        await deps.market.candlePage({
          symbol,
          timeframe: timeframe as Timeframe,
          from: from.getTime(),
          to: to.getTime(),
          limit: 1,
        })
      ).length,
  };
}
