import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PERMISSIONS, allows, isPermission, type Permission } from '../../core/access/roles.js';
import { toError } from '../../core/errors.js';
import { sendProblem } from '../problem.js';
import type { Authenticator, Principal } from './authenticator.js';
import { FailureCounter, bearer } from './failure-counter.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs; `public` for health, metrics and the API docs. */
    permission?: Permission | 'public';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** Every route with the permission it declared, for tests and docs. */
    qcatRoutes: RouteDeclaration[];
  }
}

export interface RouteDeclaration {
  method: string;
  url: string;
  permission: Permission | 'public';
}

export interface AuthOptions {
  authenticator: Authenticator;
  /** Failed authentications allowed per client address and minute before 429. */
  failuresPerMinute: number;
  /** The count shared with the WebSocket feed (and other processes through Redis). */
  failures?: FailureCounter;
  /** Routes under these prefixes are public (plugins such as the API docs). */
  publicPrefixes: readonly string[];
}

/**
 * Every route declares the permission it needs (`config.permission`); one without is refused at
 * start-up. Requests carry an API key as a bearer token; the matrix in core/access/roles.ts decides.
 */
async function authPlugin(fastify: FastifyInstance, options: AuthOptions): Promise<void> {
  const failures = options.failures ?? new FailureCounter(options.failuresPerMinute);
  fastify.decorateRequest('principal', null);
  recordDeclarations(fastify, options.publicPrefixes);

  // A callback hook: a token verified moments ago (the usual case) costs no promise. A request
  // answered here does not call `done`, so nothing after it runs.
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    const permission = request.routeOptions.config.permission;
    if (permission === 'public' || permission === undefined) {
      done();
      return;
    }
    const token = bearer(request);
    // A key verified moments ago goes on without a promise, from any address: a lockout is for
    // guessers, not for the keys that work.
    const known = token ? options.authenticator.known(token) : undefined;
    if (known) {
      if (admit(request, reply, permission, known)) done();
      return;
    }
    authenticate(request, reply, { permission, token, failures, options })
      .then((admitted) => {
        if (admitted) done();
      })
      .catch((error: unknown) => {
        done(toError(error));
      });
  });
}

/** Keeps `qcatRoutes`: every route with its permission; refuses at start-up one without. */
function recordDeclarations(fastify: FastifyInstance, publicPrefixes: readonly string[]): void {
  const routes: RouteDeclaration[] = [];
  fastify.decorate('qcatRoutes', routes);
  const declare = (
    method: string | string[],
    url: string,
    permission: Permission | 'public',
  ): void => {
    for (const one of Array.isArray(method) ? method : [method]) {
      if (one !== 'HEAD') routes.push({ method: one, url, permission });
    }
  };

  fastify.addHook('onRoute', (route) => {
    if (publicPrefixes.some((prefix) => route.url.startsWith(prefix))) {
      route.config = { ...route.config, permission: 'public' };
      declare(route.method, route.url, 'public');
      return;
    }
    const permission = route.config?.permission;
    if (permission !== 'public' && !isPermission(permission)) {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no permission (config.permission)`,
      );
    }
    declare(route.method, route.url, permission);
  });
}

/**
 * A token not verified moments ago: the address's failures first, then the key itself. Answers
 * the request when it may not go on; true when it may.
 */
async function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  {
    permission,
    token,
    failures,
    options,
  }: {
    permission: Permission;
    token: string | null;
    failures: FailureCounter;
    options: AuthOptions;
  },
): Promise<boolean> {
  if (await failures.refused(request.ip, token)) {
    void sendProblem(request, reply.header('retry-after', '60'), {
      status: 429,
      code: 'TOO_MANY_FAILED_AUTHENTICATIONS',
      detail: 'too many failed authentications from this address; wait a minute',
    });
    return false;
  }
  if (token === null) {
    void sendProblem(request, reply.header('www-authenticate', 'Bearer'), {
      status: 401,
      code: 'AUTHENTICATION_REQUIRED',
      detail: 'send an API key as "Authorization: Bearer <key>"',
    });
    return false;
  }
  const principal = await options.authenticator.authenticate(token);
  if (principal) await failures.succeeded(token);
  else await failures.record(request.ip);
  return admit(request, reply, permission, principal);
}

/** Answers the request if the principal may not go on; true when it may. */
function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  permission: Permission,
  principal: Principal | null,
): boolean {
  if (!principal) {
    void sendProblem(request, reply.header('www-authenticate', 'Bearer error="invalid_token"'), {
      status: 401,
      code: 'INVALID_API_KEY',
      detail: 'the API key is unknown, revoked or malformed',
    });
    return false;
  }
  request.principal = principal;
  if (!allows(principal.role, permission)) {
    void sendProblem(request, reply, {
      status: 403,
      code: 'FORBIDDEN',
      detail: `role '${principal.role}' lacks permission '${permission}' (${PERMISSIONS[permission].description})`,
    });
    return false;
  }
  return true;
}

export const auth = fp(authPlugin, { name: 'qcat-auth' });
