import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Runtime } from '../../ops/runtime.js';
import { sendProblem } from '../problem.js';

const check = z.object({ name: z.string(), ok: z.boolean(), detail: z.string() });

/** Liveness (the process answers) and readiness (everything it depends on answers, lag is low). */
export const healthRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  fastify.get(
    '/health/live',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    () => ({ status: 'ok' as const }),
  );

  const ready = async (): Promise<{
    ok: boolean;
    checks: z.infer<typeof check>[];
    headPosition: string;
  }> => {
    const checks: z.infer<typeof check>[] = [];
    const attempt = async (name: string, probe: () => Promise<string>): Promise<void> => {
      try {
        checks.push({ name, ok: true, detail: await probe() });
      } catch {
        checks.push({ name, ok: false, detail: 'does not answer' });
      }
    };
    let head = 0n;
    await attempt('eventstore', async () => {
      head = await runtime.eventStore.headPosition();
      return `head position ${head.toString()}`;
    });
    await attempt('postgresql', async () => {
      await runtime.pool.query('SELECT 1');
      return 'answers';
    });
    const redis = runtime.redis;
    if (redis) {
      await attempt('redis', async () => {
        await redis.ping();
        return 'answers';
      });
    }
    await attempt('projections', async () => {
      // Read models only: a process manager behind (ADR 010) does not make answers stale.
      const lagging = (await runtime.projections.status()).filter(
        (status) =>
          status.kind !== 'process' &&
          (status.state === 'stopped' || status.lag > BigInt(runtime.config.READY_MAX_LAG)),
      );
      if (lagging.length > 0) throw new Error('lagging');
      return 'within lag limit';
    });
    const projections = checks.find((c) => c.name === 'projections');
    if (projections && !projections.ok)
      projections.detail = `stopped, or lag above ${runtime.config.READY_MAX_LAG}`;
    return { ok: checks.every((c) => c.ok), checks, headPosition: head.toString() };
  };

  const readyBody = z.object({
    status: z.enum(['ok', 'unavailable']),
    headPosition: z.string(),
    checks: z.array(check),
  });
  fastify.get(
    '/health/ready',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], response: { 200: readyBody, 503: readyBody } },
    },
    async (_request, reply) => {
      const result = await ready();
      return reply.code(result.ok ? 200 : 503).send({
        status: result.ok ? 'ok' : 'unavailable',
        headPosition: result.headPosition,
        checks: result.checks,
      });
    },
  );

  // Kept for the quick start and simple probes: ready's verdict in one line.
  fastify.get(
    '/health',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['health'],
        response: {
          200: z.object({
            status: z.literal('ok'),
            eventStore: z.string(),
            headPosition: z.string(),
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await ready();
      if (!result.ok) {
        const failing = result.checks.filter((c) => !c.ok).map((c) => c.name);
        return sendProblem(request, reply, {
          status: 503,
          code: 'UNAVAILABLE',
          detail: `failing: ${failing.join(', ')}`,
        });
      }
      return {
        status: 'ok' as const,
        eventStore: runtime.config.EVENT_STORE,
        headPosition: result.headPosition,
      };
    },
  );
};
