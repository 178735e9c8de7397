import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { qcatNodeArgs } from './support/qcat-build.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { describeNeeding } from './support/tools.js';

/**
 * docs/user-guide.md's shell examples, run as a reader would: every ```sh block, in order, in one
 * bash (set -euo pipefail) against a fresh `qcat serve`, with `qcat` on the PATH. Every call uses
 * curl --fail-with-body, so any answer that is not 2xx stops the run with its problem printed.
 */

const root = new URL('..', import.meta.url).pathname;
const guide = readFileSync(join(root, 'docs/user-guide.md'), 'utf8');
const blocks = [...guide.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '');

/** Two Binance kline files of three 1-minute bars each, for the guide's import example. */
function klineFile(path: string, start: string): void {
  const first = Date.parse(start);
  const lines = [0, 1, 2].map((i) => {
    const open = first + i * 60_000;
    return [open, '94000.10', '94100.00', '93900.00', '94050.00', '12.5', open + 59_999]
      .concat(['1175000.0', '321', '6.1', '573000.0', '0'])
      .join(',');
  });
  writeFileSync(path, `${lines.join('\n')}\n`);
}

describeNeeding(['curl', 'jq'], 'docs/user-guide.md, run against a real server', () => {
  let database: TestDatabase;
  let qcat: QcatProcess;
  const scratch = mkdtempSync(join(tmpdir(), 'qcat-user-guide-'));

  beforeAll(async () => {
    database = await createTestDatabase('user_guide');
    qcat = await startQcat({ DATABASE_URL: database.url, REDIS_URL: '', LOG_LEVEL: 'info' });
    const bin = join(scratch, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'qcat'),
      // By absolute paths: `qcat` runs in another folder.
      `#!/bin/sh\nexec "${[process.execPath, ...qcatNodeArgs()].join('" "')}" "$@"\n`,
    );
    chmodSync(join(bin, 'qcat'), 0o755);
    klineFile(join(scratch, 'BTCUSDT-1m-2025-01.csv'), '2025-01-31T23:57:00Z');
    klineFile(join(scratch, 'BTCUSDT-1m-2025-02.csv'), '2025-02-01T00:00:00Z');
  });
  afterAll(async () => {
    await qcat.stop();
    await database.drop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('has its examples in sh blocks, none with a placeholder or the wrong port', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const block of blocks) {
      expect(block).not.toMatch(/qcat_\.\.\.|<[a-zA-Z]+>|…|:8080/);
    }
  });

  it('every example runs and answers what the guide says', async () => {
    const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1];
    const admin = /Token \(shown only now\): (qcat_\S+)/.exec(qcat.output())?.[1];
    expect(url, qcat.output()).toBeDefined();
    expect(admin, qcat.output()).toBeDefined();
    const script = [
      'set -euo pipefail',
      ...blocks.flatMap((block, index) => [`echo "### block ${index + 1}"`, block]),
      'echo "### done"',
    ].join('\n');
    const run = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', script], {
        cwd: scratch,
        env: {
          ...process.env,
          PATH: `${join(scratch, 'bin')}:${process.env['PATH'] ?? ''}`,
          QCAT: url ?? '',
          ADMIN: admin ?? '',
          DATABASE_URL: database.url,
          REDIS_URL: '',
          LOG_LEVEL: 'warn',
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
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('### done');
    const section = (n: number): string =>
      run.output.slice(
        run.output.indexOf(`### block ${n}\n`),
        run.output.indexOf(`### block ${n + 1}\n`) >= 0
          ? run.output.indexOf(`### block ${n + 1}\n`)
          : undefined,
      );
    // The worked example: the strategy went live, and its history names every step.
    expect(section(1)).toMatch(/^live$/m);
    expect(section(1)).toContain('"type":"StrategyPromotedToLive"');
    // The kill switch: engaged, then released through a second risk officer's approval.
    expect(section(2)).toMatch(/"status":"approved"/);
    // Market data generated, then imported from the two files.
    expect(run.output).toMatch(/BTCUSDT/);
    // The backtest ran over the generated candles.
    expect(run.output).toMatch(/"status":"completed"/);
  }, 600_000);

  it('takes an empty JSON body as none where a command has no body, and refuses it where it needs one', async () => {
    const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1] ?? '';
    const admin = /Token \(shown only now\): (qcat_\S+)/.exec(qcat.output())?.[1] ?? '';
    const post = (path: string): Promise<Response> =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      });
    // No body needed: the command runs (here it is refused for what it is: no such strategy).
    const submit = await post('/api/v1/strategies/00000000-0000-4000-8000-000000000000/submit');
    expect(((await submit.json()) as { code: string }).code).not.toBe('EMPTY_BODY');
    // A body needed: 400 EMPTY_BODY, as before.
    const key = await post('/api/v1/keys');
    expect(key.status).toBe(400);
    expect(((await key.json()) as { code: string }).code).toBe('EMPTY_BODY');
  });
});
