import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../core/access/roles.js';
import type { ApiServices } from '../services.js';
import { ApiKeyQueries } from '../../projections/api-key-queries.js';
import type { ApiKeyService } from '../auth/api-key-service.js';
import type { Authenticator } from '../auth/authenticator.js';
import { commandAnswer, commandResultSchema, type ZodFastify } from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const keyId = z.object({
  keyId: z.string().regex(/^[a-z0-9]{16}$/, 'expected a 16-character key id'),
});
const keySummary = z.object({
  keyId: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  status: z.enum(['active', 'revoked']),
  issuedAt: z.string(),
  issuedBy: z.string(),
  revokedAt: z.string().nullable(),
});

/** What the key routes use: the services, the key commands, the cache of verified keys. */
interface KeyRouteOptions {
  runtime: Pick<ApiServices, 'commands' | 'pool' | 'projections'>;
  keys: ApiKeyService;
  authenticator: Authenticator;
}

/**
 * API keys: issue (the token is shown once), list, rotate, revoke. Every change is an event.
 * Routes are registered in this order, which is openapi.json's.
 */
export const keyRoutes: FastifyPluginAsyncZod<KeyRouteOptions> = async (fastify, options) => {
  readRoutes(fastify, options);
  issueRoute(fastify, options);
  changeRoutes(fastify, options);
};

/** The caller's own key, and every key. */
function readRoutes(fastify: ZodFastify, { runtime }: KeyRouteOptions): void {
  fastify.get(
    '/session',
    {
      config: { permission: 'session:read' },
      schema: {
        tags: ['keys'],
        summary: 'Who the presented key belongs to',
        response: { 200: z.object({ keyId: z.string(), name: z.string(), role: z.enum(ROLES) }) },
      },
    },
    (request) => {
      const principal = request.principal;
      if (!principal) throw new Error('authenticated route without a principal');
      return principal;
    },
  );

  fastify.get(
    '/keys',
    {
      config: { permission: 'keys:read' },
      schema: {
        tags: ['keys'],
        summary: 'Every API key, never its secret',
        response: { 200: z.array(keySummary) },
      },
    },
    async () => {
      const rows = await new ApiKeyQueries(runtime.pool).list();
      return rows.map((row) => ({
        keyId: row.key_id,
        name: row.name,
        role: row.role,
        status: row.status,
        issuedAt: row.issued_at.toISOString(),
        issuedBy: row.issued_by,
        revokedAt: row.revoked_at?.toISOString() ?? null,
      }));
    },
  );
}

function issueRoute(fastify: ZodFastify, { runtime, keys }: KeyRouteOptions): void {
  fastify.post(
    '/keys',
    commandRoute('keys:manage', {
      tags: ['keys'],
      summary: 'Issue an API key; the token is in this answer only',
      body: z.object({ name: z.string().trim().min(1).max(100), role: z.enum(ROLES) }).strict(),
      response: {
        201: commandResultSchema.extend({
          keyId: z.string(),
          name: z.string(),
          role: z.enum(ROLES),
          token: z
            .string()
            .nullable()
            .describe('shown once: null on a retry with the Idempotency-Key of an earlier issue'),
        }),
      },
    }),
    async (request, reply) => {
      const command = commandOf(request, runtime.commands);
      const keyId =
        command.context.idempotencyKey === undefined
          ? undefined
          : command.newId('api-key').replaceAll('-', '').slice(0, 16);
      const issued = await command.run((context) =>
        keys.issue(request.body.name, request.body.role, context, keyId),
      );
      await runtime.projections.waitFor('api_keys', issued.result.position, 2000);
      const answer = commandAnswer(reply, issued.result);
      return reply.code(201).send({
        ...answer,
        keyId: issued.keyId,
        name: issued.name,
        role: issued.role,
        token: issued.token,
      });
    },
  );
}

/** Rotate and revoke; both drop the key from the cache of tokens verified moments ago. */
function changeRoutes(
  fastify: ZodFastify,
  { runtime, keys, authenticator }: KeyRouteOptions,
): void {
  fastify.post(
    '/keys/:keyId/rotate',
    commandRoute('keys:manage', {
      tags: ['keys'],
      summary: 'Replace the secret of a key; the old token stops working',
      params: keyId,
      response: {
        200: commandResultSchema.extend({
          token: z
            .string()
            .nullable()
            .describe(
              'shown once: null on a retry with the Idempotency-Key of an earlier rotation',
            ),
        }),
      },
    }),
    async (request, reply) => {
      const rotated = await commandOf(request, runtime.commands).run((context) =>
        keys.rotate(request.params.keyId, context),
      );
      authenticator.forget(request.params.keyId);
      await runtime.projections.waitFor('api_keys', rotated.result.position, 2000);
      return { ...commandAnswer(reply, rotated.result), token: rotated.token };
    },
  );

  fastify.delete(
    '/keys/:keyId',
    commandRoute('keys:manage', {
      tags: ['keys'],
      summary: 'Revoke a key',
      params: keyId,
      querystring: z
        .object({
          reason: z.string().trim().min(1).max(500).default('revoked by an administrator'),
        })
        .strict(),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const result = await commandOf(request, runtime.commands).run((context) =>
        keys.revoke(request.params.keyId, request.query.reason, context),
      );
      authenticator.forget(request.params.keyId);
      await runtime.projections.waitFor('api_keys', result.position, 2000);
      return commandAnswer(reply, result);
    },
  );
}
