/**
 * The backup services of a QCAT process, built from its configuration (the composition root's
 * part of backup/, ADR 027: backup/ takes plain options and imports nothing from ops/).
 */
import type pg from 'pg';
import { BackupService, backupDir, type BackupLogger } from '../backup/backup-service.js';
import { BackupExtras, type BackupExtrasOptions } from '../backup/extras.js';
import type { StoreInfo } from '../backup/take-backup.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import type { Metrics } from '../monitoring/metrics.js';
import { redact, type Config } from './config.js';
import { secretValues, settingsForBackup } from './config-snapshot.js';

/** Where the log is, without credentials, for the manifests. */
export function storeInfoOf(config: Config, databaseUrl: string): StoreInfo {
  return config.EVENT_STORE === 'eventstoredb' && config.EVENTSTORE_URL
    ? { adapter: 'eventstoredb', location: redact(config.EVENTSTORE_URL) }
    : { adapter: 'postgres', location: redact(databaseUrl) };
}

/** The backup service of a QCAT process, from its configuration. */
export function backupServiceFor(
  config: Config,
  parts: {
    store: EventStore;
    pool: pg.Pool;
    databaseUrl: string;
    metrics?: Metrics;
    log?: BackupLogger;
    afterScheduled?: (backupId: string | undefined) => Promise<void>;
  },
): BackupService {
  return new BackupService({
    store: parts.store,
    pool: parts.pool,
    connectionString: parts.databaseUrl,
    dir: backupDir(config),
    schedule: config.QCAT_BACKUP_SCHEDULE,
    retentionDays: config.QCAT_BACKUP_RETENTION_DAYS,
    storeInfo: storeInfoOf(config, parts.databaseUrl),
    ...(parts.metrics ? { metrics: parts.metrics } : {}),
    ...(parts.log ? { log: parts.log } : {}),
    ...(parts.afterScheduled ? { afterScheduled: parts.afterScheduled } : {}),
  });
}

/** The extras of a QCAT process, from its configuration. */
export function backupExtrasFor(
  config: Config,
  parts: { pool: pg.Pool; databaseUrl: string; log: BackupExtrasOptions['log'] },
): BackupExtras {
  return new BackupExtras({
    dir: backupDir(config),
    pool: parts.pool,
    connectionString: parts.databaseUrl,
    retentionDays: config.QCAT_BACKUP_RETENTION_DAYS,
    copyDir: config.QCAT_BACKUP_COPY_DIR,
    configDir: config.QCAT_CONFIG_DIR,
    configSchedule: config.QCAT_CONFIG_BACKUP_SCHEDULE,
    settings: () => settingsForBackup(config),
    secrets: () => secretValues(config),
    log: parts.log,
  });
}
