import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../monitoring/metrics.js';
import type { ProjectionService } from '../projections/projection-service.js';
import type { ReadModelVersion, ReadModelWatch } from '../projections/read-model-watch.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The projection whose read model this GET route answers from, and from nothing else but
     * its URL: not the caller, not the clock, no other read model or store. Its 200 answers are
     * then cached until that read model changes (ADR 009). The route may set no header but
     * content-type and etag on a 200.
     */
    readModel?: string;
  }
  interface FastifyRequest {
    /** The read model's version when this request looked in the cache; null when it did not. */
    readCacheVersion: ReadModelVersion | null;
  }
}

interface Entry {
  body: Buffer;
  contentType: string;
  etag: string | undefined;
  version: ReadModelVersion;
}

export interface ReadCacheOptions {
  watch: ReadModelWatch;
  /** Where this process's own runners are: ahead of the watch until their notice arrives. */
  projections: Pick<ProjectionService, 'localCheckpoint'>;
  /** Bytes of bodies kept at most; 0 turns the cache off. */
  maxBytes: number;
  metrics: Metrics;
}

/** Answers larger than this share of the cache are never kept. */
const LARGEST_ENTRY_SHARE = 8;

/**
 * A per-process cache of whole answers of the routes that declare `config.readModel`, keyed by
 * the raw URL and valid while the read model's version (ReadModelWatch) is the one the answer was
 * read under. Authentication, permission and rate limit still run for every request; a hit
 * replaces validation (the URL was valid when its answer was stored) and the handler (its SQL
 * and serialisation). A hit needs the version to be at or past `minPosition`, and past what this
 * process's own projection runner has committed (its notice may still be on its way).
 */
async function readCachePlugin(fastify: FastifyInstance, options: ReadCacheOptions): Promise<void> {
  const { watch, metrics } = options;
  fastify.decorateRequest('readCacheVersion', null);
  if (options.maxBytes === 0) return;
  const cache = new LRUCache<string, Entry>({
    maxSize: options.maxBytes,
    maxEntrySize: Math.floor(options.maxBytes / LARGEST_ENTRY_SHARE),
    sizeCalculation: (entry) => entry.body.length + 200,
  });
  const hits = metrics.readCacheLookups.labels('hit');
  const misses = metrics.readCacheLookups.labels('miss');
  const bypasses = metrics.readCacheLookups.labels('bypass');
  metrics.readCacheSize = () => cache.calculatedSize;

  /**
   * The route's last onRequest hook: after authentication, the permission check and the rate
   * limit (hooks of the app, or added to the route before this), before parsing and validation.
   * A hit skips those, and the handler: its URL was valid when the answer was stored.
   */
  const lookup = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const model = request.routeOptions.config.readModel;
    if (model === undefined || request.method !== 'GET') {
      done();
      return;
    }
    const version = watch.version(model);
    if (!version) {
      bypasses.inc();
      done();
      return;
    }
    request.readCacheVersion = version;
    const entry = cache.get(request.url);
    // Not validated yet: a malformed one is a miss, and validation answers it.
    const minPosition = (request.query as { minPosition?: unknown } | undefined)?.minPosition;
    // This process's runner committed past the version and its notice is on its way: a request
    // that follows an in-process wait (a command's answer) must not get the answer from before.
    const local = options.projections.localCheckpoint(model);
    if (
      entry?.version !== version ||
      (local !== undefined && local > version.checkpoint) ||
      (minPosition !== undefined &&
        (typeof minPosition !== 'string' ||
          !/^\d{1,19}$/.test(minPosition) ||
          BigInt(minPosition) > version.checkpoint))
    ) {
      misses.inc();
      void reply.header('x-qcat-read-cache', 'miss');
      done();
      return;
    }
    hits.inc();
    void reply.header('x-qcat-read-cache', 'hit').header('content-type', entry.contentType);
    if (entry.etag !== undefined) void reply.header('etag', entry.etag);
    // Answered here: the remaining hooks and the handler do not run (done is not called).
    void reply.send(entry.body);
  };

  const store = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: null, payload: unknown) => void,
  ): void => {
    const version = request.readCacheVersion;
    if (
      version !== null &&
      reply.statusCode === 200 &&
      typeof payload === 'string' &&
      reply.getHeader('x-qcat-read-cache') === 'miss' &&
      watch.version(version.name) === version
    ) {
      const etag = reply.getHeader('etag');
      cache.set(request.url, {
        // Encoded once: a hit sends the bytes as they are.
        body: Buffer.from(payload),
        contentType: String(reply.getHeader('content-type') ?? 'application/json; charset=utf-8'),
        etag: typeof etag === 'string' ? etag : undefined,
        version,
      });
    }
    done(null, payload);
  };

  // Only the routes that declare a read model pay for the hooks.
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.readModel === undefined) return;
    if (route.method !== 'GET' && !(Array.isArray(route.method) && route.method.includes('GET')))
      return;
    route.onRequest = [...asArray(route.onRequest), lookup];
    route.onSend = [...asArray(route.onSend), store];
  });
}

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export const readCache = fp(readCachePlugin, { name: 'qcat-read-cache' });
