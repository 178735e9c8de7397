import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from '../monitoring/metrics.js';
import type { ProjectionService } from '../projections/projection-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    metricsStartedAt: bigint;
  }
}

/** Request rate, latency and in-flight count for every route, and `GET /metrics` for Prometheus. */
async function httpMetricsPlugin(
  fastify: FastifyInstance,
  options: { metrics: Metrics; projections: ProjectionService },
): Promise<void> {
  const { metrics } = options;
  fastify.decorateRequest('metricsStartedAt', 0n);
  // A WebSocket upgrade is hijacked and never reaches onResponse: websocket_connections counts it.
  const upgrade = (request: FastifyRequest): boolean =>
    request.headers.upgrade?.toLowerCase() === 'websocket';
  fastify.addHook('onRequest', async (request) => {
    request.metricsStartedAt = process.hrtime.bigint();
    if (!upgrade(request)) metrics.httpInFlight.inc();
  });
  fastify.addHook('onResponse', async (request, reply) => {
    if (!upgrade(request)) metrics.httpInFlight.dec();
    // The route pattern, never the raw URL: bounded label values.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = Number(process.hrtime.bigint() - request.metricsStartedAt) / 1e9;
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, seconds);
  });

  fastify.get(
    '/metrics',
    { config: { permission: 'public' }, schema: { hide: true } },
    async (_request, reply) => {
      for (const status of await options.projections.status()) {
        metrics.projectionLag.set({ projection: status.name }, Number(status.lag));
        metrics.projectionStopped.set(
          { projection: status.name },
          status.state === 'stopped' ? 1 : 0,
        );
      }
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}

export const httpMetrics = fp(httpMetricsPlugin, { name: 'qcat-http-metrics' });
