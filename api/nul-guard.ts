import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './problem.js';

const NUL = '\u0000';

/** Every path in `value` whose key or string holds U+0000, under `path`. */
function nulPaths(value: unknown, path: string, found: string[]): void {
  if (typeof value === 'string') {
    if (value.includes(NUL)) found.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => {
      nulPaths(item, `${path}[${index}]`, found);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes(NUL)) found.push(`${path} (a key)`);
      nulPaths(item, `${path}.${key}`, found);
    }
  }
}

/**
 * PostgreSQL's text and jsonb cannot hold U+0000: a request carrying it in its query, path or
 * body would fail in SQL as a 500. It is refused first, as a validation error naming each field.
 */
async function nulGuardPlugin(fastify: FastifyInstance): Promise<void> {
  fastify.addHook('preValidation', (request: FastifyRequest, reply: FastifyReply, done) => {
    const found: string[] = [];
    nulPaths(request.params, 'params', found);
    nulPaths(request.query, 'querystring', found);
    nulPaths(request.body, 'body', found);
    if (found.length === 0) {
      done();
      return;
    }
    const errors = found.map((path) => ({
      path,
      message: 'contains the NUL character (U+0000), which is not allowed',
    }));
    void sendProblem(request, reply, {
      status: 400,
      code: 'VALIDATION_FAILED',
      detail: `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      errors,
    });
  });
}

export const nulGuard = fp(nulGuardPlugin, { name: 'qcat-nul-guard' });
