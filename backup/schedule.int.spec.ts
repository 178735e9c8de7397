import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { Metrics } from '../monitoring/metrics.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { BackupService, FULL_EVERY_DAYS, type BackupServiceOptions } from './backup-service.js';
import { isBackupId, type Manifest } from './format.js';

const metricValue = async (metrics: Metrics, name: string): Promise<number> => {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not exported`);
  return Number(line.slice(name.length + 1));
};

describe('backup schedule, run lock and metrics', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  let dir: string;
  const services: BackupService[] = [];

  const service = (extra: Partial<BackupServiceOptions> = {}): BackupService => {
    const created = new BackupService({
      store,
      pool,
      connectionString: database.url,
      dir,
      schedule: '0 2 * * *',
      retentionDays: 30,
      storeInfo: { adapter: 'postgres', location: 'test' },
      ...extra,
    });
    services.push(created);
    return created;
  };

  const backups = (): string[] => readdirSync(dir).filter(isBackupId).sort();

  beforeAll(async () => {
    database = await createTestDatabase('backup_schedule');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    pool.on('error', () => undefined); // DROP DATABASE ... WITH (FORCE) after end()
    dir = mkdtempSync(join(tmpdir(), 'qcat-schedule-'));
    await store.appendToStream('order-1', [
      { type: 'Probe', data: { n: 1 }, metadata: { actor: 'tester' } },
    ]);
  });

  afterAll(async () => {
    for (const created of services) await created.stop();
    await pool.end();
    await store.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gauges read 0 until a backup succeeded, and failures are counted', async () => {
    const metrics = new Metrics();
    const backups_ = service({ metrics });
    expect(await metricValue(metrics, 'backup_last_success_timestamp_seconds')).toBe(0);
    await expect(backups_.run('incremental')).rejects.toThrow(
      /no backup to build an incremental on/,
    );
    expect(await metricValue(metrics, 'backup_failures_total')).toBe(1);

    // Another backup holds the run lock: this one is refused, and counted.
    const other = await pool.connect();
    try {
      await other.query("SELECT pg_advisory_lock(hashtextextended('qcat.backup.run', 0))");
      await expect(backups_.run('full')).rejects.toThrow(/another backup is running/);
    } finally {
      await other.query("SELECT pg_advisory_unlock(hashtextextended('qcat.backup.run', 0))");
      other.release();
    }
    expect(await metricValue(metrics, 'backup_failures_total')).toBe(2);
    expect(backups()).toEqual([]);
  });

  it('runs the schedule only in the process that leads it; another takes over when it goes', async () => {
    const first = service();
    const second = service();
    await first.startSchedule();
    await second.startSchedule();
    expect([first.leadsSchedule, second.leadsSchedule]).toEqual([true, false]);

    await second.fireSchedule();
    expect(backups()).toEqual([]);
    await first.fireSchedule();
    expect(backups()).toHaveLength(1);
    expect(backups()[0]).toMatch(/-full-/);

    await first.stop(); // its lock connection closes, as when a process dies
    await store.appendToStream('order-1', [
      { type: 'Probe', data: { n: 2 }, metadata: { actor: 'tester' } },
    ]);
    await second.fireSchedule();
    expect(second.leadsSchedule).toBe(true);
    expect(backups()).toHaveLength(2);
    expect(backups()[1]).toMatch(/-incremental-/);

    // A week after the chain's full backup, the schedule starts a new chain.
    const later = service({ now: () => new Date(Date.now() + FULL_EVERY_DAYS * 86_400_000) });
    expect(await later.scheduledKind()).toBe('full');
    expect(await second.scheduledKind()).toBe('incremental');
  });

  it('a restarted process shows the newest backup in its gauges', async () => {
    const newest = backups().at(-1)!;
    const manifest = JSON.parse(
      readFileSync(join(dir, newest, 'manifest.json'), 'utf8'),
    ) as Manifest;
    const metrics = new Metrics(); // a fresh process: nothing set in memory
    service({ metrics });
    expect(await metricValue(metrics, 'backup_last_success_timestamp_seconds')).toBe(
      Date.parse(manifest.completedAt) / 1000,
    );
    expect(await metricValue(metrics, 'backup_last_duration_seconds')).toBe(
      manifest.durationSeconds,
    );
    expect(await metricValue(metrics, 'backup_last_size_bytes')).toBe(manifest.bytes);
    expect(manifest.bytes).toBeGreaterThan(0);
  });
});
