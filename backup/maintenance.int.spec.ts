import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { BackupService } from './backup-service.js';
import { isBackupId } from './format.js';
import { BackupMaintenance, readStatus, registerMaintenanceMetrics } from './maintenance.js';

const metricValue = async (registry: Registry, name: string): Promise<number> => {
  const line = (await registry.metrics()).split('\n').find((row) => row.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not exported`);
  return Number(line.slice(name.length + 1));
};

/** The scheduled verify and restore drill, on real backups of a real log, into a real scratch database. */
describe('backup maintenance: scheduled verify and restore drill', () => {
  let database: TestDatabase;
  let scratch: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  let dir: string;
  let backups: BackupService;
  const warnings: string[] = [];
  const maintenance = (drillUrl: string | undefined) =>
    new BackupMaintenance({
      dir,
      connectionString: database.url,
      verifySchedule: '30 3 * * *',
      drillSchedule: '0 4 1 * *',
      drillUrl,
      redisPrefix: 'qcat-test-maintenance:',
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
    });

  beforeAll(async () => {
    database = await createTestDatabase('maintenance');
    scratch = await createTestDatabase('maintenance_drill');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    pool.on('error', () => undefined);
    dir = mkdtempSync(join(tmpdir(), 'qcat-maintenance-'));
    for (let n = 1; n <= 5; n++)
      await store.appendToStream(`order-${n}`, [
        { type: 'Probe', data: { n }, metadata: { actor: 'tester' } },
      ]);
    backups = new BackupService({
      store,
      pool,
      connectionString: database.url,
      dir,
      schedule: '0 2 * * *',
      retentionDays: 30,
      storeInfo: { adapter: 'postgres', location: 'test' },
    });
    await backups.run('full');
  });

  afterAll(async () => {
    await backups.stop();
    await pool.end();
    await store.close();
    await database.drop();
    await scratch.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gauges say 0 (never) before any run', async () => {
    const registry = new Registry();
    registerMaintenanceMetrics(registry, dir);
    expect(await metricValue(registry, 'backup_verify_last_success_timestamp_seconds')).toBe(0);
    expect(await metricValue(registry, 'backup_restore_drill_last_success_timestamp_seconds')).toBe(
      0,
    );
  });

  it('drills a restore into the scratch database and empties it again', async () => {
    expect(await maintenance(scratch.url).drill()).toBe(true);
    const status = await readStatus(dir);
    expect(status.drill?.lastSuccess).toBeDefined();
    const registry = new Registry();
    registerMaintenanceMetrics(registry, dir);
    expect(
      await metricValue(registry, 'backup_restore_drill_last_success_timestamp_seconds'),
    ).toBeGreaterThan(Date.now() / 1000 - 60);
    const client = new pg.Client({ connectionString: scratch.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ found: string | null }>(
        "SELECT to_regclass('qcat_events')::text AS found",
      );
      expect(rows[0]?.found).toBeNull();
    } finally {
      await client.end();
    }
  });

  it('without a scratch database the drill does not run and does not count as a success', async () => {
    const before = (await readStatus(dir)).drill?.lastSuccess;
    expect(await maintenance(undefined).drill()).toBe(false);
    expect((await readStatus(dir)).drill?.lastSuccess).toBe(before);
    expect(warnings.at(-1)).toContain('QCAT_RESTORE_DRILL_URL is not set');
  });

  it('verifies every backup daily; a damaged segment is a failure, with the problem recorded', async () => {
    expect(await maintenance(scratch.url).verify()).toBe(true);
    const ok = await readStatus(dir);
    expect(ok.verify?.lastSuccess).toBeDefined();
    expect(ok.verify?.lastFailure).toBeUndefined();

    const backup = readdirSync(dir).find(isBackupId)!;
    const segment = readdirSync(join(dir, backup)).find((name) => name !== 'manifest.json')!;
    appendFileSync(join(dir, backup, segment), 'garbage');
    expect(await maintenance(scratch.url).verify()).toBe(false);
    const failed = await readStatus(dir);
    expect(failed.verify?.lastSuccess).toBe(ok.verify?.lastSuccess);
    expect(failed.verify?.lastFailure).toBeDefined();
    expect(failed.verify?.lastProblem).toContain(backup);
    const registry = new Registry();
    registerMaintenanceMetrics(registry, dir);
    expect(
      await metricValue(registry, 'backup_verify_last_failure_timestamp_seconds'),
    ).toBeGreaterThan(0);
  });
});
