import type pg from 'pg';
import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import type { Timeframe } from '../../core/strategies/kinds.js';
import { latestRanking } from '../../projections/hot-symbols.js';
import type { NewStrategiesReads } from './manager.js';

/**
 * Capability 8's reads in a running QCAT. The symbols are the latest hourly ranking's
 * recommendations, best first: the approval of recommendations onto a tradable list is not in
 * this release (docs/automation.md says so); every strategy created still needs a risk
 * officer's approval before it trades.
 */
export function newStrategiesReads(deps: {
  pool: pg.Pool;
  market: MarketDataStore;
}): NewStrategiesReads {
  return {
    symbols: async () => {
      const ranking = (await latestRanking(deps.pool))?.ranking as
        { recommended?: unknown } | undefined;
      const recommended = ranking?.recommended;
      return Array.isArray(recommended)
        ? recommended.filter((s): s is string => typeof s === 'string')
        : [];
    },
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
