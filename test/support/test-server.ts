import { ROLES, type Role } from '../../core/access/roles.js';
import { ApiKeyService } from '../../api/auth/api-key-service.js';
import { startServer, type RunningServer } from '../../ops/server.js';
import { loadConfig } from '../../ops/config.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestServer {
  server: RunningServer;
  database: TestDatabase;
  /** A working token per role, plus one revoked key. */
  tokens: Record<Role, string> & { revoked: string };
  request(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  stop(): Promise<void>;
}

/** QCAT on a real port over a fresh, migrated database, with one API key per role. */
export async function startTestServer(
  label: string,
  env: Record<string, string> = {},
): Promise<TestServer> {
  // Migrated already (a copy of the run's template): the start finds the schema up to date.
  const database = await createTestDatabase(label, { migrated: true });
  const server = await startServer(
    loadConfig({
      DATABASE_URL: database.url,
      PORT: '0',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MINUTE: '100000',
      // Several spec files run at once against one PostgreSQL's 100 connections: 5 per pool
      // (the read models' and the event store's), as for spawned servers (ADR 020).
      DATABASE_POOL_MAX: '5',
      // Tests that want the paper engine running turn it on.
      PAPER_TRADING: 'off',
      ...env,
    }),
    { announce: () => undefined },
  );
  const keys = new ApiKeyService(server.runtime.commands);
  const tokens: Partial<Record<Role | 'revoked', string>> = {};
  for (const role of ROLES) {
    const issued = await keys.issue(`test-${role}`, role, 'test-setup');
    tokens[role] = issued.token;
  }
  const doomed = await keys.issue('test-revoked', 'admin', 'test-setup');
  tokens.revoked = doomed.token;
  const last = (await keys.revoke(doomed.keyId, 'test', 'test-setup')).position;
  if (!(await server.runtime.projections.waitFor('api_keys', last, 10_000)))
    throw new Error('api_keys projection did not catch up');
  const complete = tokens as Record<Role, string> & { revoked: string };
  return {
    server,
    database,
    tokens: complete,
    request: (method, path, options = {}) => {
      const token = options.token === undefined ? complete.admin : options.token;
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(`${server.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      });
    },
    stop: async () => {
      await server.stop();
      await database.drop();
    },
  };
}
