import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ping } from '../../core/adapters/postgres/pool.js';
import type { ApiServices } from '../services.js';
import type { ProjectionStatus } from '../../projections/projection.js';
import { sendProblem } from '../problem.js';
import type { ZodFastify } from './conventions.js';

const check = z.object({ name: z.string(), ok: z.boolean(), detail: z.string() });
/** `ok`; `degraded: redis` when only an optional dependency fails (answers 200); `unavailable` (503). */
const readyStatus = z
  .string()
  .regex(/^(ok|unavailable|degraded: [a-z, ]+)$/)
  .describe('ok | degraded: <optional dependencies that fail> | unavailable');

/** Seconds to wait before asking again when not ready (a restart of a dependency, say). */
const RETRY_AFTER = '2';

/** How long one readiness probe may take before it counts as failing. */
const PROBE_TIMEOUT_MS = 2000;

interface Probe {
  name: string;
  /** Set for a dependency QCAT works without (degraded, still ready); the name it is reported as. */
  optional?: string;
  run: () => Promise<string>;
}

/** A probe that answered, but with bad news. */
class Lagging extends Error {}

function within<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error('timed out'));
    }, PROBE_TIMEOUT_MS);
  });
  return Promise.race([work, late]).finally(() => {
    clearTimeout(timer);
  });
}

type HealthServices = Pick<ApiServices, 'config' | 'eventStore' | 'pool' | 'projections' | 'redis'>;

/** What readiness found: its verdict, each probe's answer, the log's head. */
interface Readiness {
  status: string;
  checks: z.infer<typeof check>[];
  headPosition: string;
}

const readyBody = z.object({
  status: readyStatus,
  headPosition: z.string(),
  checks: z.array(check),
});

/**
 * Liveness (the process answers) and readiness (everything it depends on answers, lag is low).
 * Routes are registered in this order, which is openapi.json's.
 */
export const healthRoutes: FastifyPluginAsyncZod<{
  runtime: HealthServices;
}> = async (fastify, { runtime }) => {
  liveRoute(fastify);
  readyRoute(fastify, runtime);
  summaryRoute(fastify, runtime);
};

function liveRoute(fastify: ZodFastify): void {
  fastify.get(
    '/health/live',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    () => ({ status: 'ok' as const }),
  );
}

function readyRoute(fastify: ZodFastify, runtime: HealthServices): void {
  fastify.get(
    '/health/ready',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], response: { 200: readyBody, 503: readyBody } },
    },
    async (_request, reply) => {
      const result = await ready(runtime);
      if (result.status === 'unavailable') void reply.header('retry-after', RETRY_AFTER);
      return reply.code(result.status === 'unavailable' ? 503 : 200).send(result);
    },
  );
}

/** Kept for the quick start and simple probes: ready's verdict in one line. */
function summaryRoute(fastify: ZodFastify, runtime: HealthServices): void {
  fastify.get(
    '/health',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['health'],
        response: {
          200: z.object({
            status: readyStatus,
            eventStore: z.string(),
            headPosition: z.string(),
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await ready(runtime);
      if (result.status === 'unavailable') {
        const failing = result.checks.filter((c) => !c.ok).map((c) => c.name);
        return sendProblem(request, reply.header('retry-after', RETRY_AFTER), {
          status: 503,
          code: 'UNAVAILABLE',
          detail: `failing: ${failing.join(', ')}`,
        });
      }
      return {
        status: result.status,
        eventStore: runtime.config.EVENT_STORE,
        headPosition: result.headPosition,
      };
    },
  );
}

/** Runs every probe; the verdict: unavailable if a required one fails, degraded if optional. */
async function ready(runtime: HealthServices): Promise<Readiness> {
  let head = 0n;
  const statuses = within(runtime.projections.status());
  statuses.catch(() => undefined); // awaited by two probes below
  const probes = probesOf(runtime, statuses, (position) => {
    head = position;
  });
  // At once, and each within a bound: a dependency that hangs must not hang the probe.
  const checks = await Promise.all(
    probes.map(async ({ name, run }) => {
      try {
        return { name, ok: true, detail: await within(run()) };
      } catch (error) {
        return {
          name,
          ok: false,
          detail: error instanceof Lagging ? error.message : 'does not answer',
        };
      }
    }),
  );
  const failing = probes.filter((_probe, index) => !checks[index]?.ok);
  const degraded = [...new Set(failing.map((probe) => probe.optional))];
  const status = degraded.includes(undefined)
    ? 'unavailable'
    : degraded.length > 0
      ? `degraded: ${degraded.join(', ')}`
      : 'ok';
  return { status, checks, headPosition: head.toString() };
}

/** The event store (it reports the head), PostgreSQL, Redis and the projections' lag. */
function probesOf(
  runtime: HealthServices,
  statuses: Promise<ProjectionStatus[]>,
  headAt: (position: bigint) => void,
): Probe[] {
  const redis = runtime.redis;
  const limit = runtime.config.READY_MAX_LAG;
  return [
    {
      name: 'eventstore',
      run: async () => {
        const head = await runtime.eventStore.headPosition();
        headAt(head);
        return `head position ${head.toString()}`;
      },
    },
    {
      name: 'postgresql',
      run: async () => {
        await ping(runtime.pool);
        return 'answers';
      },
    },
    ...(redis
      ? [
          {
            name: 'redis',
            optional: 'redis',
            run: async () => {
              await redis.ping();
              return 'answers';
            },
          },
        ]
      : []),
    {
      name: 'projections',
      run: async () => lagging(await statuses, false, limit),
    },
    ...(redis
      ? [
          {
            name: 'redis_views',
            optional: 'redis',
            run: async () => lagging(await statuses, true, limit),
          },
        ]
      : []),
  ];
}

/**
 * Fails when a projection (a Redis view, or any other) is stopped or further behind than
 * READY_MAX_LAG.
 */
function lagging(
  statuses: readonly ProjectionStatus[],
  redisViews: boolean,
  limit: number,
): string {
  const max = BigInt(limit);
  const behind = statuses
    .filter(
      (status) =>
        // Read models only: a process manager behind (ADR 010) does not make answers stale.
        status.kind !== 'process' &&
        (status.kind === 'redis') === redisViews &&
        (status.state === 'stopped' || status.lag > max),
    )
    .map((status) => status.name);
  if (behind.length > 0)
    throw new Lagging(`stopped, or lag above ${max.toString()}: ${behind.join(', ')}`);
  return 'within lag limit';
}
