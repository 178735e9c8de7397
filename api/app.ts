import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { ApiServices } from './services.js';
import { ApiKeyService } from './auth/api-key-service.js';
import { Authenticator } from './auth/authenticator.js';
import { auth } from './auth/plugin.js';
import { acceptEmptyJsonBodies } from './empty-body.js';
import { handleError, sendProblem } from './problem.js';
import { FailureCounter } from './auth/failure-counter.js';
import { commandRoutesChecked } from './command-route.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { automationRoutes } from './routes/automation.js';
import { backtestRoutes } from './routes/backtests.js';
import { backupRoutes } from './routes/backups.js';
import { portfolioRoutes } from './routes/portfolios.js';
import { healthRoutes } from './routes/health.js';
import { hotSymbolRoutes } from './routes/hot-symbols.js';
import { keyRoutes } from './routes/keys.js';
import { marketRoutes } from './routes/market.js';
import { optimizationRoutes } from './routes/optimizations.js';
import { projectionRoutes } from './routes/projections.js';
import { riskRoutes } from './routes/risk.js';
import { strategyRoutes } from './routes/strategies.js';
import { tradingRoutes } from './routes/trading.js';
import { httpMetrics, metricsEndpoint } from './http-metrics.js';
import { nulGuard } from './nul-guard.js';
import { readCache } from './read-cache.js';
import { sharedRateLimitStore } from './rate-limit-store.js';
import { securityHeaders } from './security-headers.js';
import { ReadModelWatch } from '../projections/read-model-watch.js';
import { liveFeed } from './ws/plugin.js';
import { consoleRoutes } from './console.js';

export interface AppOptions {
  runtime: ApiServices;
}

/**
 * The QCAT HTTP application as a Fastify plugin; `server.ts` owns the listening instance.
 * Security headers and request metrics first, then auth (its onRoute hook must see every route),
 * limits, docs, the metrics endpoint, the read cache, routes.
 */
async function appPlugin(fastify: FastifyInstance, { runtime }: AppOptions): Promise<void> {
  setCompilersAndHandlers(fastify);
  await registerEarlyGuards(fastify, runtime);
  const { authenticator, failures } = await registerAuth(fastify, runtime);
  await registerRateLimit(fastify, runtime);
  await registerDocs(fastify);
  await fastify.register(metricsEndpoint, {
    metrics: runtime.metrics,
    projections: runtime.projections,
  });
  await registerReadCache(fastify, runtime);
  await fastify.register(liveFeed, {
    eventStore: runtime.eventStore,
    metrics: runtime.metrics,
    authenticator,
    failures,
    failuresPerMinute: runtime.config.AUTH_FAILURES_PER_MINUTE,
  });
  await registerRoutes(fastify, runtime, authenticator);
}

function setCompilersAndHandlers(fastify: FastifyInstance): void {
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  fastify.setErrorHandler(handleError);
  // JSON bodies only: anything else is 415.
  fastify.removeContentTypeParser('text/plain');
  acceptEmptyJsonBodies(fastify);
  fastify.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, {
      status: 404,
      code: 'NOT_FOUND',
      detail: `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
    }),
  );
}

/** Before authentication: answers it refuses early carry the headers and are counted too. */
async function registerEarlyGuards(fastify: FastifyInstance, runtime: ApiServices): Promise<void> {
  const { config } = runtime;
  await fastify.register(securityHeaders);
  await fastify.register(httpMetrics, { metrics: runtime.metrics });
  await fastify.register(nulGuard);
  // CORS headers on every answer to an allowed origin, refusals included (a browser cannot read
  // a 401 without them); its preflight route needs no key.
  if (config.CORS_ORIGINS.length > 0) await fastify.register(cors, { origin: config.CORS_ORIGINS });
}

/**
 * Before every plugin with routes but CORS (whose preflight needs no key): its onRoute hook must
 * see every route, the docs' included. Then the check that every write route is a command route.
 */
async function registerAuth(
  fastify: FastifyInstance,
  runtime: ApiServices,
): Promise<{ authenticator: Authenticator; failures: FailureCounter }> {
  const { config } = runtime;
  const authenticator = new Authenticator(runtime.pool);
  // One count of failed authentications for HTTP and the WebSocket feed, shared through Redis.
  const failures = new FailureCounter(
    config.AUTH_FAILURES_PER_MINUTE,
    runtime.redis ? { redis: runtime.redis, prefix: config.QCAT_REDIS_PREFIX } : undefined,
  );
  await fastify.register(auth, {
    authenticator,
    failures,
    failuresPerMinute: config.AUTH_FAILURES_PER_MINUTE,
    publicPrefixes: ['/docs', '/console'],
  });
  // Its onRoute hook refuses a write route under the API not declared with commandRoute.
  await fastify.register(commandRoutesChecked, { prefix: '/api/v1' });
  return { authenticator, failures };
}

async function registerRateLimit(fastify: FastifyInstance, runtime: ApiServices): Promise<void> {
  const { config } = runtime;
  await fastify.register(rateLimit, {
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: '1 minute',
    // Shared through Redis when there is one, per process while it does not answer.
    ...(runtime.redis
      ? {
          store: sharedRateLimitStore(
            runtime.redis,
            `${config.QCAT_REDIS_PREFIX}ratelimit:`,
            (error) => {
              fastify.log.debug({ err: error }, 'rate limit: Redis does not answer; counting here');
            },
          ),
        }
      : {}),
    errorResponseBuilder: (_request, context) =>
      Object.assign(
        new Error(
          `rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`,
        ),
        {
          statusCode: 429,
          code: 'RATE_LIMITED',
        },
      ),
  });
}

async function registerDocs(fastify: FastifyInstance): Promise<void> {
  await fastify.register(swagger, {
    openapi: {
      info: {
        title: 'QCAT API',
        version: '1',
        description: 'Event-sourced trading core: commands, queries, audit.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'qcat_<keyId>_<secret>' },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await fastify.register(swaggerUi, { routePrefix: '/docs' });
}

/** Before the routes: its onRoute hook adds the cache to those that declare a read model. */
async function registerReadCache(fastify: FastifyInstance, runtime: ApiServices): Promise<void> {
  const { config } = runtime;
  const watch = new ReadModelWatch(runtime.pool, runtime.databaseUrl, (message) => {
    fastify.log.warn(message);
  });
  if (config.READ_CACHE_MB > 0) watch.start();
  fastify.addHook('onClose', () => watch.stop());
  await fastify.register(readCache, {
    watch,
    projections: runtime.projections,
    maxBytes: Math.round(config.READ_CACHE_MB * 1024 * 1024),
    metrics: runtime.metrics,
  });
}

/** The routes, in openapi.json's order: the document itself, health, the console, the API. */
async function registerRoutes(
  fastify: FastifyInstance,
  runtime: ApiServices,
  authenticator: Authenticator,
): Promise<void> {
  const typed = fastify.withTypeProvider<ZodTypeProvider>();
  typed.get('/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, () =>
    fastify.swagger(),
  );
  await typed.register(healthRoutes, { runtime });
  await fastify.register(consoleRoutes);
  await typed.register(
    async (api) => {
      await api.register(auditRoutes, { runtime });
      await api.register(projectionRoutes, { runtime });
      await api.register(backupRoutes, { runtime });
      await api.register(strategyRoutes, { runtime });
      await api.register(approvalRoutes, { runtime });
      await api.register(marketRoutes, { runtime });
      await api.register(backtestRoutes, { runtime });
      await api.register(portfolioRoutes, { runtime });
      await api.register(optimizationRoutes, { runtime });
      await api.register(tradingRoutes, { runtime });
      await api.register(automationRoutes, { runtime });
      await api.register(hotSymbolRoutes, { runtime });
      await api.register(riskRoutes, { runtime });
      await api.register(keyRoutes, {
        runtime,
        keys: new ApiKeyService(runtime.commands),
        authenticator,
      });
    },
    { prefix: '/api/v1' },
  );
}

/** Not encapsulated (fastify-plugin): the app is the whole server, and tests read its decorations. */
export const app = fp(appPlugin, { name: 'qcat-app' });
