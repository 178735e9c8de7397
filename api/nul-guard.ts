import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './problem.js';

const NUL = '\u0000';

/**
 * Every path in `value` whose key or string holds U+0000, under `path`. A loop over a stack, not
 * recursion: a body nested thousands deep must get its 400, not overflow the call stack.
 */
function nulPaths(value: unknown, path: string, found: string[]): void {
  const pending: [unknown, string][] = [[value, path]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, at] = next;
    if (typeof item === 'string') {
      if (item.includes(NUL)) found.push(at);
    } else if (Array.isArray(item)) {
      item.forEach((element, index) => pending.push([element, `${at}[${index}]`]));
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, element] of Object.entries(item)) {
        if (key.includes(NUL)) found.push(`${at} (a key)`);
        pending.push([element, `${at}.${key}`]);
      }
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
