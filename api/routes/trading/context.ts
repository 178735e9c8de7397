import type { ZodFastify } from '../conventions.js';
import type { ApiServices } from '../../services.js';
import { TradingQueries } from '../../../projections/trading-queries.js';
import { StrategyQueries } from '../../../projections/strategy-queries.js';
export type { ZodFastify };

/** What the trading routes share: the read models they query. */
export interface TradingContext {
  runtime: Pick<ApiServices, 'commands' | 'pool' | 'projections'>;
  queries: { trading: TradingQueries; strategies: StrategyQueries };
}

export const tradingContext = (
  runtime: Pick<ApiServices, 'commands' | 'pool' | 'projections'>,
): TradingContext => ({
  runtime,
  queries: {
    trading: new TradingQueries(runtime.pool),
    strategies: new StrategyQueries(runtime.pool),
  },
});
