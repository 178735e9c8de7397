import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './problem.js';

const NUL = '\u0000';
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const hasLoneSurrogate = (text: string): boolean => text.search(LONE_SURROGATE) !== -1;

/** What is wrong with a string PostgreSQL cannot store, or null when it can store it. */
function textProblem(text: string): string | null {
  if (text.includes(NUL)) return 'contains the NUL character (U+0000), which is not allowed';
  // A lone UTF-16 surrogate is not Unicode: jsonb refuses its \ud800 escape (22P02).
  if (hasLoneSurrogate(text))
    return 'contains a lone UTF-16 surrogate (not well-formed Unicode), which is not allowed';
  return null;
}

/**
 * Every field in `value` whose key or string PostgreSQL cannot store, under `path`. A loop over a
 * stack, not recursion: a body nested thousands deep must get its 400, not overflow the call stack.
 */
function badText(value: unknown, path: string, found: { path: string; message: string }[]): void {
  const pending: [unknown, string][] = [[value, path]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, at] = next;
    if (typeof item === 'string') {
      const problem = textProblem(item);
      if (problem !== null) found.push({ path: at, message: problem });
    } else if (Array.isArray(item)) {
      item.forEach((element, index) => pending.push([element, `${at}[${index}]`]));
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, element] of Object.entries(item)) {
        const problem = textProblem(key);
        if (problem !== null) found.push({ path: `${at} (a key)`, message: problem });
        pending.push([element, `${at}.${key.replace(LONE_SURROGATE, '\uFFFD')}`]);
      }
    }
  }
}

/**
 * PostgreSQL's text and jsonb cannot hold U+0000 nor a lone surrogate: a request carrying one in
 * its query, path or body would fail in SQL as a 500 (and, in a group commit, fail the appends it
 * shares a transaction with). It is refused first, as a validation error naming each field. So is
 * a JSON body of `null`: a command's body is an object or nothing.
 */
async function nulGuardPlugin(fastify: FastifyInstance): Promise<void> {
  fastify.addHook('preValidation', (request: FastifyRequest, reply: FastifyReply, done) => {
    const errors: { path: string; message: string }[] = [];
    badText(request.params, 'params', errors);
    badText(request.query, 'querystring', errors);
    if (request.body === null)
      errors.push({ path: 'body', message: 'is null; send a JSON object, or no body' });
    badText(request.body, 'body', errors);
    if (errors.length === 0) {
      done();
      return;
    }
    void sendProblem(request, reply, {
      status: 400,
      code: 'VALIDATION_FAILED',
      detail: `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      errors,
    });
  });
}

export const nulGuard = fp(nulGuardPlugin, { name: 'qcat-nul-guard' });
