import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../ops/embedded-postgres.js';
import { qcatNodeArgs } from './support/qcat-build.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

/**
 * Exit codes are how scripts, CI and operators learn that something failed. Every run here is a
 * real process; "embedded" means DATABASE_URL and TEST_DATABASE_URL are blank in its environment,
 * so it starts the embedded PostgreSQL as the README's default does (its package once turned every
 * such exit code into 0).
 */

const root = new URL('..', import.meta.url).pathname;

interface Run {
  code: number | null;
  output: string;
  stdout: string;
}

function run(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      resolve({ code, output, stdout });
    });
  });
}

const embeddedEnv = { DATABASE_URL: '', TEST_DATABASE_URL: '' };

describe('the test command (npm test) with the embedded PostgreSQL', () => {
  // A fixture spec (test/fixtures/, collected only with QCAT_TEST_FIXTURES=1) that uses the run's
  // database and then passes or fails as told.
  const npmTest = (outcome: 'pass' | 'fail'): Promise<Run> =>
    run('npm', ['test', '--', '--project', 'int', 'test/fixtures/exit-codes/'], {
      ...embeddedEnv,
      QCAT_TEST_FIXTURES: '1',
      QCAT_FIXTURE_OUTCOME: outcome,
    });

  it('exits 1 when a test fails, and 0 when all pass', async () => {
    const failed = await npmTest('fail');
    expect(failed.output).toMatch(/Tests\s.*1 failed/);
    expect(failed.output).toContain('this fixture fails on purpose');
    expect(failed.code, failed.output).toBe(1);

    const passed = await npmTest('pass');
    expect(passed.output).toMatch(/Tests\s.*1 passed/);
    expect(passed.code, passed.output).toBe(0);
  }, 180_000);
});

/** The embedded cluster's data folder, or a database on the test server as DATABASE_URL. */
interface Mode {
  env: Record<string, string>;
  /** SQL on the mode's database while no CLI command runs. */
  sql(text: string): Promise<void>;
  close(): Promise<void>;
}

async function embeddedMode(): Promise<Mode> {
  const parent = mkdtempSync(join(tmpdir(), 'qcat-exit-codes-'));
  chmodSync(parent, 0o711); // as root the embedded server runs as `postgres`, which must pass through
  const dataDir = join(parent, 'data');
  return {
    env: { ...embeddedEnv, QCAT_DATA_DIR: dataDir, REDIS_URL: '' },
    sql: async (text) => {
      const server = await startEmbeddedPostgres({ dataDir, persistent: true });
      const client = new pg.Client({ connectionString: server.url });
      try {
        await client.connect();
        await client.query(text);
      } finally {
        await client.end();
        await server.stop();
      }
    },
    close: () => {
      rmSync(parent, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

async function externalMode(): Promise<Mode> {
  const database: TestDatabase = await createTestDatabase('exit_codes');
  return {
    env: { DATABASE_URL: database.url, REDIS_URL: '' },
    sql: async (text) => {
      const client = new pg.Client({ connectionString: database.url });
      try {
        await client.connect();
        await client.query(text);
      } finally {
        await client.end();
      }
    },
    close: () => database.drop(),
  };
}

describe.each([
  ['embedded', embeddedMode],
  ['external', externalMode],
] as const)('qcat CLI exit codes with the %s PostgreSQL', (name, open) => {
  let mode: Mode;
  const backups = mkdtempSync(join(tmpdir(), `qcat-exit-codes-backups-${name}-`));
  const qcat = (...args: string[]): Promise<Run> =>
    run(process.execPath, qcatNodeArgs(...args), mode.env);

  beforeAll(async () => {
    mode = await open();
  });
  afterAll(async () => {
    await mode.close();
    rmSync(backups, { recursive: true, force: true });
  });

  it('0 when commands succeed; backup verify 1 on a damaged backup', async () => {
    const created = await qcat('keys', 'create', '--role', 'auditor', '--name', 'exit-codes');
    expect(created.code, created.output).toBe(0);
    const intact = await qcat('audit', 'verify');
    expect(intact.stdout).toContain('log intact');
    expect(intact.code, intact.output).toBe(0);

    const full = await qcat('backup', 'full', '--dir', backups);
    expect(full.code, full.output).toBe(0);
    const good = await qcat('backup', 'verify', '--dir', backups);
    expect(good.stdout).toMatch(/^ok {6}/m);
    expect(good.code, good.output).toBe(0);

    const [backupId = ''] = readdirSync(backups);
    const segment = readdirSync(join(backups, backupId)).find((file) =>
      file.startsWith('segment-'),
    );
    expect(segment).toBeDefined();
    const path = join(backups, backupId, segment ?? '');
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const damaged = await qcat('backup', 'verify', '--dir', backups);
    expect(damaged.stdout).toContain(`FAILED  ${backupId}`);
    expect(damaged.code, damaged.output).toBe(1);
  }, 240_000);

  it('1 when a command refuses, 2 when audit verify finds an altered log', async () => {
    const unknownKey = await qcat('keys', 'revoke', 'zzzzzzzzzzzzzzzz');
    expect(unknownKey.output).toContain('API_KEY_NOT_FOUND');
    expect(unknownKey.code).toBe(1);

    // What `qcat migrate` needs is DATABASE_URL: it refuses without one (exit 1) and works with one.
    const migrated = await qcat('migrate');
    expect(migrated.code, migrated.output).toBe(name === 'embedded' ? 1 : 0);

    await mode.sql(
      `UPDATE qcat_events SET data = data || '{"name":"someone else"}'
        WHERE position = (SELECT max(position) FROM qcat_events)`,
    );
    const broken = await qcat('audit', 'verify');
    expect(broken.stdout).toMatch(/BROKEN at position \d+ .*: hash_mismatch/);
    expect(broken.code, broken.output).toBe(2);
  }, 240_000);
});
