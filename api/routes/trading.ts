import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiServices } from '../services.js';
import { activityRoutes } from './trading/activity.js';
import { tradingContext } from './trading/context.js';
import { manualOrderRoutes } from './trading/manual-orders.js';
import { portfolioReadRoutes } from './trading/portfolios.js';

/**
 * Trading: orders, fills, trades, positions, portfolios, PnL and manual orders (docs/trading.md).
 * One file per resource under trading/, registered in this order (the order of /openapi.json).
 */
export const tradingRoutes: FastifyPluginAsyncZod<{
  runtime: Pick<ApiServices, 'commands' | 'pool' | 'projections'>;
}> = async (fastify, { runtime }) => {
  const ctx = tradingContext(runtime);
  activityRoutes(fastify, ctx);
  portfolioReadRoutes(fastify, ctx);
  manualOrderRoutes(fastify, ctx);
};
