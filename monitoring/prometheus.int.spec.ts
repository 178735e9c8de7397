import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { describeNeeding, toolPath } from '../test/support/tools.js';

/**
 * The Prometheus configuration, its alert rules and their unit tests, checked with Prometheus's own
 * promtool (Debian package `prometheus`; the test setup installs it). Without promtool its tests
 * are skipped saying so, and fail in CI: an unchecked rule file is not a passing one.
 */

const root = new URL('..', import.meta.url).pathname;
const prometheusDir = join(root, 'monitoring/prometheus');
const rulesFile = join(prometheusDir, 'rules/qcat-alerts.yml');
const testsFile = join(prometheusDir, 'tests/qcat-alerts.test.yml');
/** Every unit-test file, as promtool and .ci/run take them: tests/*.yml. */
const testFiles = readdirSync(join(prometheusDir, 'tests'))
  .filter((name) => name.endsWith('.yml'))
  .sort()
  .map((name) => `tests/${name}`);

function run(command: string, args: string[], cwd = root): { status: number; output: string } {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

const alertRule = z.object({
  alert: z.string().regex(/^[A-Z][A-Za-z0-9]+$/),
  expr: z.string().min(1),
  for: z.string().optional(),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()),
});
const rulesSchema = z.object({
  groups: z.array(z.object({ name: z.string(), rules: z.array(alertRule) })),
});
const unitTestsSchema = z.object({
  rule_files: z.array(z.string()),
  tests: z.array(
    z.object({
      name: z.string(),
      alert_rule_test: z.array(
        z.object({
          eval_time: z.string(),
          alertname: z.string(),
          exp_alerts: z.array(z.object({ exp_labels: z.record(z.string(), z.unknown()) })),
        }),
      ),
    }),
  ),
});
const prometheusConfigSchema = z.object({
  global: z.object({ scrape_interval: z.string(), evaluation_interval: z.string() }),
  rule_files: z.array(z.string()),
  alerting: z.object({
    alertmanagers: z.array(
      z.object({ static_configs: z.array(z.object({ targets: z.array(z.string()) })) }),
    ),
  }),
  scrape_configs: z.array(
    z.object({
      job_name: z.string(),
      static_configs: z.array(z.object({ targets: z.array(z.string()) })).optional(),
      dns_sd_configs: z
        .array(z.object({ names: z.array(z.string()), type: z.string(), port: z.number() }))
        .optional(),
    }),
  ),
});

const alerts = rulesSchema
  .parse(parse(readFileSync(rulesFile, 'utf8')))
  .groups.flatMap((group) => group.rules);

/** GitHub's anchors for the headings of a Markdown file. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of markdown.split('\n')) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    anchors.add(
      heading[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}

describeNeeding(['promtool'], 'Prometheus configuration and alert rules (promtool)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'qcat-promtool-'));
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('promtool check config accepts prometheus.yml and the rule files it loads', () => {
    const promtool = toolPath('promtool');
    const result = run(promtool, ['check', 'config', 'prometheus.yml'], prometheusDir);
    expect(result.output).toContain('SUCCESS: prometheus.yml is valid prometheus config file');
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('promtool check rules accepts every rule file', () => {
    const promtool = toolPath('promtool');
    const result = run(promtool, ['check', 'rules', rulesFile]);
    expect(result.output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(result.status).toBe(0);
  });

  it('promtool test rules: every unit test of the alerts passes', () => {
    const promtool = toolPath('promtool');
    expect(testFiles).toEqual([
      'tests/backup-age.test.yml',
      'tests/optimization-stalled.test.yml',
      'tests/qcat-alerts.test.yml',
    ]);
    const result = run(promtool, ['test', 'rules', ...testFiles], prometheusDir);
    expect(result.output).not.toContain('FAILED');
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('a wrong expectation makes promtool test rules fail (the unit tests do check)', () => {
    const promtool = toolPath('promtool');
    // The first test case alone, its rule file by absolute path, and once as it is: it passes...
    const suite = z
      .looseObject({ rule_files: z.array(z.string()), tests: z.array(z.unknown()) })
      .parse(parse(readFileSync(testsFile, 'utf8')));
    const first = stringify({ ...suite, rule_files: [rulesFile], tests: suite.tests.slice(0, 1) });
    expect(first).toContain('QCAT replica 10.0.0.5:8082 is down');
    const intact = join(scratch, 'intact.test.yml');
    writeFileSync(intact, first);
    expect(run(promtool, ['test', 'rules', intact]).status).toBe(0);
    // ...and with one expected annotation changed, it fails.
    const broken = join(scratch, 'broken.test.yml');
    writeFileSync(broken, first.replace('QCAT replica 10.0.0.5:8082 is down', 'something else'));
    const result = run(promtool, ['test', 'rules', broken]);
    expect(result.output).toContain('FAILED');
    expect(result.status).not.toBe(0);
  });

  it('every alert has a unit test in which it fires, and one in which it must not', () => {
    const cases = testFiles.flatMap((file) => {
      const tests = unitTestsSchema.parse(parse(readFileSync(join(prometheusDir, file), 'utf8')));
      expect(tests.rule_files, file).toEqual(['../rules/qcat-alerts.yml']);
      return tests.tests.flatMap((test) => test.alert_rule_test);
    });
    const firing = new Set(cases.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
    const quiet = new Set(cases.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
    const names = alerts.map((alert) => alert.alert);
    expect(names.filter((name) => !firing.has(name))).toEqual([]);
    expect(names.filter((name) => !quiet.has(name))).toEqual([]);
    // And no test names an alert that does not exist (a renamed alert would test nothing).
    expect([...firing, ...quiet].filter((name) => !names.includes(name))).toEqual([]);
  });

  it('every alert has a severity, a scope, a summary, a description and a runbook that exists', () => {
    const anchors = headingAnchors(readFileSync(join(root, 'docs/operations.md'), 'utf8'));
    const names = alerts.map((alert) => alert.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const alert of alerts) {
      const where = `alert ${alert.alert}`;
      expect(['critical', 'warning'], where).toContain(alert.labels['severity']);
      expect(alert.labels['scope'], where).toMatch(/^[a-z]+(\/.+)?$/);
      expect(alert.annotations['summary'], where).toBeTruthy();
      expect(alert.annotations['description'], where).toBeTruthy();
      const anchor = `runbook-${alert.alert.toLowerCase()}`;
      expect(alert.annotations['runbook'], where).toBe(`docs/operations.md#${anchor}`);
      expect(
        anchors.has(anchor),
        `${where}: docs/operations.md has no "Runbook: ${alert.alert}"`,
      ).toBe(true);
    }
  });

  it('covers what issue #9 asks to alert on', () => {
    const names = new Set(alerts.map((alert) => alert.alert));
    for (const required of [
      'QcatDown',
      'QcatHighErrorRate',
      'QcatHighLatency',
      'QcatTooManyInFlightRequests',
      'QcatTooManyWebSocketConnections',
      'ProjectionLagHigh',
      'ProjectionStopped',
      'BackupStale',
      'BackupFailed',
      'EventStoreAppendErrors',
      'PostgresDown',
      'PostgresTooManyConnections',
      'RedisDown',
      'HostHighCpu',
      'HostLowMemory',
      'HostDiskSpaceLow',
      'CircuitBreakerTripped',
      'KillSwitchEngaged',
      'DailyLossLimitHit',
    ]) {
      expect(names.has(required), required).toBe(true);
    }
    const stale = alerts.find((alert) => alert.alert === 'BackupStale');
    expect(stale?.expr).toContain('> 26 * 3600');
  });

  it('scrapes QCAT (every replica), EventStoreDB, the exporters and Alertmanager, and alerts through Alertmanager', () => {
    const config = prometheusConfigSchema.parse(
      parse(readFileSync(join(prometheusDir, 'prometheus.yml'), 'utf8')),
    );
    const jobs = new Map(config.scrape_configs.map((job) => [job.job_name, job]));
    expect([...jobs.keys()].sort()).toEqual(
      ['alertmanager', 'eventstoredb', 'node', 'postgres', 'prometheus', 'qcat', 'redis'].sort(),
    );
    // Replicas are found through DNS, so scaling out needs no edit here.
    expect(jobs.get('qcat')?.dns_sd_configs).toEqual([{ names: ['qcat'], type: 'A', port: 8082 }]);
    const target = (job: string) => jobs.get(job)?.static_configs?.[0]?.targets[0];
    expect(target('eventstoredb')).toBe('eventstoredb:2113');
    expect(target('postgres')).toBe('postgres-exporter:9187');
    expect(target('redis')).toBe('redis-exporter:9121');
    expect(target('alertmanager')).toBe('alertmanager:9093');
    expect(config.alerting.alertmanagers[0]?.static_configs[0]?.targets).toEqual([
      'alertmanager:9093',
    ]);
    expect(config.rule_files).toEqual(['rules/*.yml']);
  });
});
