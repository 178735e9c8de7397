import type pg from 'pg';
import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { EliminationQueries } from '../../projections/elimination-queries.js';
import type { EliminationReads } from './manager.js';
import { shadowEquity } from './shadow.js';

/** Elimination's reads in a running QCAT: the read models and the market data store. */
export function eliminationReads(deps: {
  pool: pg.Pool;
  market: MarketDataStore;
}): EliminationReads {
  const queries = new EliminationQueries(deps.pool);
  return {
    strategies: () => queries.strategies(),
    openPositions: (strategyId) => queries.openPositions(strategyId),
    equity: (strategy, from, to) => shadowEquity(deps.market, strategy, from, to),
  };
}
