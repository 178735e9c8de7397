import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '../../api/auth/api-key-service.js';
import { startServer, type RunningServer } from '../../ops/server.js';
import { migrate } from '../../core/adapters/postgres/migrations.js';
import {
  createTestDatabase,
  dropRoles,
  type TestDatabase,
} from '../../test/support/test-database.js';
import { loadConfig } from '../config.js';

/**
 * Least privilege (ADR 015) on a real PostgreSQL: the role scripts docker-compose runs at
 * initialisation, `qcat migrate` as the owner role, `qcat serve` as the application role, and what
 * Grafana's reader can and cannot see. Roles get unique names and are dropped afterwards.
 */

const root = new URL('../..', import.meta.url).pathname;
const suffix = randomBytes(4).toString('hex');
const roles = {
  owner: `qcat_owner_${suffix}`,
  app: `qcat_app_${suffix}`,
  reader: `grafana_reader_${suffix}`,
  exporter: `postgres_exporter_${suffix}`,
};
const drillDb = `qcat_drill_${suffix}`;

/** The same database URL, logging in as another role (the test server trusts local logins). */
const loginAs = (databaseUrl: string, role: string): string => {
  const url = new URL(databaseUrl);
  url.username = role;
  url.password = '';
  return url.toString();
};

function runScript(script: string, database: TestDatabase, env: Record<string, string>) {
  const url = new URL(database.url);
  return spawnSync('sh', [join(root, script)], {
    encoding: 'utf8',
    env: {
      PATH: process.env['PATH'],
      PGHOST: url.hostname,
      PGPORT: url.port || '5432',
      POSTGRES_USER: decodeURIComponent(url.username),
      POSTGRES_DB: url.pathname.slice(1),
      ...(url.password ? { PGPASSWORD: decodeURIComponent(url.password) } : {}),
      ...env,
    },
  });
}

/** The SQLSTATE of what `work` throws, or 'ok'. */
async function outcome(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    return error instanceof Error && 'code' in error ? String(error.code) : String(error);
  }
}

describe('database roles: owner migrates, the application serves, Grafana reads no key hash', () => {
  let database: TestDatabase;
  let server: RunningServer | undefined;
  const clients: pg.Client[] = [];
  const connect = async (role: string): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: loginAs(database.url, role) });
    await client.connect();
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    database = await createTestDatabase('roles');
    const qcatRoles = runScript('ops/postgres/05-qcat-roles.sh', database, {
      QCAT_PG_OWNER: roles.owner,
      QCAT_PG_APP: roles.app,
      QCAT_PG_DRILL_DB: drillDb,
      QCAT_PG_OWNER_PASSWORD: randomBytes(12).toString('hex'),
      QCAT_PG_APP_PASSWORD: randomBytes(12).toString('hex'),
    });
    expect(qcatRoles.stderr).toBe('');
    expect(qcatRoles.status).toBe(0);
    const monitoring = runScript('monitoring/grafana/postgres/10-monitoring-roles.sh', database, {
      QCAT_READ_OWNER: roles.app,
      GRAFANA_PG_USER: roles.reader,
      GRAFANA_PG_PASSWORD: randomBytes(12).toString('hex'),
      POSTGRES_EXPORTER_USER: roles.exporter,
      POSTGRES_EXPORTER_PASSWORD: randomBytes(12).toString('hex'),
    });
    expect(monitoring.stderr).toBe('');
    expect(monitoring.status).toBe(0);
  });

  afterAll(async () => {
    for (const client of clients) await client.end().catch(() => undefined);
    await server?.stop();
    await database.drop();
    const serverUrl = new URL('/postgres', database.url).href;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(drillDb)} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    await dropRoles(serverUrl, Object.values(roles));
  });

  it('makes neither QCAT role a superuser, nor able to create roles or databases', async () => {
    const admin = await connect(new URL(database.url).username);
    const { rows } = await admin.query<{
      rolname: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
    }>(
      'SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
      [Object.values(roles)],
    );
    expect(rows.map((r) => r.rolname).sort()).toEqual(Object.values(roles).sort());
    for (const row of rows)
      expect([row.rolsuper, row.rolcreaterole, row.rolcreatedb], row.rolname).toEqual([
        false,
        false,
        false,
      ]);
  });

  it('the application role cannot apply migrations: it is told to run `qcat migrate` as the owner', async () => {
    const pool = new pg.Pool({ connectionString: loginAs(database.url, roles.app), max: 1 });
    try {
      await expect(migrate(pool)).rejects.toThrow(
        /run `qcat migrate` with the owner's DATABASE_URL/,
      );
    } finally {
      await pool.end();
    }
  });

  it('the owner applies the migrations; QCAT then serves as the application role', async () => {
    const pool = new pg.Pool({ connectionString: loginAs(database.url, roles.owner), max: 1 });
    try {
      expect((await migrate(pool)).length).toBeGreaterThan(5);
    } finally {
      await pool.end();
    }
    server = await startServer(
      loadConfig({
        DATABASE_URL: loginAs(database.url, roles.app),
        PORT: '0',
        LOG_LEVEL: 'silent',
        PAPER_TRADING: 'off',
      }),
      { announce: () => undefined },
    );
    const issued = await new ApiKeyService(server.runtime.commands).issue('ops', 'admin', 'test');
    expect(
      await server.runtime.projections.waitFor('api_keys', issued.result.position, 10_000),
    ).toBe(true);
    const headers = { authorization: `Bearer ${issued.token}` };
    const keys = await fetch(`${server.url}/api/v1/keys`, { headers });
    expect(keys.status).toBe(200);
    expect(await keys.text()).toContain('"ops"');
    const strategies = await fetch(`${server.url}/api/v1/strategies`, { headers });
    expect(strategies.status).toBe(200);
    await strategies.text();
  });

  it('the application role changes rows, not the log’s schema', async () => {
    const app = await connect(roles.app);
    expect(await outcome(() => app.query('CREATE TABLE public.intruder (x int)'))).toBe('42501');
    expect(await outcome(() => app.query('DROP TABLE qcat_events'))).toBe('42501');
    expect(await outcome(() => app.query('ALTER TABLE qcat_events ADD COLUMN x int'))).toBe(
      '42501',
    );
    expect(await outcome(() => app.query('SELECT count(*) FROM qcat_events'))).toBe('ok');
    // The tables migrations make beside the log: rows, not schema (ADR 028).
    expect(
      await outcome(() =>
        app.query(
          "INSERT INTO qcat_backtest.runs VALUES ('roles-check', gen_random_uuid(), 0, 0, now())",
        ),
      ),
    ).toBe('ok');
    expect(
      await outcome(() =>
        app.query("DELETE FROM qcat_backtest.runs WHERE backtest_id = 'roles-check'"),
      ),
    ).toBe('ok');
    expect(await outcome(() => app.query('SELECT count(*) FROM qcat_market.candles'))).toBe('ok');
    expect(await outcome(() => app.query('DROP TABLE qcat_backtest.runs'))).toBe('42501');
  });

  it('Grafana’s reader reads qcat_read, and no key hash, no event, nothing private', async () => {
    const reader = await connect(roles.reader);
    expect(await outcome(() => reader.query('SELECT count(*) FROM qcat_read.strategies'))).toBe(
      'ok',
    );
    // information_schema lists only the columns a role may read: no secret_hash anywhere.
    const visible = await reader.query(
      "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'secret_hash'",
    );
    expect(visible.rows).toEqual([]);
    const app = await connect(roles.app);
    const forApp = await app.query<{ table_schema: string }>(
      "SELECT table_schema FROM information_schema.columns WHERE column_name = 'secret_hash' AND table_name = 'api_keys'",
    );
    expect(forApp.rows.map((r) => r.table_schema)).toContain('qcat_private');
    expect(await outcome(() => reader.query('SELECT * FROM qcat_private.api_keys'))).toBe('42501');
    expect(await outcome(() => reader.query('SELECT * FROM qcat_read.api_keys'))).toBe('42P01');
    // The events hold the hashes too (ApiKeyIssued): the log is not the reader's.
    expect(await outcome(() => reader.query('SELECT * FROM qcat_events LIMIT 1'))).toBe('42501');
    expect(
      await outcome(() => reader.query('SELECT * FROM qcat_p_api_keys_1.api_keys LIMIT 1')),
    ).toBe('42501');
  });
});
