import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { describeNeeding, toolPath } from '../test/support/tools.js';

/**
 * The Alertmanager configuration: rendered from the environment by render-config.sh, checked by
 * amtool, and run by a real Alertmanager (Debian package `prometheus-alertmanager`; .ci/run
 * installs it) whose Slack webhook points at this test, to see routing, inhibition and the
 * templates at work. Without amtool or alertmanager they are skipped saying so
 * (test/support/tools.ts; a failure in CI).
 */

const root = new URL('..', import.meta.url).pathname;
const alertmanagerDir = join(root, 'monitoring/alertmanager');
const renderScript = join(alertmanagerDir, 'render-config.sh');

/** The settings .env.example documents, with throw-away secrets. */
function sampleEnvironment(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    ALERT_SLACK_WEBHOOK_URL: `http://127.0.0.1:9/slack-${randomBytes(8).toString('hex')}`,
    ALERT_SMTP_PASSWORD: `smtp-${randomBytes(8).toString('hex')}`,
    ALERT_WATCHDOG_URL: `http://127.0.0.1:9/watchdog-${randomBytes(8).toString('hex')}`,
    ALERT_SLACK_CHANNEL_CRITICAL: '#qcat-oncall',
    ALERT_SLACK_CHANNEL_WARNING: '#qcat-alerts',
    ALERT_EMAIL_TO: 'oncall@example.com',
    ALERT_EMAIL_FROM: 'alertmanager@example.com',
    // Nothing listens there: e-mail attempts fail fast and change nothing else.
    ALERT_SMTP_SMARTHOST: '127.0.0.1:9',
    ALERT_SMTP_USERNAME: 'alertmanager@example.com',
    RUNBOOK_BASE_URL: 'https://runbooks.test/qcat/',
    ...overrides,
  };
}

function render(
  target: string,
  env: Record<string, string>,
  source = alertmanagerDir,
): { status: number; stderr: string } {
  const result = spawnSync('sh', [renderScript, source, target], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], ...env },
  });
  return { status: result.status ?? -1, stderr: result.stderr };
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls until `check` answers a value, or fails with `what` after `timeoutMs`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describeNeeding(['amtool'], 'Alertmanager configuration', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'qcat-alertmanager-'));
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('renders from the environment; amtool check-config accepts the result', () => {
    const amtool = toolPath('amtool');
    const target = join(scratch, 'rendered');
    const env = sampleEnvironment();
    const rendered = render(target, env);
    expect(rendered.stderr).toBe('');
    expect(rendered.status).toBe(0);
    const check = spawnSync(amtool, ['check-config', join(target, 'alertmanager.yml')], {
      encoding: 'utf8',
    });
    expect(`${check.stdout}${check.stderr}`).toContain('SUCCESS');
    expect(check.stdout).toContain('1 inhibit rules');
    expect(check.stdout).toContain('3 receivers');
    expect(check.stdout).toContain('1 templates');
    expect(check.status).toBe(0);

    // Secrets only in their own files, readable by the owner alone; never in the configuration.
    const config = readFileSync(join(target, 'alertmanager.yml'), 'utf8');
    const templates = readdirSync(join(target, 'templates'))
      .map((file) => readFileSync(join(target, 'templates', file), 'utf8'))
      .join('\n');
    for (const secret of [env['ALERT_SLACK_WEBHOOK_URL']!, env['ALERT_SMTP_PASSWORD']!]) {
      expect(config).not.toContain(secret);
      expect(templates).not.toContain(secret);
    }
    expect(readFileSync(join(target, 'secrets/slack_webhook_url'), 'utf8')).toBe(
      env['ALERT_SLACK_WEBHOOK_URL'],
    );
    expect(readFileSync(join(target, 'secrets/smtp_password'), 'utf8')).toBe(
      env['ALERT_SMTP_PASSWORD'],
    );
    expect(statSync(join(target, 'secrets/smtp_password')).mode & 0o077).toBe(0);
    expect(config).not.toMatch(/\$\{[A-Za-z_]/);
    expect(templates).toContain('https://runbooks.test/qcat/{{ . }}');
  });

  it('refuses to render while a setting is blank, naming every missing one', () => {
    const result = render(
      join(scratch, 'incomplete'),
      sampleEnvironment({ ALERT_SMTP_PASSWORD: '', ALERT_EMAIL_TO: '' }),
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('ALERT_EMAIL_TO');
    expect(result.stderr).toContain('ALERT_SMTP_PASSWORD');
    expect(existsSync(join(scratch, 'incomplete'))).toBe(false);
  });

  it('refuses a ${VARIABLE} it does not fill in, rather than leaving it in the configuration', () => {
    const source = join(scratch, 'source');
    cpSync(alertmanagerDir, source, { recursive: true });
    appendFileSync(join(source, 'alertmanager.yml'), '# ${ALERT_SMTP_PASSWORD}\n');
    const result = render(join(scratch, 'leaky'), sampleEnvironment(), source);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('ALERT_SMTP_PASSWORD');
  });

  it('routes critical alerts to the on-call receiver and everything else to the team', () => {
    const amtool = toolPath('amtool');
    const target = join(scratch, 'routes');
    expect(render(target, sampleEnvironment()).status).toBe(0);
    const receiver = (...labels: string[]): string =>
      spawnSync(
        amtool,
        [
          'config',
          'routes',
          'test',
          `--config.file=${join(target, 'alertmanager.yml')}`,
          ...labels,
        ],
        { encoding: 'utf8' },
      ).stdout.trim();
    expect(receiver('severity=critical', 'scope=qcat')).toBe('oncall');
    expect(receiver('severity=warning', 'scope=qcat')).toBe('team');
    expect(receiver('alertname=SomethingNew')).toBe('team');
    // The dead man's switch goes to its own receiver only, whatever its severity.
    expect(receiver('alertname=Watchdog', 'severity=none')).toBe('watchdog');
  });

  it('every template renders', () => {
    const amtool = toolPath('amtool');
    const target = join(scratch, 'templates');
    expect(render(target, sampleEnvironment()).status).toBe(0);
    for (const name of [
      'qcat.slack.title',
      'qcat.slack.text',
      'qcat.slack.color',
      'qcat.email.subject',
      'qcat.email.text',
      'qcat.email.html',
    ]) {
      const result = spawnSync(
        amtool,
        [
          'template',
          'render',
          `--template.glob=${join(target, 'templates/*.tmpl')}`,
          `--template.text={{ template "${name}" . }}`,
        ],
        { encoding: 'utf8' },
      );
      expect(result.stderr, name).toBe('');
      expect(result.stdout.trim().length, name).toBeGreaterThan(0);
      expect(result.status, name).toBe(0);
    }
  });
});

const slackMessage = z.looseObject({
  channel: z.string(),
  attachments: z.array(z.looseObject({ title: z.string(), text: z.string(), color: z.string() })),
});
type SlackMessage = z.infer<typeof slackMessage>;

const alertStatus = z.array(
  z.looseObject({
    labels: z.record(z.string(), z.string()),
    status: z.object({ state: z.string(), inhibitedBy: z.array(z.string()) }),
  }),
);

describeNeeding(['alertmanager'], 'a running Alertmanager with this configuration', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'qcat-alertmanager-run-'));
  const slack: SlackMessage[] = [];
  let slackServer: Server | undefined;
  let alertmanager: ChildProcess | undefined;
  let output = '';
  let url = '';

  beforeAll(async () => {
    const binary = toolPath('alertmanager');
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        slack.push(slackMessage.parse(JSON.parse(body)));
        response.writeHead(200).end('ok');
      });
    });
    slackServer = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');

    const target = join(scratch, 'config');
    const rendered = render(
      target,
      sampleEnvironment({ ALERT_SLACK_WEBHOOK_URL: `http://127.0.0.1:${address.port}/hook` }),
    );
    expect(rendered.status).toBe(0);
    // Alertmanager holds a new group's first notification for group_wait (30 s for the team, 10 s
    // for the on-call): what this test checks (routing, inhibition, templates) does not depend on
    // it, so the running copy waits 1 s instead. Everything else is the rendered file as it is.
    const configFile = join(target, 'alertmanager.yml');
    const config = readFileSync(configFile, 'utf8');
    const waits = [...config.matchAll(/^(\s*)group_wait: (\d+)s$/gm)].map((m) => Number(m[2]));
    expect(waits.filter((seconds) => seconds > 1).sort((a, b) => a - b)).toEqual([10, 30]);
    writeFileSync(
      configFile,
      config.replace(/^(\s*)group_wait: (\d+)s$/gm, (line, indent: string, seconds: string) =>
        Number(seconds) > 1 ? `${indent}group_wait: 1s` : line,
      ),
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.path=${join(scratch, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
        '--web.external-url=http://alertmanager.test/',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    alertmanager = child;
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually('Alertmanager to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`alertmanager exited:\n${output}`);
      const ready = await fetch(`${url}/-/ready`).catch(() => undefined);
      return ready?.ok ? true : undefined;
    });
  });

  afterAll(async () => {
    const child = alertmanager;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((resolve) => {
      if (slackServer)
        slackServer.close(() => {
          resolve();
        });
      else resolve();
    });
    rmSync(scratch, { recursive: true, force: true });
  });

  it('notifies the on-call channel, inhibits the warning of the same scope, and tells the team about the rest', async () => {
    const alert = (name: string, severity: string, scope: string, summary: string) => ({
      labels: { alertname: name, severity, scope, job: 'qcat' },
      annotations: {
        summary,
        description: `${name} for the test`,
        runbook: `docs/runbooks/api.md#runbook-${name.toLowerCase()}`,
      },
      generatorURL: 'http://prometheus.test/graph',
    });
    const posted = await fetch(`${url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        alert('QcatVeryHighErrorRate', 'critical', 'qcat', 'QCAT answers 10% of requests with 5xx'),
        alert('QcatHighErrorRate', 'warning', 'qcat', 'QCAT answers 10% of requests with 5xx'),
        alert('ProjectionLagHigh', 'warning', 'projection/audit_trail', 'audit_trail lags'),
      ]),
    });
    expect(posted.status).toBe(200);

    // The warning with the critical's scope is inhibited; the other warning is not.
    const states = await eventually('the warning to be inhibited', async () => {
      const response = await fetch(`${url}/api/v2/alerts`);
      const alerts = alertStatus.parse(await response.json());
      const byName = new Map(alerts.map((a) => [a.labels['alertname'], a.status]));
      return byName.get('QcatHighErrorRate')?.state === 'suppressed' ? byName : undefined;
    });
    expect(states.get('QcatHighErrorRate')?.inhibitedBy).toHaveLength(1);
    expect(states.get('QcatVeryHighErrorRate')?.state).toBe('active');
    expect(states.get('ProjectionLagHigh')?.state).toBe('active');

    const oncall = await eventually('the on-call Slack message', async () =>
      slack.find((m) => m.channel === '#qcat-oncall'),
    );
    const critical = oncall.attachments[0]!;
    expect(critical.title).toBe('[FIRING:1] QcatVeryHighErrorRate (qcat)');
    expect(critical.color).toBe('danger');
    expect(critical.text).toContain('*CRITICAL* QCAT answers 10% of requests with 5xx');
    expect(critical.text).toContain(
      'Runbook: <https://runbooks.test/qcat/docs/runbooks/api.md#runbook-qcatveryhigherrorrate|',
    );

    const team = await eventually('the team Slack message', async () =>
      slack.find((m) => m.channel === '#qcat-alerts'),
    );
    expect(team.attachments[0]!.title).toBe(
      '[FIRING:1] ProjectionLagHigh (projection/audit_trail)',
    );
    expect(team.attachments[0]!.color).toBe('warning');

    // Both notifications came, and neither mentions the inhibited warning.
    expect(JSON.stringify(slack)).not.toContain('QcatHighErrorRate');
  });
});
