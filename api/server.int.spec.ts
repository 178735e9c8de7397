import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventLogMigrations } from '../core/adapters/postgres/migrations.js';
import { loadConfig } from '../ops/config.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { startServer, type RunningServer } from '../ops/server.js';

describe('QCAT server over real HTTP', () => {
  let database: TestDatabase | undefined;
  let server: RunningServer | undefined;

  beforeAll(async () => {
    database = await createTestDatabase('server');
    server = await startServer(
      loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent' }),
      { announce: () => undefined },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('migrates the log on start and reports health with the head position', async () => {
    const response = await fetch(`${server!.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      eventStore: 'postgres',
      headPosition: '1', // the bootstrap admin key
    });
    const client = new pg.Client({ connectionString: database!.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number }>(
        'SELECT version FROM qcat_migrations ORDER BY version',
      );
      expect(rows.map((row) => row.version)).toEqual(eventLogMigrations.map((m) => m.version));
    } finally {
      await client.end();
    }
  });

  it('answers unknown routes with 404', async () => {
    const response = await fetch(`${server!.url}/nope`);
    expect(response.status).toBe(404);
  });

  it("sends helmet's security headers on every answer: success, 404 and 401", async () => {
    const answers = await Promise.all(
      ['/health/live', '/nope', '/api/v1/audit/events'].map((path) =>
        fetch(`${server!.url}${path}`),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 404, 401]);
    for (const answer of answers) {
      expect(answer.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(answer.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(answer.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
      expect(answer.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('counts and times the answers refused before a route runs (401)', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${server!.url}/api/v1/keys`)).status).toBe(401);
    }
    const text = await (await fetch(`${server!.url}/metrics`)).text();
    const sample = (pattern: string): number =>
      Number(new RegExp(`^${pattern} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
    expect(sample('http_requests_total\\{method="GET",route="/api/v1/keys",status="401"\\}')).toBe(
      3,
    );
    // Timed from its own start: no 401 took anything near a second.
    expect(
      sample('http_request_duration_seconds_sum\\{method="GET",route="/api/v1/keys"\\}'),
    ).toBeLessThan(1);
    // The /metrics request itself is the one in flight.
    expect(sample('http_requests_in_flight')).toBe(1);
  });

  it('answers 503 problem+json, without internals, when the database is gone', async () => {
    await database!.drop();
    const response = await fetch(`${server!.url}/health`);
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts|stack|postgres:\/\//);
  });
});

describe('QCAT server with a CORS allow-list', () => {
  let database: TestDatabase | undefined;
  let server: RunningServer | undefined;
  const allowed = 'https://ops.example.com';

  beforeAll(async () => {
    database = await createTestDatabase('server_cors');
    server = await startServer(
      loadConfig({
        DATABASE_URL: database.url,
        PORT: '0',
        LOG_LEVEL: 'silent',
        PAPER_TRADING: 'off',
        CORS_ORIGINS: allowed,
      }),
      { announce: () => undefined },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  const preflight = (origin: string) =>
    fetch(`${server!.url}/api/v1/audit/events`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });

  it('answers the preflight of an allowed origin without credentials, and no other', async () => {
    const ok = await preflight(allowed);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
    const other = await preflight('https://evil.example.net');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The real request still needs its key.
    const unauthenticated = await fetch(`${server!.url}/api/v1/audit/events`, {
      headers: { origin: allowed },
    });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('access-control-allow-origin')).toBe(allowed);
  });
});

describe('QCAT server stopping', () => {
  it('closes a connection that never carried a request instead of waiting for it', async () => {
    const database = await createTestDatabase('server_stop');
    const server = await startServer(
      loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent' }),
      { announce: () => undefined },
    );
    try {
      // As a browser's preconnect: a connection opened ahead of need, no byte sent. Node's own
      // close() waited for it until the client gave it up (about a minute for Chromium).
      const { port } = new URL(server.url);
      const preconnect = await new Promise<Socket>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          resolve(socket);
        });
        socket.once('error', reject);
      });
      const closed = new Promise<void>((resolve) =>
        preconnect.once('close', () => {
          resolve();
        }),
      );
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200); // one that was used
      await server.stop();
      await closed;
      expect(preconnect.destroyed).toBe(true);
    } finally {
      await database.drop();
    }
  }, 15_000);
});
