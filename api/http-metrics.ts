import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Counter, Histogram } from 'prom-client';
import fp from 'fastify-plugin';
import type { Metrics } from '../monitoring/metrics.js';
import type { ProjectionService } from '../projections/projection-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    metricsStartedAt: bigint;
  }
}

/**
 * Request rate, latency and in-flight count for every route. Registered before authentication,
 * so that the answers it refuses early (401, 403, 429) are counted and timed too.
 */
async function httpMetricsPlugin(
  fastify: FastifyInstance,
  options: { metrics: Metrics },
): Promise<void> {
  const { metrics } = options;
  fastify.decorateRequest('metricsStartedAt', 0n);
  // A WebSocket upgrade is hijacked and never reaches onResponse: websocket_connections counts it.
  const upgrade = (request: FastifyRequest): boolean =>
    request.headers.upgrade?.toLowerCase() === 'websocket';
  // Labelled children looked up once per method, route and status (prom-client hashes the labels
  // on every call otherwise); callback hooks, no promise per request.
  const counters = new Map<string, Counter.Internal>();
  const durations = new Map<string, Histogram.Internal<'method' | 'route'>>();
  fastify.addHook('onRequest', (request, _reply, done) => {
    request.metricsStartedAt = process.hrtime.bigint();
    if (!upgrade(request)) metrics.httpInFlight.inc();
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    if (!upgrade(request)) metrics.httpInFlight.dec();
    // The route pattern, never the raw URL: bounded label values.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = Number(process.hrtime.bigint() - request.metricsStartedAt) / 1e9;
    const status = String(reply.statusCode);
    const routeKey = `${request.method} ${route}`;
    const countKey = `${routeKey} ${status}`;
    let counter = counters.get(countKey);
    if (!counter) {
      counter = metrics.httpRequests.labels({ method: request.method, route, status });
      counters.set(countKey, counter);
    }
    counter.inc();
    let duration = durations.get(routeKey);
    if (!duration) {
      duration = metrics.httpDuration.labels({ method: request.method, route });
      durations.set(routeKey, duration);
    }
    duration.observe(seconds);
    done();
  });
}

/** `GET /metrics` for Prometheus; projection lag and state are read at each scrape. */
async function metricsEndpointPlugin(
  fastify: FastifyInstance,
  options: { metrics: Metrics; projections: ProjectionService },
): Promise<void> {
  const { metrics } = options;
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
        metrics.projectionParked.set({ projection: status.name }, status.parked);
      }
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}

export const httpMetrics = fp(httpMetricsPlugin, { name: 'qcat-http-metrics' });
export const metricsEndpoint = fp(metricsEndpointPlugin, { name: 'qcat-metrics-endpoint' });
