import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
import { toError } from '../core/errors.js';

/**
 * The security headers helmet chooses for `options`, worked out once. Our options are static (no
 * CSP nonces, nothing per request), so every answer gets the same headers; @fastify/helmet would
 * build a new helmet middleware for every request, which halved the throughput of a cached read.
 */
export function helmetHeaders(options: Readonly<HelmetOptions> = {}): Record<string, string> {
  const request = new IncomingMessage(new Socket());
  const response = new ServerResponse(request);
  let failure: unknown;
  helmet({ ...options })(request, response, (error?: unknown) => {
    failure = error;
  });
  if (failure !== undefined) throw toError(failure);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.getHeaders())) {
    if (value !== undefined)
      headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  if (Object.keys(headers).length === 0) throw new Error('helmet set no header');
  return headers;
}

/** helmet's headers on every answer, errors and 404s included. */
async function securityHeadersPlugin(
  fastify: FastifyInstance,
  options: { helmet?: HelmetOptions },
): Promise<void> {
  const headers = helmetHeaders(options.helmet);
  fastify.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
  });
}

export const securityHeaders = fp(securityHeadersPlugin, { name: 'qcat-security-headers' });
