import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { chainStatuses, loadCatalog } from './catalog.js';
import { restore } from './restore.js';
import { NothingNewError, takeBackup } from './take-backup.js';
import { verifyBackups } from './verify.js';

/**
 * What the backup commands say must be true: `list` and `verify` do not call a backup ok that
 * cannot be restored, a backup of a broken log says so, an incremental with nothing new writes
 * nothing, and a restore that would restore nothing fails.
 */

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

describe('backup reports that tell the truth', () => {
  let source: TestDatabase;
  let store: PostgresEventStore;
  let pristine: string;
  let ids: { full: string; incremental: string };
  const dirs: string[] = [];
  const storeInfo = { adapter: 'postgres', location: 'test' };

  const write = async (count: number, label: string): Promise<void> => {
    for (let i = 0; i < count; i++)
      await store.appendToStream(`order-${label}_${(i % 5).toString()}`, [
        { type: 'Probe', data: { label, i }, metadata: { actor: 'tester' } },
      ]);
  };
  const copy = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'qcat-honest-'));
    dirs.push(dir);
    cpSync(pristine, dir, { recursive: true });
    return dir;
  };
  const flipByte = (path: string): void => {
    const bytes = readFileSync(path);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0x01;
    writeFileSync(path, bytes);
  };

  beforeAll(async () => {
    source = await createTestDatabase('backup_honest');
    store = await PostgresEventStore.connect({ connectionString: source.url });
    pristine = mkdtempSync(join(tmpdir(), 'qcat-honest-'));
    dirs.push(pristine);
    await write(30, 'a');
    const full = await takeBackup({
      store,
      dir: pristine,
      kind: 'full',
      storeInfo,
      segmentEvents: 10,
    });
    await write(10, 'b');
    const incremental = await takeBackup({ store, dir: pristine, kind: 'incremental', storeInfo });
    ids = { full: full.backupId, incremental: incremental.backupId };
    expect(full.logCheck).toEqual({ toPosition: '30', problem: null });
  }, 60_000);

  afterAll(async () => {
    await store.close();
    await source.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('list: a segment failing its SHA-256 is DAMAGED, and the incremental on it cannot be restored', async () => {
    const dir = copy();
    expect([...(await chainStatuses(await loadCatalog(dir))).values()]).toEqual([
      'ok (chain of 1)',
      'ok (chain of 2)',
    ]);
    flipByte(join(dir, ids.full, 'segment-000002.ndjson.gz'));
    const statuses = await chainStatuses(await loadCatalog(dir));
    expect(statuses.get(ids.full)).toMatch(
      new RegExp(`^DAMAGED: ${ids.full}/segment-000002.ndjson.gz: SHA-256 mismatch`),
    );
    expect(statuses.get(ids.incremental)).toBe(
      `chain cannot be restored: full backup ${ids.full} is damaged`,
    );
    const listed = await qcat(['backup', 'list', '--dir', dir], {});
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('DAMAGED');
    expect(listed.stdout).not.toMatch(/ok \(chain/);
  });

  it('verify: an incremental whose full base failed fails too, saying its chain cannot be restored', async () => {
    const dir = copy();
    flipByte(join(dir, ids.full, 'segment-000001.ndjson.gz'));
    const report = await verifyBackups(dir);
    const incremental = report.backups.find((check) => check.backupId === ids.incremental);
    expect(incremental?.problems).toEqual([
      `${ids.incremental}: its chain cannot be restored: full backup ${ids.full} failed verification`,
    ]);
    const verified = await qcat(['backup', 'verify', '--dir', dir], {});
    expect(verified.code).toBe(1);
    expect(verified.stdout).toContain(`FAILED  ${ids.incremental}`);
  });

  it('an incremental with nothing new writes nothing and says so', async () => {
    const dir = copy();
    const before = readdirSync(dir).sort();
    await expect(takeBackup({ store, dir, kind: 'incremental', storeInfo })).rejects.toBeInstanceOf(
      NothingNewError,
    );
    expect(readdirSync(dir).sort()).toEqual(before);
    const cli = await qcat(['backup', 'incremental', '--dir', dir], { DATABASE_URL: source.url });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`nothing new since backup ${ids.incremental}`);
    expect(cli.stdout).toContain('no backup written');
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('restore --to an instant before the first event fails and restores nothing', async () => {
    const target = await createTestDatabase('backup_honest_target');
    try {
      await expect(
        restore({
          dir: pristine,
          point: { instant: new Date('2000-01-01T00:00:00Z') },
          target: target.url,
          redisPrefix: 'unused:',
        }),
      ).rejects.toThrow(/nothing to restore: .* is before the first event in the backups/);
      const cli = await qcat(
        ['restore', '--to', '2000-01-01T00:00:00Z', '--from', pristine, '--target', target.url],
        { DATABASE_URL: target.url },
      );
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/qcat: nothing to restore: .* before the first event/);
      expect(cli.stderr).not.toMatch(/^\s+at /m);
    } finally {
      await target.drop();
    }
  });

  // Last: it alters the source log.
  it('a full backup of a log whose hash chain is broken warns and records the break', async () => {
    await store.pool.query(
      `UPDATE qcat_events SET data = jsonb_set(data, '{i}', '99') WHERE position = 7`,
    );
    const warnings: string[] = [];
    const dir = copy();
    const manifest = await takeBackup({
      store,
      dir,
      kind: 'full',
      storeInfo,
      warn: (message) => warnings.push(message),
    });
    expect(manifest.logCheck?.problem).toMatch(/^hash_mismatch at position 7: /);
    expect(warnings).toEqual([expect.stringContaining("the log's hash chain is broken")]);
    const cli = await qcat(['backup', 'full', '--dir', dir], { DATABASE_URL: source.url });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).toMatch(/qcat: warning: the log's hash chain is broken \(hash_mismatch/);
  });
});
