import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../monitoring/metrics.js';
import type { ProjectionService } from '../projections/projection-service.js';
import {
  sameRows,
  type ReadModelVersion,
  type ReadModelWatch,
} from '../projections/read-model-watch.js';

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
    /** This request reads an answer others wait for; settled at onSend (or onResponse). */
    readCacheFlight: Flight | null;
  }
}

/** A 200 answer as sent: bytes, content type, ETag. */
interface Answer {
  body: Buffer;
  contentType: string;
  etag: string | undefined;
}

interface Entry extends Answer {
  version: ReadModelVersion;
}

/** A request reading an answer under `version`; its followers wait for `answer`. */
interface Flight {
  version: ReadModelVersion;
  /** Its SQL began after the read model was known to hold this position. */
  reads: bigint;
  answer: Promise<Answer | null>;
  settle(answer: Answer | null): void;
}

/** How long followers wait for a reader before running the route themselves. */
const FLIGHT_TIMEOUT_MS = 10_000;

export interface ReadCacheOptions {
  watch: ReadModelWatch;
  /** What this process knows was committed: ahead of the watch until the notice arrives. */
  projections: Pick<ProjectionService, 'knownCheckpoint'>;
  /** Bytes of bodies kept at most; 0 turns the cache off. */
  maxBytes: number;
  metrics: Metrics;
}

/** The count of one outcome of a lookup. */
type LookupCounter = ReturnType<Metrics['readCacheLookups']['labels']>;

/** Answers larger than this share of the cache are never kept. */
const LARGEST_ENTRY_SHARE = 8;

/**
 * A per-process cache of whole answers of the routes that declare `config.readModel`, keyed by
 * the raw URL and valid while the read model's version (ReadModelWatch) is the one the answer was
 * read under. Authentication, permission and rate limit still run for every request; a hit
 * replaces validation (the URL was valid when its answer was stored) and the handler (its SQL
 * and serialisation). A hit needs the version to be at or past `minPosition`, and at or past what
 * this process knows was committed (its runner's checkpoint, or one a wait read; the notice of it
 * may still be on its way).
 */
async function readCachePlugin(fastify: FastifyInstance, options: ReadCacheOptions): Promise<void> {
  fastify.decorateRequest('readCacheVersion', null);
  fastify.decorateRequest('readCacheFlight', null);
  if (options.maxBytes === 0) return;
  const hooks = new ReadCacheHooks(options);

  // Only the routes that declare a read model pay for the hooks.
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.readModel === undefined) return;
    if (route.method !== 'GET' && !(Array.isArray(route.method) && route.method.includes('GET')))
      return;
    route.onRequest = [...asArray(route.onRequest), hooks.lookup];
    route.onSend = [...asArray(route.onSend), hooks.store];
    route.onResponse = [...asArray(route.onResponse), hooks.release];
  });
}

/**
 * The cache of one app and its three route hooks. The hooks are arrow functions: Fastify calls
 * them with its instance as `this`.
 */
class ReadCacheHooks {
  private readonly watch: ReadModelWatch;
  private readonly projections: ReadCacheOptions['projections'];
  private readonly cache: LRUCache<string, Entry>;
  private readonly hits: LookupCounter;
  private readonly misses: LookupCounter;
  private readonly bypasses: LookupCounter;
  private readonly shared: LookupCounter;

  /**
   * Requests reading an answer now, by URL: others that come for the same answer under the same
   * version wait for it instead of running the same SQL (after each change of a busy read model,
   * one query per URL, not one per waiting connection).
   */
  private readonly flights = new Map<string, Flight>();

  constructor(options: ReadCacheOptions) {
    const { metrics } = options;
    this.watch = options.watch;
    this.projections = options.projections;
    const cache = new LRUCache<string, Entry>({
      maxSize: options.maxBytes,
      maxEntrySize: Math.floor(options.maxBytes / LARGEST_ENTRY_SHARE),
      sizeCalculation: (entry) => entry.body.length + 200,
    });
    this.cache = cache;
    this.hits = metrics.readCacheLookups.labels('hit');
    this.misses = metrics.readCacheLookups.labels('miss');
    this.bypasses = metrics.readCacheLookups.labels('bypass');
    this.shared = metrics.readCacheLookups.labels('shared');
    metrics.readCacheSize = () => cache.calculatedSize;
  }

  /**
   * The route's last onRequest hook: after authentication, the permission check and the rate
   * limit (hooks of the app, or added to the route before this), before parsing and validation.
   * A request answered here (a hit, or a shared answer) skips those and the handler, and does not
   * call `done`: its URL was valid when the answer was read.
   */
  readonly lookup = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const model = request.routeOptions.config.readModel;
    if (model === undefined) {
      done();
      return;
    }
    const version = this.watch.version(model);
    if (!version) {
      this.bypasses.inc();
      done();
      return;
    }
    request.readCacheVersion = version;
    if (asksBeyond(request, version)) {
      this.miss(reply, done);
      return;
    }
    // This process may know of a commit past the version (its own runner's, or one a `waitFor`
    // saw), the notice still on its way: a request that follows such a wait (a command's answer)
    // must not get the answer from before. It needs a fresh reading, or one begun after that.
    const local = this.projections.knownCheckpoint(model);
    const needs = local !== undefined && local > version.checkpoint ? local : version.checkpoint;
    const entry = needs === version.checkpoint ? this.cache.get(request.url) : undefined;
    // Kept while the read model holds the same rows: a checkpoint moved over events it does not
    // handle leaves its answers as they are (ADR 027).
    if (entry && sameRows(entry.version, version)) {
      this.serve(reply, entry, 'hit');
      return;
    }
    const flight = this.flights.get(request.url);
    if (flight?.version === version && flight.reads >= needs) {
      void flight.answer.then((answer) => {
        if (answer) this.serve(reply, answer, 'shared');
        else this.miss(reply, done);
      });
      return;
    }
    request.readCacheFlight = this.takeOff(request.url, version, needs);
    this.miss(reply, done);
  };

  /** onSend: keeps a 200 read under a version that is still current; shares it with followers. */
  readonly store = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: null, payload: unknown) => void,
  ): void => {
    const version = request.readCacheVersion;
    let entry: Entry | null = null;
    if (
      version !== null &&
      reply.statusCode === 200 &&
      typeof payload === 'string' &&
      reply.getHeader('x-qcat-read-cache') === 'miss'
    ) {
      const etag = reply.getHeader('etag');
      entry = {
        // Encoded once: a hit sends the bytes as they are.
        body: Buffer.from(payload),
        contentType: String(reply.getHeader('content-type') ?? 'application/json; charset=utf-8'),
        etag: typeof etag === 'string' ? etag : undefined,
        version,
      };
      if (sameRows(this.watch.version(version.name), version)) this.cache.set(request.url, entry);
    }
    // Followers came while `version` was current: this answer is at least as new as the hit they
    // could have had then, even if the version has moved on since. Without one they run the route.
    request.readCacheFlight?.settle(entry);
    request.readCacheFlight = null;
    done(null, payload);
  };

  /** onResponse: a reader whose answer never went through onSend releases its followers. */
  readonly release = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
    request.readCacheFlight?.settle(null);
    request.readCacheFlight = null;
    done();
  };

  /** A request that reads the answer for `url` now: followers under `version` wait for it. */
  private takeOff(url: string, version: ReadModelVersion, needs: bigint): Flight {
    let resolve: (answer: Answer | null) => void = () => undefined;
    const answer = new Promise<Answer | null>((settle) => {
      resolve = settle;
    });
    const mine: Flight = {
      version,
      reads: needs,
      answer,
      settle: (value) => {
        clearTimeout(timer);
        if (this.flights.get(url) === mine) this.flights.delete(url);
        resolve(value);
      },
    };
    // A reader that never answers (it cannot, but) must not hold its followers forever.
    const timer = setTimeout(() => {
      mine.settle(null);
    }, FLIGHT_TIMEOUT_MS);
    timer.unref();
    this.flights.set(url, mine);
    return mine;
  }

  private serve(reply: FastifyReply, answer: Answer, how: 'hit' | 'shared'): void {
    (how === 'hit' ? this.hits : this.shared).inc();
    void reply.header('x-qcat-read-cache', how).header('content-type', answer.contentType);
    if (answer.etag !== undefined) void reply.header('etag', answer.etag);
    void reply.send(answer.body);
  }

  private miss(reply: FastifyReply, done: () => void): void {
    this.misses.inc();
    void reply.header('x-qcat-read-cache', 'miss');
    done();
  }
}

/**
 * A `minPosition` past the version: the request needs a newer reading. Not validated yet: a
 * malformed one is a miss too, and validation answers it.
 */
function asksBeyond(request: FastifyRequest, version: ReadModelVersion): boolean {
  const minPosition = (request.query as { minPosition?: unknown } | undefined)?.minPosition;
  return (
    minPosition !== undefined &&
    (typeof minPosition !== 'string' ||
      !/^\d{1,19}$/.test(minPosition) ||
      BigInt(minPosition) > version.checkpoint)
  );
}

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export const readCache = fp(readCachePlugin, { name: 'qcat-read-cache' });
