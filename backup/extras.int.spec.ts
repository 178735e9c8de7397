import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { BackupService } from './backup-service.js';
import { CONFIG_MANIFEST, isConfigFolder, type ConfigManifest } from './config-export.js';
import { BackupExtras } from './extras.js';
import { isBackupId } from './format.js';
import { BackupMaintenance, readStatus, registerMaintenanceMetrics } from './maintenance.js';
import { importMarketData, isMarketFolder, marketSnapshotProblems } from './market-export.js';
import { verifyBackups } from './verify.js';

const SECRET = 'Sup3r-secret-value-9f2c';

const metricValue = async (registry: Registry, name: string): Promise<number> => {
  const line = (await registry.metrics()).split('\n').find((row) => row.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not exported`);
  return Number(line.slice(name.length + 1));
};

/** Every file under a folder, with its content. */
function filesUnder(root: string): { path: string; text: string }[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const path = join(entry.parentPath, entry.name);
      return { path, text: readFileSync(path).toString('latin1') };
    });
}

const write = (root: string, path: string, text: string) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
};

/**
 * The schedule's extras on a real PostgreSQL: market data beside each scheduled backup, the weekly
 * configuration backup without secrets, and a verified copy of each in a second folder.
 */
describe('backup extras: market data, configuration, second copy', () => {
  let database: TestDatabase;
  let target: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  let root: string;
  let dir: string;
  let copyDir: string;
  let configDir: string;
  let service: BackupService;
  let extras: BackupExtras;
  const warnings: string[] = [];
  const registry = new Registry();
  const log = { info: () => undefined, warn: (m: string) => warnings.push(m) };

  beforeAll(async () => {
    database = await createTestDatabase('extras');
    target = await createTestDatabase('extras_target');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    pool.on('error', () => undefined);
    await ensureMarketSchema(pool);
    const market = new MarketDataStore(pool);
    await market.upsertInstruments([
      {
        symbol: 'BTCUSDT',
        base: 'BTC',
        quote: 'USDT',
        tickSize: 0.01,
        lotSize: 0.001,
        minNotional: 5,
      },
    ]);
    await market.insertCandles(
      Array.from({ length: 120 }, (_, i) => ({
        symbol: 'BTCUSDT',
        timeframe: '1m' as const,
        openTime: Date.UTC(2026, 0, 1) + i * 60_000,
        open: 100 + i,
        high: 101 + i,
        low: 99 + i,
        close: 100.5 + i,
        volume: 1 + i / 10,
      })),
    );
    for (let n = 1; n <= 4; n++)
      await store.appendToStream(`order-${n}`, [
        { type: 'Probe', data: { n }, metadata: { actor: 'tester' } },
      ]);
    root = mkdtempSync(join(tmpdir(), 'qcat-extras-'));
    dir = join(root, 'backups');
    copyDir = join(root, 'second-location');
    configDir = join(root, 'deployment');
    mkdirSync(dir);
    // The deployment as the repository lays it out, with secrets where they must not be taken from.
    write(
      configDir,
      'docker-compose.yml',
      'services:\n  qcat:\n    environment:\n      X: ${X:?}\n',
    );
    write(configDir, '.env', `POSTGRES_PASSWORD=${SECRET}\n`);
    write(configDir, '.env.example', 'POSTGRES_PASSWORD=\n');
    write(configDir, 'monitoring/prometheus/prometheus.yml', 'global: {}\n');
    write(configDir, 'monitoring/alertmanager/alertmanager.yml', 'route: {}\n');
    write(configDir, 'monitoring/grafana/provisioning/datasources.yml', `password: ${SECRET}\n`);
    write(configDir, 'ops/nginx/nginx.conf', 'events {}\n');
    write(configDir, 'ops/nginx/certs/privkey.pem', `-----BEGIN PRIVATE KEY-----\n${SECRET}\n`);
    extras = new BackupExtras({
      dir,
      pool,
      connectionString: database.url,
      retentionDays: 30,
      copyDir,
      configDir,
      configSchedule: '0 3 * * 0',
      settings: () => ({ DATABASE_URL: 'postgres://qcat_app:***@db/qcat', PORT: 8082 }),
      secrets: () => [SECRET],
      log,
    });
    service = new BackupService({
      store,
      pool,
      connectionString: database.url,
      dir,
      schedule: '0 2 * * *',
      retentionDays: 30,
      storeInfo: { adapter: 'postgres', location: 'test' },
      afterScheduled: (backupId) => extras.afterScheduledBackup(backupId),
    });
    registerMaintenanceMetrics(registry, dir);
  });

  afterAll(async () => {
    await service.stop();
    await extras.stop();
    await pool.end();
    await store.close();
    await database.drop();
    await target.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a scheduled run backs up the log and the market data, and copies both, verified', async () => {
    expect(await metricValue(registry, 'backup_market_last_success_timestamp_seconds')).toBe(0);
    await service.startSchedule();
    expect(service.leadsSchedule).toBe(true);
    await service.fireSchedule();
    const backups = readdirSync(dir).filter(isBackupId);
    const snapshots = readdirSync(dir).filter(isMarketFolder);
    expect(backups).toHaveLength(1);
    expect(snapshots).toHaveLength(1);
    expect(readdirSync(copyDir).sort()).toEqual([...backups, ...snapshots].sort());
    expect(await marketSnapshotProblems(join(copyDir, snapshots[0] ?? ''))).toEqual([]);
    const copied = await verifyBackups(copyDir);
    expect(copied.ok).toBe(true);
    expect(copied.backups).toHaveLength(1);
    expect(
      await metricValue(registry, 'backup_market_last_success_timestamp_seconds'),
    ).toBeGreaterThan(0);
    expect(
      await metricValue(registry, 'backup_copy_last_success_timestamp_seconds'),
    ).toBeGreaterThan(0);
    expect(warnings).toEqual([]);
  });

  it('the copied market snapshot loads into an empty database, once', async () => {
    const snapshot = readdirSync(copyDir).find(isMarketFolder) ?? '';
    const targetPool = new pg.Pool({ connectionString: target.url, max: 2 });
    try {
      await ensureMarketSchema(targetPool);
      expect(await importMarketData(targetPool, join(copyDir, snapshot))).toEqual({
        instruments: 1,
        feeds: 0,
        candles: 120,
      });
      const sum = 'SELECT count(*)::int AS n, sum(close)::float8 AS s FROM qcat_market.candles';
      expect((await targetPool.query(sum)).rows).toEqual((await pool.query(sum)).rows);
      // Loading again keeps what is stored.
      expect((await importMarketData(targetPool, join(copyDir, snapshot))).candles).toBe(0);
    } finally {
      await targetPool.end();
    }
  });

  it('a damaged market snapshot is refused before anything loads', async () => {
    const snapshot = readdirSync(copyDir).find(isMarketFolder) ?? '';
    const damaged = join(root, 'damaged');
    rmSync(damaged, { recursive: true, force: true });
    mkdirSync(damaged);
    for (const file of readdirSync(join(copyDir, snapshot)))
      writeFileSync(join(damaged, file), readFileSync(join(copyDir, snapshot, file)));
    appendFileSync(join(damaged, 'candles.csv.gz'), 'x');
    expect(await marketSnapshotProblems(damaged)).toEqual(['candles.csv.gz: size differs']);
    await expect(importMarketData(pool, damaged)).rejects.toThrow(/candles\.csv\.gz: size differs/);
  });

  it('backs up the configuration without a single secret, and copies it', async () => {
    expect(await extras.configBackup()).toBe(true);
    const folder = readdirSync(dir).find(isConfigFolder) ?? '';
    expect(folder).not.toBe('');
    const manifest = JSON.parse(
      readFileSync(join(dir, folder, CONFIG_MANIFEST), 'utf8'),
    ) as ConfigManifest;
    expect(manifest.files.map((f) => f.path).sort()).toEqual([
      '.env.example',
      'docker-compose.yml',
      'monitoring/alertmanager/alertmanager.yml',
      'monitoring/prometheus/prometheus.yml',
      'ops/nginx/nginx.conf',
      'qcat-settings.json',
    ]);
    expect(manifest.excluded).toEqual([
      { path: 'monitoring/grafana/provisioning/datasources.yml', reason: 'holds a secret value' },
    ]);
    for (const where of [join(dir, folder), join(copyDir, folder)]) {
      const files = filesUnder(where);
      expect(files.length).toBeGreaterThan(5);
      expect(files.filter((file) => file.text.includes(SECRET)).map((f) => f.path)).toEqual([]);
    }
    expect((await readStatus(dir)).config?.lastSuccess).toBeDefined();
  });

  it('the daily verify checks the copy too: a damaged copy fails it', async () => {
    const maintenance = new BackupMaintenance({
      dir,
      copyDir,
      connectionString: database.url,
      verifySchedule: '30 3 * * *',
      drillSchedule: '0 4 1 * *',
      drillUrl: undefined,
      redisPrefix: 'qcat-test-extras:',
      log,
    });
    expect(await maintenance.verify()).toBe(true);
    const backup = readdirSync(copyDir).find(isBackupId) ?? '';
    const segment = readdirSync(join(copyDir, backup)).find((f) => f.startsWith('segment-')) ?? '';
    appendFileSync(join(copyDir, backup, segment), 'x');
    expect(await maintenance.verify()).toBe(false);
    expect((await readStatus(dir)).verify?.lastProblem).toContain(copyDir);
  });

  it('a copy that cannot be written is a recorded failure, not a lost backup', async () => {
    const blocked = new BackupExtras({
      dir,
      pool,
      connectionString: database.url,
      retentionDays: 30,
      copyDir: join(configDir, 'docker-compose.yml', 'not-a-folder'),
      configDir,
      configSchedule: '0 3 * * 0',
      settings: () => ({}),
      secrets: () => [],
      log,
      now: () => new Date(Date.now() + 60_000), // a folder of its own, a minute later
    });
    expect(await blocked.configBackup()).toBe(false);
    expect(warnings.at(-1)).toMatch(/^backups: copy failed: /);
    expect(
      await metricValue(registry, 'backup_copy_last_failure_timestamp_seconds'),
    ).toBeGreaterThan(0);
    expect(readdirSync(dir).filter(isConfigFolder).length).toBeGreaterThan(0);
  });
});
