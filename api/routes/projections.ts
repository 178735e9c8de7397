import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiServices } from '../services.js';
import { HttpProblem } from '../problem.js';

const status = z.object({
  name: z.string(),
  // 'process': a process manager's row in the same registry (ADR 010).
  kind: z.enum(['postgres', 'redis', 'process']),
  state: z.enum(['catching_up', 'running', 'stopped', 'led_elsewhere', 'no_leader']),
  checkpoint: z.string(),
  head: z.string(),
  lag: z.string(),
  leader: z.string().nullable(),
  error: z.object({ position: z.string(), message: z.string(), at: z.string() }).nullable(),
  onPoisonEvent: z
    .enum(['stop', 'park'])
    .describe('what it does with an event it cannot apply (ADR 011)'),
  parked: z.number().int().describe('events parked in qcat_projection_parked'),
  lastParked: z
    .object({ position: z.string(), type: z.string(), error: z.string(), at: z.string() })
    .nullable(),
  rebuilding: z.boolean(),
});

/** Operators' view of the read models: status, and rebuild without downtime. */
export const projectionRoutes: FastifyPluginAsyncZod<{
  runtime: Pick<ApiServices, 'eventStore' | 'projections'>;
}> = async (fastify, { runtime }) => {
  const rebuilding = new Set<string>();

  fastify.get(
    '/projections',
    {
      config: { permission: 'projections:read' },
      schema: {
        tags: ['projections'],
        summary:
          'Every projection: state, checkpoint, lag, leader, last error, events parked (ADR 011)',
        response: { 200: z.array(status) },
      },
    },
    async () =>
      (await runtime.projections.status()).map((s) => ({
        ...s,
        checkpoint: s.checkpoint.toString(),
        head: s.head.toString(),
        lag: s.lag.toString(),
        error: s.error
          ? {
              position: s.error.position.toString(),
              message: s.error.message,
              at: s.error.at.toISOString(),
            }
          : null,
        lastParked: s.lastParked
          ? {
              ...s.lastParked,
              position: s.lastParked.position.toString(),
              at: s.lastParked.at.toISOString(),
            }
          : null,
        rebuilding: rebuilding.has(s.name),
      })),
  );

  fastify.post(
    '/projections/:name/rebuild',
    {
      // Not a command: a rebuild writes no event (it re-reads the log into a shadow copy), and
      // rebuilding twice is harmless; there is no stream for If-Match to guard.
      config: { permission: 'projections:rebuild', command: false },
      schema: {
        tags: ['projections'],
        summary:
          'Rebuild a read model from position 0 beside the live one, then switch (runs in the background)',
        params: z.object({ name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/) }),
        response: { 202: z.object({ name: z.string(), status: z.literal('rebuilding') }) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const target = runtime.projections.target(name);
      if (!target)
        throw new HttpProblem(404, 'UNKNOWN_PROJECTION', `no projection named '${name}'`);
      if (rebuilding.has(name))
        throw new HttpProblem(409, 'REBUILD_RUNNING', `a rebuild of ${name} is already running`);
      rebuilding.add(name);
      const actor = request.principal?.name ?? 'unknown';
      request.log.info({ projection: name, actor }, 'projection rebuild requested');
      target
        .rebuild(runtime.eventStore)
        .then((result) => {
          fastify.log.info(
            { projection: name, ...result, checkpoint: result.checkpoint.toString() },
            'projection rebuilt',
          );
        })
        .catch((error: unknown) => {
          fastify.log.error({ err: error, projection: name }, 'projection rebuild failed');
        })
        .finally(() => rebuilding.delete(name));
      return reply.code(202).send({ name, status: 'rebuilding' as const });
    },
  );
};
