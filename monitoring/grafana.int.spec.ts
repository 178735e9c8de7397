import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { dropRoles } from '../test/support/test-database.js';
import { describeNeeding } from '../test/support/tools.js';

/**
 * Grafana's provisioning (data sources, dashboards) and the read-only PostgreSQL role it uses: the
 * role script runs against a real QCAT database, and every SQL query of every dashboard runs as
 * that role. Metric names in the dashboards are checked by metric-names.int.spec.ts.
 */

const root = new URL('..', import.meta.url).pathname;
const grafanaDir = join(root, 'monitoring/grafana');
const dashboardsDir = join(grafanaDir, 'dashboards');
const rolesScript = join(grafanaDir, 'postgres/10-monitoring-roles.sh');

const datasourcesSchema = z.object({
  apiVersion: z.literal(1),
  datasources: z.array(
    z.looseObject({
      name: z.string(),
      uid: z.string(),
      type: z.string(),
      url: z.string(),
      user: z.string().optional(),
      jsonData: z.record(z.string(), z.unknown()).optional(),
      secureJsonData: z.record(z.string(), z.string()).optional(),
    }),
  ),
});
const providersSchema = z.object({
  apiVersion: z.literal(1),
  providers: z.array(
    z.looseObject({
      name: z.string(),
      type: z.literal('file'),
      options: z.object({ path: z.string() }),
    }),
  ),
});

const datasourceRef = z.looseObject({ type: z.string(), uid: z.string() });
const target = z.looseObject({
  refId: z.string(),
  datasource: datasourceRef,
  expr: z.string().optional(),
  rawSql: z.string().optional(),
});
const gridPos = z.object({
  x: z.number().int().min(0),
  y: z.number().int().min(0),
  w: z.number().int().min(1),
  h: z.number().int().min(1),
});
const panelSchema = z.looseObject({
  id: z.number().int(),
  type: z.string(),
  title: z.string().min(1),
  gridPos,
  datasource: datasourceRef.optional(),
  targets: z.array(target).optional(),
});
const dashboardSchema = z.looseObject({
  uid: z.string(),
  title: z.string(),
  tags: z.array(z.string()),
  schemaVersion: z.number(),
  panels: z.array(panelSchema),
  templating: z.object({
    list: z.array(
      z.looseObject({
        name: z.string(),
        type: z.string(),
        datasource: datasourceRef.optional(),
        query: z.union([z.string(), z.looseObject({ query: z.string() })]),
      }),
    ),
  }),
});
type Dashboard = z.infer<typeof dashboardSchema>;

const dashboards: { file: string; dashboard: Dashboard }[] = readdirSync(dashboardsDir)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({
    file,
    dashboard: dashboardSchema.parse(JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8'))),
  }));

const datasources = datasourcesSchema.parse(
  parse(readFileSync(join(grafanaDir, 'provisioning/datasources/datasources.yml'), 'utf8')),
).datasources;

/** Every SQL query of the dashboards (panel targets and variables), with where it is. */
function sqlQueries(): { where: string; sql: string }[] {
  const queries: { where: string; sql: string }[] = [];
  for (const { file, dashboard } of dashboards) {
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? []) {
        if (t.rawSql !== undefined)
          queries.push({ where: `${file}: ${panel.title} (${t.refId})`, sql: t.rawSql });
      }
    }
    for (const variable of dashboard.templating.list) {
      if (variable.datasource?.uid === 'qcat-postgres' && typeof variable.query === 'string')
        queries.push({ where: `${file}: variable $${variable.name}`, sql: variable.query });
    }
  }
  return queries;
}

/** What Grafana's PostgreSQL data source makes of its macros and of the dashboards' variables. */
function expandGrafanaSql(sql: string): string {
  const units = new Map([
    ['s', 1],
    ['m', 60],
    ['h', 3600],
    ['d', 86400],
  ]);
  const seconds = (interval: string): number => {
    const parsed = /^(\d+)([smhd])$/.exec(interval);
    const unit = parsed ? units.get(parsed[2]!) : undefined;
    if (!parsed || unit === undefined) throw new Error(`interval ${interval} is not like 1m`);
    return Number(parsed[1]) * unit;
  };
  return sql
    .replace(
      /\$__timeGroupAlias\(\s*(\w+)\s*,\s*'([^']+)'\s*\)/g,
      (_all, column: string, interval: string) =>
        `to_timestamp(floor(extract(epoch FROM ${column}) / ${seconds(interval)}) * ${seconds(interval)}) AS "time"`,
    )
    .replace(
      /\$__timeFilter\(\s*(\w+)\s*\)/g,
      (_all, column: string) => `${column} BETWEEN now() - interval '6 hours' AND now()`,
    )
    .replace(/\$category\b/g, `'apikey','strategy'`);
}

/** The same database URL, logging in as another role with its password. */
const loginAs = (databaseUrl: string, role: string, password: string): string => {
  const url = new URL(databaseUrl);
  url.username = role;
  url.password = password;
  return url.toString();
};

describe('Grafana provisioning', () => {
  it('provisions Prometheus, the PostgreSQL read models and Alertmanager, reached by their compose service names', () => {
    const byUid = new Map(datasources.map((d) => [d.uid, d]));
    expect([...byUid.keys()].sort()).toEqual(['alertmanager', 'prometheus', 'qcat-postgres']);
    expect(byUid.get('prometheus')).toMatchObject({
      type: 'prometheus',
      url: 'http://prometheus:9090',
    });
    expect(byUid.get('alertmanager')).toMatchObject({ url: 'http://alertmanager:9093' });
    const postgres = byUid.get('qcat-postgres')!;
    expect(postgres).toMatchObject({
      type: 'grafana-postgresql-datasource',
      url: 'postgres:5432',
      user: 'grafana_reader',
    });
    expect(postgres.jsonData?.['database']).toBe('qcat');
    // The password comes from Grafana's environment, never from this file.
    expect(postgres.secureJsonData).toEqual({ password: '$GRAFANA_PG_PASSWORD' });
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain('GRAFANA_PG_PASSWORD: ${GRAFANA_PG_PASSWORD:?');
    for (const service of ['prometheus:', 'postgres:', 'alertmanager:'])
      expect(compose).toContain(`\n  ${service}\n`);
  });

  it('loads the dashboards from the folder docker-compose.yml mounts', () => {
    const providers = providersSchema.parse(
      parse(readFileSync(join(grafanaDir, 'provisioning/dashboards/dashboards.yml'), 'utf8')),
    ).providers;
    expect(providers.map((p) => p.options.path)).toEqual(['/etc/grafana/dashboards']);
    expect(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).toContain(
      './monitoring/grafana/dashboards:/etc/grafana/dashboards:ro',
    );
  });

  it('has the dashboards issue #9 asks for, each with a unique uid named like its file', () => {
    expect(dashboards.map((d) => d.file)).toEqual([
      'qcat-activity.json',
      'qcat-backups.json',
      'qcat-eventstore.json',
      'qcat-infrastructure.json',
      'qcat-overview.json',
      'qcat-risk.json',
      'qcat-trading.json',
    ]);
    for (const { file, dashboard } of dashboards) {
      expect(`${dashboard.uid}.json`).toBe(file);
      expect(dashboard.title).toMatch(/^QCAT — /);
      expect(dashboard.tags).toContain('qcat');
    }
    const overview = dashboards.find((d) => d.file === 'qcat-overview.json')!.dashboard;
    const titles = overview.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['replicas up', 'requests / s', '5xx', 'latency', 'in flight', 'websocket'])
      expect(titles).toContain(topic);
  });

  it('every panel queries a provisioned data source, and panels do not overlap', () => {
    const uids = new Map(datasources.map((d) => [d.uid, d.type]));
    for (const { file, dashboard } of dashboards) {
      const ids = dashboard.panels.map((p) => p.id);
      expect(new Set(ids).size, file).toBe(ids.length);
      const cells = new Set<string>();
      for (const panel of dashboard.panels) {
        const where = `${file}: ${panel.title}`;
        expect(panel.gridPos.x + panel.gridPos.w, where).toBeLessThanOrEqual(24);
        for (let x = panel.gridPos.x; x < panel.gridPos.x + panel.gridPos.w; x++) {
          for (let y = panel.gridPos.y; y < panel.gridPos.y + panel.gridPos.h; y++) {
            expect(cells.has(`${x},${y}`), `${where} overlaps another panel`).toBe(false);
            cells.add(`${x},${y}`);
          }
        }
        if (panel.type === 'row') continue;
        expect(panel.targets?.length, where).toBeGreaterThan(0);
        for (const t of panel.targets ?? []) {
          expect(uids.get(t.datasource.uid), where).toBe(t.datasource.type);
          expect(t.expr ?? t.rawSql, where).toBeTruthy();
        }
      }
    }
  });
});

const readOnlyRole =
  'the read-only PostgreSQL role and the dashboards’ SQL, on a real QCAT database';
describeNeeding(['psql'], readOnlyRole, () => {
  let api: TestServer | undefined;
  let reader: pg.Client | undefined;
  const suffix = randomBytes(4).toString('hex');
  const readerRole = `grafana_reader_${suffix}`;
  const exporterRole = `postgres_exporter_${suffix}`;
  const readerPassword = randomBytes(12).toString('hex');
  const exporterPassword = randomBytes(12).toString('hex');
  let serverUrl: string;

  beforeAll(async () => {
    const server = await startTestServer('grafana_sql');
    api = server;
    const url = new URL(server.database.url);
    serverUrl = new URL('/postgres', url).toString();
    const result = spawnSync('sh', [rolesScript], {
      encoding: 'utf8',
      env: {
        ...process.env,
        PGHOST: url.hostname,
        PGPORT: url.port || '5432',
        // The embedded server's generated password (empty for a server that trusts local logins).
        PGPASSWORD: decodeURIComponent(url.password),
        POSTGRES_USER: decodeURIComponent(url.username),
        POSTGRES_DB: url.pathname.slice(1),
        GRAFANA_PG_USER: readerRole,
        GRAFANA_PG_PASSWORD: readerPassword,
        POSTGRES_EXPORTER_USER: exporterRole,
        POSTGRES_EXPORTER_PASSWORD: exporterPassword,
      },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    reader = new pg.Client({
      connectionString: loginAs(server.database.url, readerRole, readerPassword),
    });
    await reader.connect();
  });

  /** The reader's connection and the server, which beforeAll made. */
  const ready = (): { api: TestServer; reader: pg.Client } => {
    if (!api || !reader) throw new Error('beforeAll did not finish');
    return { api, reader };
  };

  afterAll(async () => {
    await reader?.end();
    await api?.stop();
    await dropRoles(serverUrl, [readerRole, exporterRole]);
  });

  it('is executable, so the postgres image runs it instead of sourcing it into its own shell', () => {
    expect(statSync(rolesScript).mode & 0o111).not.toBe(0);
  });

  it('refuses to run without its passwords, naming the missing one', () => {
    const result = spawnSync('sh', [rolesScript], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'], POSTGRES_USER: 'qcat', POSTGRES_DB: 'qcat' },
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('GRAFANA_PG_PASSWORD');
  });

  it('lets the reader read the read models, and nothing else', async () => {
    const { reader } = ready();
    const rows = await reader.query<{ n: string }>(
      'SELECT count(*) AS n FROM qcat_read.audit_trail',
    );
    expect(Number(rows.rows[0]!.n)).toBeGreaterThan(0);
    await expect(reader.query('SELECT count(*) FROM qcat_events')).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      reader.query(
        `INSERT INTO qcat_read.audit_trail (position, recorded_at, stream_id, category, revision, type, event_id, actor)
         VALUES (-1, now(), 'x-1', 'x', 0, 'X', gen_random_uuid(), 'grafana')`,
      ),
    ).rejects.toThrow(/read-only transaction|permission denied/);
  });

  it('keeps the reader’s access when a rebuild replaces the read model’s view', async () => {
    const { api, reader } = ready();
    const target = api.server.runtime.projections.target('audit_trail');
    expect(target).toBeDefined();
    const rebuilt = await target!.rebuild(api.server.runtime.eventStore);
    expect(rebuilt.events).toBeGreaterThan(0);
    const rows = await reader.query<{ n: string }>(
      'SELECT count(*) AS n FROM qcat_read.audit_trail',
    );
    expect(Number(rows.rows[0]!.n)).toBe(rebuilt.events);
  });

  it('gives the exporter pg_monitor and no table access', async () => {
    const { api } = ready();
    const exporter = new pg.Client({
      connectionString: loginAs(api.database.url, exporterRole, exporterPassword),
    });
    await exporter.connect();
    try {
      const monitor = await exporter.query<{ member: boolean }>(
        "SELECT pg_has_role(current_user, 'pg_monitor', 'member') AS member",
      );
      expect(monitor.rows[0]!.member).toBe(true);
      await expect(exporter.query('SELECT count(*) FROM qcat_read.audit_trail')).rejects.toThrow(
        /permission denied/,
      );
    } finally {
      await exporter.end();
    }
  });

  it('runs every SQL query of every dashboard as the reader', async () => {
    const { reader } = ready();
    const queries = sqlQueries();
    expect(queries.length).toBeGreaterThanOrEqual(8);
    for (const query of queries) {
      const sql = expandGrafanaSql(query.sql);
      expect(sql, `${query.where}: a macro or variable this test does not expand`).not.toContain(
        '$',
      );
      const result = await reader.query(sql).catch((error: unknown) => {
        throw new Error(`${query.where}: ${String(error)}\n${sql}`, { cause: error });
      });
      expect(result.rows.length, query.where).toBeGreaterThan(0);
    }
  });
});
