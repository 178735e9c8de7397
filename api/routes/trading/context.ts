import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Runtime } from '../../../ops/runtime.js';
import { TradingQueries } from '../../../projections/trading-queries.js';
import { StrategyQueries } from '../../../projections/strategy-queries.js';
export type ZodFastify = Parameters<FastifyPluginAsyncZod>[0];

/** What the trading routes share: the read models they query. */
export interface TradingContext {
  runtime: Runtime;
  queries: { trading: TradingQueries; strategies: StrategyQueries };
}

export const tradingContext = (runtime: Runtime): TradingContext => ({
  runtime,
  queries: {
    trading: new TradingQueries(runtime.pool),
    strategies: new StrategyQueries(runtime.pool),
  },
});
