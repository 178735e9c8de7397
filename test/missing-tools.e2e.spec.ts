import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { describeNeeding } from './support/tools.js';

/**
 * What `npm test` does about the tools and the Redis some specs need (test/support/tools.ts,
 * test/support/environment-setup.ts), run as a child `vitest` on a fixture spec
 * (test/fixtures/tools/) that needs promtool, needs Redis, and needs nothing. Tools are hidden with
 * QCAT_TEST_HIDE_TOOLS; QCAT_TEST_INSTALL=no keeps the setup from installing them again.
 */

const root = new URL('..', import.meta.url).pathname;

function npmTest(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['test', '--', '--project', 'int', 'test/fixtures/tools/'], {
      cwd: root,
      env: {
        ...process.env,
        QCAT_TEST_FIXTURES: '1',
        QCAT_TEST_INSTALL: 'no',
        CI: '',
        REDIS_URL: '',
        TEST_REDIS_URL: '',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      resolve({ code, output });
    });
  });
}

const hidden = { QCAT_TEST_HIDE_TOOLS: 'promtool,redis-server' };

describe('tools and Redis the tests need', () => {
  it('skips what needs a missing tool or Redis, saying what to install; the rest runs and the run passes', async () => {
    const run = await npmTest(hidden);
    expect(run.output).toContain(
      'skipped "needs promtool": needs promtool, not found: apt-get install prometheus',
    );
    expect(run.output).toContain(
      'skipped "needs Redis": needs redis, not found: apt-get install redis-server (or set REDIS_URL)',
    );
    expect(run.output).toMatch(/test setup: missing promtool, (.*, )?redis-server, (.*, )?redis;/);
    expect(run.output).toMatch(/Tests\s.*1 passed.*2 skipped/);
    expect(run.code, run.output).toBe(0);
  }, 120_000);

  it('with CI=true a missing tool is a failure, not a skip', async () => {
    const run = await npmTest({ ...hidden, CI: 'true' });
    expect(run.output).toContain('CI=true: a missing tool is a failure');
    expect(run.output).toMatch(/Tests\s.*2 failed.*1 passed/);
    expect(run.code, run.output).toBe(1);
  }, 120_000);
});

describeNeeding(['redis-server', 'promtool'], 'a throw-away Redis', () => {
  it('starts when REDIS_URL is unset, serves the specs, and stops at the end', async () => {
    const run = await npmTest({});
    const url = /started a throw-away Redis at (redis:\/\/127\.0\.0\.1:\d+)/.exec(run.output)?.[1];
    expect(url, run.output).toBeDefined();
    expect(run.output).toContain(`fixture used ${url ?? ''}`);
    expect(run.output).toMatch(/Tests\s.*3 passed/);
    expect(run.code, run.output).toBe(0);
    // Stopped: its port refuses connections.
    const port = Number(new URL(url ?? '').port);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        resolve(error.code ?? error.message);
      });
    });
    expect(refused).toBe('ECONNREFUSED');
  }, 120_000);
});
