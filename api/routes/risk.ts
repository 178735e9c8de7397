import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiServices } from '../services.js';
import { riskContext } from './risk/context.js';
import { exitRoutes } from './risk/exits.js';
import { historyRoutes } from './risk/history.js';
import { killSwitchRoutes } from './risk/kill-switch.js';
import { limitsRoutes } from './risk/limits.js';
import { overviewRoutes } from './risk/overview.js';
import { stateRoutes } from './risk/states.js';

/**
 * Risk control: limits, trading states, kill switch, triggers, denials, exits (docs/risk.md).
 * One file per resource under risk/, registered in this order (the order of /openapi.json).
 */
export const riskRoutes: FastifyPluginAsyncZod<{
  runtime: Pick<ApiServices, 'commands' | 'eventStore' | 'pool' | 'projections'>;
}> = async (fastify, { runtime }) => {
  const ctx = riskContext(runtime);
  overviewRoutes(fastify, ctx);
  limitsRoutes(fastify, ctx);
  stateRoutes(fastify, ctx);
  killSwitchRoutes(fastify, ctx);
  historyRoutes(fastify, ctx);
  exitRoutes(fastify, ctx);
};
