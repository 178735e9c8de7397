/**
 * What the backup schedule does beside the log backups (issue 21, ADR 024): after every scheduled
 * run, a market-data snapshot (backup/market-export.ts); weekly, on a schedule of its own, the
 * configuration (backup/config-export.ts); and a verified copy of each finished folder in the
 * second location (backup/folder-copy.ts). Outcomes go to the maintenance status file, read by the
 * gauges of every replica. Only the leader of each schedule runs them.
 */
import type pg from 'pg';
import { exportConfiguration } from './config-export.js';
import { copyAndVerify, pruneDatedFolders } from './folder-copy.js';
import { recordJob, type MaintenanceJob } from './maintenance.js';
import { exportMarketData } from './market-export.js';
import { applyRetention } from './retention.js';
import { BackupScheduler } from './schedule.js';

export interface BackupExtrasOptions {
  dir: string;
  pool: pg.Pool;
  /** The schedule's lock connection. */
  connectionString: string;
  retentionDays: number;
  /** QCAT_BACKUP_COPY_DIR; unset: no second copy. */
  copyDir?: string | undefined;
  /** QCAT_CONFIG_DIR; unset: no configuration backup. */
  configDir?: string | undefined;
  configSchedule: string;
  /** QCAT's settings, redacted, for the configuration backup. */
  settings: () => Record<string, unknown>;
  /** Values no backup may hold (passwords of the configured connections). */
  secrets: () => string[];
  log: { info(message: string): void; warn(message: string): void };
  now?: () => Date;
}

export class BackupExtras {
  private scheduler: BackupScheduler | undefined;

  constructor(private readonly options: BackupExtrasOptions) {}

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  /** Runs one job, records its outcome; answers what it made, or undefined when it failed. */
  private async job<T>(job: MaintenanceJob, work: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await work();
      await recordJob(this.options.dir, job, undefined, this.now());
      return result;
    } catch (error) {
      const problem = (error as Error).message;
      await recordJob(this.options.dir, job, problem, this.now()).catch(() => undefined);
      this.options.log.warn(`backups: ${job} failed: ${problem}`);
      return undefined;
    }
  }

  /** Copies finished folders to the second location and verifies each copy; then retention there. */
  async copy(names: readonly string[]): Promise<boolean> {
    const { copyDir, dir, retentionDays, log } = this.options;
    if (!copyDir || names.length === 0) return true;
    const done = await this.job('copy', async () => {
      for (const name of names) await copyAndVerify(dir, name, copyDir);
      const now = this.now();
      await applyRetention(copyDir, retentionDays, now);
      await pruneDatedFolders(copyDir, 'market-', retentionDays, now);
      await pruneDatedFolders(copyDir, 'config-', retentionDays, now);
      return true;
    });
    if (done) log.info(`backups: copied and verified ${names.join(', ')} in ${copyDir}`);
    return done === true;
  }

  /**
   * After each scheduled backup run (whether or not the log gained anything: candles arrive
   * outside it): a market-data snapshot, then the copies of what the run wrote.
   */
  async afterScheduledBackup(backupId: string | undefined): Promise<void> {
    const { dir, pool, retentionDays, log } = this.options;
    const snapshot = await this.job('market', async () => {
      const result = await exportMarketData(pool, dir, this.now());
      await pruneDatedFolders(dir, 'market-', retentionDays, this.now());
      return result;
    });
    if (snapshot)
      log.info(
        `backups: market data ${snapshot.folder}: ${snapshot.manifest.files.map((f) => `${f.rows} ${f.table}`).join(', ')}`,
      );
    await this.copy([...(backupId ? [backupId] : []), ...(snapshot ? [snapshot.folder] : [])]);
  }

  /** The configuration backup, then its copy; true when both succeeded. */
  async configBackup(): Promise<boolean> {
    const { dir, configDir, retentionDays, log } = this.options;
    if (!configDir) {
      log.warn('backups: configuration backup skipped: QCAT_CONFIG_DIR is not set');
      return false;
    }
    const written = await this.job('config', async () => {
      const result = await exportConfiguration({
        sourceDir: configDir,
        dir,
        settings: this.options.settings(),
        secrets: this.options.secrets(),
        now: this.now(),
      });
      // Kept as long as log backups, and at least the newest.
      await pruneDatedFolders(dir, 'config-', Math.max(retentionDays, 7), this.now());
      return result;
    });
    if (!written) return false;
    const { folder, manifest } = written;
    log.info(
      `backups: configuration ${folder}: ${manifest.files.length} files${manifest.excluded.length > 0 ? `; left out (secret values): ${manifest.excluded.map((e) => e.path).join(', ')}` : ''}${manifest.missing.length > 0 ? `; not found: ${manifest.missing.join(', ')}` : ''}`,
    );
    return this.copy([folder]);
  }

  /** The weekly configuration backup's schedule (leader only). */
  async start(): Promise<void> {
    if (this.scheduler || !this.options.configDir) return;
    const { log } = this.options;
    this.scheduler = new BackupScheduler({
      expression: this.options.configSchedule,
      connectionString: this.options.connectionString,
      lockKey: 'qcat.backup.config',
      log: (message) => {
        log.info(message.replace(/^backups:/, 'backups (configuration):'));
      },
      run: async () => {
        await this.configBackup();
      },
    });
    await this.scheduler.start();
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    this.scheduler = undefined;
  }
}
