import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventLogMigrations } from '../core/adapters/postgres/migrations.js';
import { loadConfig } from '../ops/config.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { startServer, type RunningServer } from './server.js';

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
