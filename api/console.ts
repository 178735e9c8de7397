import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { sendProblem } from './problem.js';
import { helmetHeaders } from './security-headers.js';

/**
 * Where `npm run build` writes the console's bundle (console/build.ts): dist/console under the
 * package root, whether this module runs from source (api/) or compiled (dist/api/).
 */
export function consoleDirectory(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = existsSync(join(here, '..', 'package.json'))
    ? join(here, '..')
    : join(here, '../..');
  return join(root, 'dist', 'console');
}

/** The Content-Security-Policy of the console's files. */
export const consolePolicy = (): string => {
  const policy = helmetHeaders({
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  })['content-security-policy'];
  if (policy === undefined) throw new Error('helmet set no content-security-policy');
  return policy;
};

/**
 * The web console (docs/console.md, ADR 023): static files under /console/, public like /docs
 * (the page holds no data; every call it makes presents the user's API key). Without a build it
 * says how to make one instead of a bare 404.
 */
export async function consoleRoutes(fastify: FastifyInstance): Promise<void> {
  const root = consoleDirectory();
  // helmet's policy less `upgrade-insecure-requests`, on the console's answers only: over plain
  // HTTP from another host (http://server:8082/console/) that directive sends the page's own
  // script to https:// and the page stays blank. The console loads nothing but same-origin
  // files, so over TLS nothing changes; script-src stays 'self' (ADR 023).
  const policy = consolePolicy();
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('content-security-policy', policy);
    done(null, payload);
  });
  fastify.get('/console', (_request, reply) => reply.redirect('/console/', 302));
  if (!existsSync(join(root, 'index.html'))) {
    fastify.get('/console/*', (request, reply) =>
      sendProblem(request, reply, {
        status: 404,
        code: 'CONSOLE_NOT_BUILT',
        detail: `the console is not built (no ${root}/index.html): run npm run build`,
      }),
    );
    return;
  }
  await fastify.register(fastifyStatic, { root, prefix: '/console/', index: ['index.html'] });
}
