import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { sendProblem } from './problem.js';

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

/**
 * The web console (docs/console.md, ADR 023): static files under /console/, public like /docs
 * (the page holds no data; every call it makes presents the user's API key). Without a build it
 * says how to make one instead of a bare 404.
 */
export async function consoleRoutes(fastify: FastifyInstance): Promise<void> {
  const root = consoleDirectory();
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
