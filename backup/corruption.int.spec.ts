import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { BackupError } from './errors.js';
import type { Manifest } from './format.js';
import { restore } from './restore.js';
import { takeBackup } from './take-backup.js';
import { verifyBackups } from './verify.js';

const root = new URL('..', import.meta.url).pathname;

function qcat(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, qcatNodeArgs(...args), {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'silent', REDIS_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

const readManifest = (dir: string, id: string): Manifest =>
  JSON.parse(readFileSync(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
const writeManifest = (dir: string, manifest: Manifest): void => {
  writeFileSync(join(dir, manifest.backupId, 'manifest.json'), JSON.stringify(manifest, null, 2));
};

describe('damaged backups: verify and restore name the file and the reason; the target is untouched', () => {
  let source: TestDatabase;
  let target: TestDatabase;
  let store: PostgresEventStore;
  let targetPool: pg.Pool;
  let pristine: string;
  const dirs: string[] = [];
  let ids: { full: string; first: string; second: string };
  let head: bigint;

  beforeAll(async () => {
    [source, target] = await Promise.all([
      createTestDatabase('corrupt_source'),
      createTestDatabase('corrupt_target'),
    ]);
    store = await PostgresEventStore.connect({ connectionString: source.url });
    targetPool = new pg.Pool({ connectionString: target.url, max: 2 });
    targetPool.on('error', () => undefined); // DROP DATABASE ... WITH (FORCE) after end()
    pristine = mkdtempSync(join(tmpdir(), 'qcat-corrupt-'));
    dirs.push(pristine);
    const storeInfo = { adapter: 'postgres', location: 'test' };
    const write = async (count: number, label: string): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await store.appendToStream(`order-${label}_${i % 7}`, [
          {
            type: 'Probe',
            data: { label, i },
            metadata: { actor: 'tester', correlationId: randomUUID() },
          },
        ]);
      }
    };
    await write(120, 'a');
    const full = await takeBackup({
      store,
      dir: pristine,
      kind: 'full',
      storeInfo,
      segmentEvents: 50,
    });
    await write(60, 'b');
    const first = await takeBackup({
      store,
      dir: pristine,
      kind: 'incremental',
      storeInfo,
      segmentEvents: 50,
    });
    await write(30, 'c');
    const second = await takeBackup({
      store,
      dir: pristine,
      kind: 'incremental',
      storeInfo,
      segmentEvents: 50,
    });
    ids = { full: full.backupId, first: first.backupId, second: second.backupId };
    head = await store.headPosition();
    expect(full.segments).toHaveLength(3);
    expect((await verifyBackups(pristine)).ok).toBe(true);
  });

  afterAll(async () => {
    await store.close();
    await targetPool.end();
    await Promise.all([source.drop(), target.drop()]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the good backups to damage. */
  const copy = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'qcat-corrupt-'));
    dirs.push(dir);
    cpSync(pristine, dir, { recursive: true });
    return dir;
  };

  /** Nothing of QCAT's in the target database: no table, no schema. */
  async function expectUntouched(): Promise<void> {
    const { rows } = await targetPool.query<{ tables: number; schemas: number }>(
      `SELECT (SELECT count(*)::int FROM pg_tables
                WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS tables,
              (SELECT count(*)::int FROM pg_namespace
                WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')) AS schemas`,
    );
    expect(rows[0]).toEqual({ tables: 0, schemas: 0 });
  }

  async function expectFailure(dir: string, file: string, reason: RegExp): Promise<void> {
    const report = await verifyBackups(dir);
    expect(report.ok).toBe(false);
    const problems = report.backups.flatMap((check) => check.problems);
    expect(
      problems.some((problem) => problem.includes(file) && reason.test(problem)),
      problems.join('\n'),
    ).toBe(true);

    const failure = await restoreInto(dir, target.url);
    expect(failure).toBeInstanceOf(BackupError);
    expect((failure as Error).message).toContain(file);
    expect((failure as Error).message).toMatch(reason);
    await expectUntouched();
  }

  const restoreInto = (dir: string, url: string): Promise<unknown> =>
    restore({ dir, point: { position: head }, target: url, redisPrefix: 'unused:' }).then(
      () => undefined,
      (error: unknown) => error,
    );

  it('a flipped byte', async () => {
    const dir = copy();
    const path = join(dir, ids.full, 'segment-000002.ndjson.gz');
    const bytes = readFileSync(path);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    writeFileSync(path, bytes);
    await expectFailure(dir, `${ids.full}/segment-000002.ndjson.gz`, /SHA-256 mismatch/);
  });

  it('a truncated segment', async () => {
    const dir = copy();
    const path = join(dir, ids.first, 'segment-000001.ndjson.gz');
    const size = statSync(path).size;
    truncateSync(path, Math.floor(size / 2));
    await expectFailure(
      dir,
      `${ids.first}/segment-000001.ndjson.gz`,
      new RegExp(`truncated: ${Math.floor(size / 2)} bytes, the manifest says ${size}`),
    );
  });

  it('a missing segment', async () => {
    const dir = copy();
    rmSync(join(dir, ids.second, 'segment-000001.ndjson.gz'));
    await expectFailure(dir, `${ids.second}/segment-000001.ndjson.gz`, /missing/);
  });

  it('a manifest whose event count is wrong', async () => {
    const dir = copy();
    const manifest = readManifest(dir, ids.first);
    manifest.eventCount += 1;
    writeManifest(dir, manifest);
    await expectFailure(
      dir,
      `${ids.first}/manifest.json`,
      /eventCount is 61 but the segments hold 60 events/,
    );
  });

  it('a manifest that agrees with itself but not with its segment', async () => {
    const dir = copy();
    const manifest = readManifest(dir, ids.full);
    manifest.segments[1]!.count -= 1;
    manifest.eventCount -= 1;
    writeManifest(dir, manifest);
    await expectFailure(
      dir,
      `${ids.full}/segment-000002.ndjson.gz`,
      /holds 50 events, the manifest says 49/,
    );
  });

  it('a manifest that is not JSON', async () => {
    const dir = copy();
    const path = join(dir, ids.second, 'manifest.json');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 100));
    await expectFailure(dir, `${ids.second}/manifest.json`, /not valid JSON/);
  });

  it('events out of order in a segment whose hash was made to match', async () => {
    const dir = copy();
    const manifest = readManifest(dir, ids.full);
    const path = join(dir, ids.full, 'segment-000001.ndjson.gz');
    const lines = gunzipSync(readFileSync(path)).toString('utf8').split('\n');
    [lines[3], lines[4]] = [lines[4]!, lines[3]!];
    const forged = gzipSync(lines.join('\n'));
    writeFileSync(path, forged);
    manifest.segments[0]!.sha256 = createHash('sha256').update(forged).digest('hex');
    manifest.bytes += forged.length - manifest.segments[0]!.bytes;
    manifest.segments[0]!.bytes = forged.length;
    writeManifest(dir, manifest);
    const file = `${ids.full}/segment-000001.ndjson.gz`;
    const reason = /line 5: position 4 is not after 5/;
    const report = await verifyBackups(dir);
    const problems = report.backups.flatMap((check) => check.problems);
    // The incrementals on top cannot be restored without it: they fail too, saying why.
    expect(problems).toEqual([
      expect.stringMatching(reason),
      `${ids.first}: its chain cannot be restored: full backup ${ids.full} failed verification`,
      `${ids.second}: its chain cannot be restored: full backup ${ids.full}, incremental backup ${ids.first} failed verification`,
    ]);
    expect(problems[0]).toContain(file);

    // Files whole, so the restore finds it line by line during the import, and rolls it back: the
    // target was migrated, but holds no event and no read model.
    const fresh = await createTestDatabase('corrupt_forged');
    const pool = new pg.Pool({ connectionString: fresh.url, max: 1 });
    pool.on('error', () => undefined);
    try {
      const failure = await restoreInto(dir, fresh.url);
      expect(failure).toBeInstanceOf(BackupError);
      expect((failure as Error).message).toContain(file);
      expect((failure as Error).message).toMatch(reason);
      expect((failure as Error).message).toContain('nothing was imported');
      const { rows } = await pool.query<{ events: number; head: string; models: number }>(
        `SELECT (SELECT count(*)::int FROM qcat_events) AS events,
                (SELECT position::text FROM qcat_log_head) AS head,
                (SELECT count(*)::int FROM pg_namespace WHERE nspname LIKE 'qcat\\_p\\_%') AS models`,
      );
      expect(rows[0]).toEqual({ events: 0, head: '0', models: 0 });
    } finally {
      await pool.end();
      await fresh.drop();
    }
  });

  it('the CLI says which file and why, exits 1, and prints no stack trace', async () => {
    const dir = copy();
    rmSync(join(dir, ids.second, 'segment-000001.ndjson.gz'));
    const verify = await qcat(['backup', 'verify', '--dir', dir], {});
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`ok      ${ids.full}`);
    expect(verify.stdout).toContain(`FAILED  ${ids.second}`);
    expect(verify.stderr).toContain(
      `qcat: verify failed: 1 problem(s) in 1 of 3 backup(s) in ${dir}:\n  ${ids.second}/segment-000001.ndjson.gz: missing`,
    );
    expect(verify.stderr).not.toMatch(/^\s+at /m);

    const restored = await qcat(
      ['restore', '--to', head.toString(), '--from', dir, '--target', target.url],
      {},
    );
    expect(restored.code).toBe(1);
    expect(restored.stderr).toContain(`qcat: ${ids.second}/segment-000001.ndjson.gz: missing`);
    expect(restored.stderr).not.toMatch(/^\s+at /m);
    await expectUntouched();

    const good = await qcat(['backup', 'verify', '--dir', pristine], {});
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('all 3 backup(s)');
  });

  it('a store that already holds a log is refused and left as it was', async () => {
    const failure = await restoreInto(pristine, source.url);
    expect(failure).toBeInstanceOf(BackupError);
    expect((failure as Error).message).toMatch(
      new RegExp(
        `already holds a log \\(head at position ${head}\\); restore only into an empty store`,
      ),
    );
    expect(await store.headPosition()).toBe(head);
  });
});
