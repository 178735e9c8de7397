import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { StrategyRouteServices } from '../services.js';
import {
  approvalRoutes,
  createRoute,
  editRoutes,
  pauseResumeRetireRoutes,
} from './strategies/commands.js';
import { strategyContext } from './strategies/context.js';
import {
  detailRoute,
  historyRoute,
  kindsRoute,
  listRoutes,
  parameterVersionsRoute,
} from './strategies/reads.js';

/**
 * Strategies: the lifecycle's commands and the read models' queries (docs/user-guide.md). Routes
 * are registered in this order, which is openapi.json's.
 */
export const strategyRoutes: FastifyPluginAsyncZod<{ runtime: StrategyRouteServices }> = async (
  fastify,
  { runtime },
) => {
  const context = strategyContext(runtime);
  kindsRoute(fastify, context);
  listRoutes(fastify, context);
  createRoute(fastify, context);
  detailRoute(fastify, context);
  editRoutes(fastify, context);
  approvalRoutes(fastify, context);
  pauseResumeRetireRoutes(fastify, context);
  historyRoute(fastify, context);
  parameterVersionsRoute(fastify, context);
};
