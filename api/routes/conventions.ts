import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { CommandResult } from '../../core/commands/idempotency.js';
import type { ProjectionService } from '../../projections/projection-service.js';
import { HttpProblem } from '../problem.js';

/** Positions and revisions travel as decimal strings: JSON numbers cannot hold every bigint. */
export const positionString = z
  .string()
  .regex(/^\d{1,19}$/, 'expected a position: a whole number as a string');

/** What every command answers: where it wrote, so the client can read its own write. */
export const commandResultSchema = z.object({
  streamId: z.string(),
  revision: z
    .string()
    .describe('revision of the stream after the command; send it back as If-Match'),
  position: z
    .string()
    .describe('global position written; pass it as minPosition to read your write'),
  eventCount: z.number().int(),
});

export function commandAnswer(
  reply: FastifyReply,
  result: CommandResult,
): z.infer<typeof commandResultSchema> {
  void reply.header('etag', `"${result.nextExpectedRevision.toString()}"`);
  return {
    streamId: result.streamId,
    revision: result.nextExpectedRevision.toString(),
    position: result.position.toString(),
    eventCount: result.eventCount,
  };
}

/** `minPosition`: wait briefly until the read model has applied it; else 202 with Retry-After. */
export async function awaitPosition(
  projections: ProjectionService,
  projection: string,
  minPosition: string | undefined,
  reply: FastifyReply,
): Promise<boolean> {
  if (minPosition === undefined) return true;
  if (await projections.waitFor(projection, BigInt(minPosition), 2000)) return true;
  void reply.header('retry-after', '1');
  throw new HttpProblem(
    202,
    'PROJECTION_BEHIND',
    `the ${projection} read model has not reached position ${minPosition} yet; retry shortly`,
  );
}
