import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Party } from '../core/approvals/approval.js';
import type { Permission } from '../core/access/roles.js';
import type { CommandContext, CommandHandler } from '../core/commands/command-handler.js';
import type { CommandResult } from '../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../core/decider.js';
import type { JsonValue } from '../core/eventstore/event-store.js';
import { commandHeaders, newId, principalOf, withPrecondition } from './routes/conventions.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Set by `commandRoute`: the route writes through the command handler and honours If-Match
     * and Idempotency-Key. `false` on a write route that is not a command (say why beside it).
     */
    command?: boolean;
  }
}

/**
 * The one way to declare a command route: its permission and schema, with the command headers
 * (If-Match, Idempotency-Key) added so every command route accepts both. The handler then runs
 * its command through `commandOf(request, ...)`, which applies them.
 */
export function commandRoute<Schema extends object>(
  permission: Permission,
  schema: Schema,
): {
  config: { permission: Permission; command: true };
  schema: Schema & { headers: typeof commandHeaders };
} {
  return { config: { permission, command: true }, schema: { ...schema, headers: commandHeaders } };
}

/** A command request: who acts, and the handler with the request's headers applied. */
export interface CommandRequest {
  actor: string;
  party: Party;
  /** What goes to the command handler: actor, If-Match, Idempotency-Key, the client's input. */
  context: CommandContext;
  /** An id for what the command creates, derived from the Idempotency-Key when there is one. */
  newId(purpose: string): string;
  /** Run one command; with If-Match, a stale revision is 412. */
  handle<State, Command extends JsonValue, Event extends DomainEvent>(
    decider: Decider<State, Command, Event>,
    streamId: string,
    command: Command,
  ): Promise<CommandResult>;
  /** For commands that go through a service taking the context (API keys): 412 as above. */
  run<T>(action: (context: CommandContext) => Promise<T>): Promise<T>;
}

export function commandOf(request: FastifyRequest, commands: CommandHandler): CommandRequest {
  if (request.routeOptions.config.command !== true)
    throw new Error(`${request.method} ${request.url} is not declared with commandRoute`);
  const headers = commandHeaders.parse(request.headers);
  const { actor, party } = principalOf(request);
  const ifMatch = headers['if-match'];
  const key = headers['idempotency-key'];
  const context: CommandContext = {
    actor,
    ...(ifMatch === undefined ? {} : { expectedRevision: BigInt(ifMatch.slice(1, -1)) }),
    ...(key === undefined
      ? {}
      : {
          idempotencyKey: key,
          // The client's request, not the command: commands carry server-side times and secrets.
          clientInput: {
            route: `${request.method} ${request.routeOptions.url ?? request.url}`,
            params: jsonOf(request.params),
            query: jsonOf(request.query),
            body: jsonOf(request.body),
          },
        }),
  };
  const run = <T>(action: (context: CommandContext) => Promise<T>): Promise<T> =>
    withPrecondition(ifMatch !== undefined, () => action(context));
  return {
    actor,
    party,
    context,
    newId: (purpose) => newId(party, headers, purpose),
    handle: (decider, streamId, command) =>
      run((ctx) => commands.handle(decider, streamId, command, ctx)),
    run,
  };
}

/** Parsed request parts as JSON values (undefined dropped), for hashing. */
function jsonOf(value: unknown): JsonValue {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) return value.map(jsonOf);
  if (typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([name, item]) => [name, jsonOf(item)]),
    );
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  return typeof value === 'bigint' ? value.toString() : null;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Refuses at start-up a write route under the API that neither is a command route nor says why
 * it is not (`config.command: false`), so no command route can forget the command headers.
 */
export const commandRoutesChecked = fp(
  (fastify: FastifyInstance, options: { prefix: string }, done: (error?: Error) => void) => {
    fastify.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if (!route.url.startsWith(options.prefix) || !methods.some((m) => WRITES.has(m))) return;
      if (route.config?.command === undefined)
        throw new Error(
          `write route ${methods.join(',')} ${route.url} is not declared with commandRoute (api/command-route.ts)`,
        );
    });
    done();
  },
  { name: 'qcat-command-routes' },
);
