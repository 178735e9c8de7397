import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

/**
 * Every metric an alert rule or a Grafana dashboard queries must exist: exported by QCAT (checked
 * against the /metrics of a running QCAT) or by an exporter declared in
 * monitoring/prometheus/exporter-metrics.json. A renamed metric otherwise leaves a dashboard empty
 * and an alert silent, with nothing failing.
 */

const root = new URL('..', import.meta.url).pathname;
/** Every rule file prometheus.yml loads (rules/*.yml). */
const ruleFiles = readdirSync(join(root, 'monitoring/prometheus/rules'))
  .filter((name) => name.endsWith('.yml'))
  .map((name) => join(root, 'monitoring/prometheus/rules', name));
const dashboardsDir = join(root, 'monitoring/grafana/dashboards');

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads: every identifier that is not inside a string, a
 * label matcher, a range or a grouping clause, is not a function or aggregation (followed by `(`),
 * not a keyword and not part of a number or duration. Grafana variables ($x, ${x}) are dropped.
 */
function metricNames(expr: string): Set<string> {
  const text = expr
    .replace(/#[^\n]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  const token = /(\d[\w.]*(?:[eE][+-]?\d+)?)|([A-Za-z_:][A-Za-z0-9_:]*)/g;
  for (const match of text.matchAll(token)) {
    const name = match[2];
    if (name === undefined) continue; // a number or a duration
    const rest = text.slice(match.index + match[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation
    if (PROMQL_KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return names;
}

/** The expression inside a Grafana `label_values(expr, label)` variable query, if it has one. */
function variableExpression(query: string): string | undefined {
  const labelValues = /^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$/s.exec(query);
  if (labelValues) return labelValues[1];
  if (/^\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*$/.test(query)) return undefined;
  const other = /^\s*(?:query_result|metrics)\((.*)\)\s*$/s.exec(query);
  return other ? other[1] : query;
}

/** Where a metric is selected with job="...": name -> jobs. */
function jobSelectors(expr: string): { name: string; job: string }[] {
  const found: { name: string; job: string }[] = [];
  for (const match of expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const job = /\bjob\s*=\s*"([^"]*)"/.exec(match[2]!);
    if (job) found.push({ name: match[1]!, job: job[1]! });
  }
  return found;
}

const exportersSchema = z.object({
  description: z.string(),
  exporters: z.array(
    z.object({ job: z.string(), source: z.string(), metrics: z.array(z.string()) }),
  ),
});

const datasourceRef = z.looseObject({ type: z.string().optional(), uid: z.string().optional() });
const target = z.looseObject({
  datasource: datasourceRef.optional(),
  expr: z.string().optional(),
  rawSql: z.string().optional(),
});
interface Panel {
  title?: string | undefined;
  datasource?: z.infer<typeof datasourceRef> | undefined;
  targets?: z.infer<typeof target>[] | undefined;
  panels?: Panel[] | undefined;
}
const panel: z.ZodType<Panel> = z.lazy(() =>
  z.looseObject({
    title: z.string().optional(),
    datasource: datasourceRef.optional(),
    targets: z.array(target).optional(),
    panels: z.array(panel).optional(),
  }),
);
const dashboardSchema = z.looseObject({
  uid: z.string(),
  title: z.string(),
  panels: z.array(panel),
  templating: z.object({
    list: z.array(
      z.looseObject({
        name: z.string(),
        type: z.string(),
        datasource: datasourceRef.optional(),
        query: z.union([z.string(), z.looseObject({ query: z.string() })]).optional(),
      }),
    ),
  }),
});

const ruleSchema = z.object({
  groups: z.array(
    z.object({ rules: z.array(z.looseObject({ alert: z.string(), expr: z.string() })) }),
  ),
});

interface Query {
  where: string;
  expr: string;
}

/** Every PromQL query: alert expressions, dashboard targets on Prometheus, variable queries. */
function promqlQueries(): Query[] {
  const queries: Query[] = [];
  for (const file of ruleFiles) {
    for (const group of ruleSchema.parse(parse(readFileSync(file, 'utf8'))).groups) {
      for (const rule of group.rules)
        queries.push({ where: `alert ${rule.alert}`, expr: rule.expr });
    }
  }
  for (const file of readdirSync(dashboardsDir).filter((name) => name.endsWith('.json'))) {
    const dashboard = dashboardSchema.parse(
      JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')),
    );
    const walk = (panels: Panel[]): void => {
      for (const p of panels) {
        for (const t of p.targets ?? []) {
          const type = t.datasource?.type ?? p.datasource?.type;
          if (type === 'prometheus' && t.expr !== undefined)
            queries.push({ where: `${file}: panel '${p.title ?? ''}'`, expr: t.expr });
        }
        walk(p.panels ?? []);
      }
    };
    walk(dashboard.panels);
    for (const variable of dashboard.templating.list) {
      if (variable.type !== 'query' || variable.datasource?.type !== 'prometheus') continue;
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const expr = query === undefined ? undefined : variableExpression(query);
      if (expr !== undefined) queries.push({ where: `${file}: variable $${variable.name}`, expr });
    }
  }
  return queries;
}

/** The series names a Prometheus text exposition offers (histograms as _bucket/_sum/_count). */
function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const name = type[1]!;
      const kind = type[2]!;
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      else if (kind === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
      else names.add(name);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

describe('metricNames (the crude PromQL reader the check below relies on)', () => {
  const cases: [string, string[]][] = [
    [
      'sum by (le) (rate(http_request_duration_seconds_bucket{job="qcat",route!~"/a|{b}"}[5m]))',
      ['http_request_duration_seconds_bucket'],
    ],
    [
      'a / on (instance) group_left (x) b > bool 0.5 and c offset 5m unless d',
      ['a', 'b', 'c', 'd'],
    ],
    ['absent(up{job="qcat"} == 1)', ['up']],
    ['count(ALERTS{alertstate="firing"}) or vector(0)', ['ALERTS']],
    [
      'predict_linear(node_filesystem_avail_bytes[6h], 24 * 3600) < 0',
      ['node_filesystem_avail_bytes'],
    ],
    [
      'topk(10, histogram_quantile(0.95, sum by (le, route) (rate(h_bucket{instance=~"$instance"}[$__rate_interval]))))',
      ['h_bucket'],
    ],
    ['sum(x) without (instance) * 1e3 + max_over_time(y[1h:5m])', ['x', 'y']],
    [
      'time() - max(backup_last_success_timestamp_seconds) > 26 * 3600',
      ['backup_last_success_timestamp_seconds'],
    ],
    ['label_replace(up, "dst", "$1", "instance", "(.*):.*")', ['up']],
    ['sum by (code) (rate(e_total{code!~"A|B"}[10m])) # comment naming not_a_metric', ['e_total']],
  ];
  it.each(cases)('%s', (expr, expected) => {
    expect([...metricNames(expr)].sort()).toEqual([...expected].sort());
  });

  it('reads the expression inside a label_values() variable, not the label', () => {
    expect(variableExpression('label_values(up{job="qcat"}, instance)')).toBe('up{job="qcat"}');
    expect(variableExpression('label_values(instance)')).toBeUndefined();
  });
});

describe('every metric in the alert rules and the dashboards exists', () => {
  let api: TestServer;
  let exported: Set<string>;
  const declared = exportersSchema.parse(
    JSON.parse(readFileSync(join(root, 'monitoring/prometheus/exporter-metrics.json'), 'utf8')),
  );
  const declaredJob = new Map(
    declared.exporters.flatMap((exporter) => exporter.metrics.map((m) => [m, exporter.job])),
  );
  const queries = promqlQueries();

  beforeAll(async () => {
    api = await startTestServer('metric_names');
    // Traffic first, so the labelled series exist too, not only their # TYPE lines.
    expect((await api.request('GET', '/health/ready')).status).toBe(200);
    const response = await api.request('GET', '/metrics', { token: null });
    expect(response.status).toBe(200);
    exported = exposedNames(await response.text());
  });
  afterAll(async () => {
    await api.stop();
  });

  it('reads a query from every alert and from every dashboard', () => {
    const files = readdirSync(dashboardsDir).filter((name) => name.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      expect(
        queries.some((q) => q.where.startsWith(`${file}:`)) || file === 'qcat-activity.json',
        file,
      ).toBe(true);
    }
    expect(queries.filter((q) => q.where.startsWith('alert ')).length).toBeGreaterThan(20);
  });

  it('QCAT exports the metrics docs/metrics.md promises, so the check below has something to match', () => {
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'http_requests_in_flight',
      'websocket_connections',
      'eventstore_append_duration_seconds_count',
      'eventstore_append_errors_total',
      'projection_lag_events',
      'projection_stopped',
      'backup_last_success_timestamp_seconds',
      'backup_failures_total',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(exported.has(name), name).toBe(true);
    }
  });

  it('each metric is exported by QCAT or by a declared exporter', () => {
    const unknown: string[] = [];
    for (const query of queries) {
      for (const name of metricNames(query.expr)) {
        if (!exported.has(name) && !declaredJob.has(name)) unknown.push(`${name} (${query.where})`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('each metric is selected from the job that exports it', () => {
    const wrong: string[] = [];
    for (const query of queries) {
      for (const { name, job } of jobSelectors(query.expr)) {
        // `up` and `ALERTS` exist for every job; the others belong to one.
        if (name === 'up' || name === 'ALERTS') continue;
        const expected = exported.has(name) ? 'qcat' : declaredJob.get(name);
        if (expected !== undefined && expected !== job)
          wrong.push(`${name}{job="${job}"} should be job="${expected}" (${query.where})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('every declared exporter metric is used, by a job that Prometheus scrapes', () => {
    const used = new Set(queries.flatMap((query) => [...metricNames(query.expr)]));
    expect([...declaredJob.keys()].filter((name) => !used.has(name))).toEqual([]);
    // Nothing declared that QCAT already exports: the QCAT list is the real one.
    expect([...declaredJob.keys()].filter((name) => exported.has(name))).toEqual([]);
    const scrapeJobs = readFileSync(join(root, 'monitoring/prometheus/prometheus.yml'), 'utf8');
    for (const exporter of declared.exporters)
      expect(scrapeJobs, exporter.job).toContain(`job_name: ${exporter.job}\n`);
  });
});
