import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ZodType } from 'zod';

/** A route whose body is absent or optional: its schema declares none, or accepts none. */
function bodyOptional(request: FastifyRequest): boolean {
  const schema: unknown = request.routeOptions.schema?.body;
  return schema === undefined || (schema instanceof ZodType && schema.safeParse(undefined).success);
}

/**
 * Many HTTP clients send `content-type: application/json` on every request, bodies or not. An
 * empty JSON body therefore counts as no body: a command that takes none (submit, start-paper…)
 * or an optional one (approve) accepts it; one that needs a body still answers 400 `EMPTY_BODY`.
 * Anything else is Fastify's own JSON parser (prototype-poisoning protection included).
 */
export function acceptEmptyJsonBodies(fastify: FastifyInstance): void {
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string, done) => {
      if (body.length === 0 && bodyOptional(request)) {
        done(null, undefined);
        return;
      }
      void json(request, body, done);
    },
  );
}
