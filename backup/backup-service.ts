/**
 * Backups as one QCAT process runs them: one at a time per database (an advisory lock), then
 * retention, with the outcome in the metrics; and the schedule, in the leading process only.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { EventStore } from '../core/eventstore/event-store.js';
import type { LastBackup, Metrics } from '../monitoring/metrics.js';
import { loadCatalog, newestRestorableChain } from './catalog.js';
import { BackupError } from './errors.js';
import {
  MANIFEST_FILE,
  isBackupId,
  manifestProblems,
  type BackupKind,
  type Manifest,
} from './format.js';
import { applyRetention } from './retention.js';
import { BackupScheduler } from './schedule.js';
import { NothingNewError, chainContinues, takeBackup, type StoreInfo } from './take-backup.js';

/** The scheduled run takes a new full backup when the newest chain's is this old. */
export const FULL_EVERY_DAYS = 7;
const RUN_LOCK_KEY = 'qcat.backup.run';

/** QCAT_BACKUP_DIR, else `backups` inside QCAT_DATA_DIR. */
export const backupDir = (config: {
  QCAT_BACKUP_DIR?: string | undefined;
  QCAT_DATA_DIR: string;
}): string => config.QCAT_BACKUP_DIR ?? join(config.QCAT_DATA_DIR, 'backups');

export interface BackupLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface BackupServiceOptions {
  store: EventStore;
  /** For the lock that keeps two backups from running at once. */
  pool: pg.Pool;
  /** For the schedule's leadership lock (a connection of its own). */
  connectionString: string;
  dir: string;
  schedule: string;
  retentionDays: number;
  storeInfo: StoreInfo;
  metrics?: Metrics;
  log?: BackupLogger;
  segmentEvents?: number;
  now?: () => Date;
  /**
   * After each scheduled run, whatever it wrote (the id of a written backup, else undefined): the
   * market-data snapshot and the second copy (backup/extras.ts).
   */
  afterScheduled?: (backupId: string | undefined) => Promise<void>;
}

export interface BackupRun {
  /** The backup written; with `written: false`, the newest backup, which nothing new followed. */
  manifest: Manifest;
  /** False for an incremental with nothing new to back up: no folder was written. */
  written: boolean;
  /** What retention deleted afterwards. */
  removed: string[];
  /** What the operator must know (the log's hash chain was found broken). */
  warnings: string[];
}

const lastBackup = (manifest: Manifest): LastBackup => ({
  completedAt: new Date(manifest.completedAt),
  durationSeconds: manifest.durationSeconds,
  bytes: manifest.bytes,
});

export class BackupService {
  private scheduler: BackupScheduler | undefined;

  constructor(private readonly options: BackupServiceOptions) {
    if (options.metrics) options.metrics.backupSource = () => this.newestBackup();
  }

  get dir(): string {
    return this.options.dir;
  }

  /** The newest sound backup in the folder, for the gauges (newest id first, first sound one). */
  async newestBackup(): Promise<LastBackup | undefined> {
    let names: string[];
    try {
      names = (await readdir(this.options.dir)).filter(isBackupId).sort().reverse();
    } catch {
      return undefined;
    }
    for (const name of names) {
      try {
        const manifest: unknown = JSON.parse(
          await readFile(join(this.options.dir, name, MANIFEST_FILE), 'utf8'),
        );
        if (manifestProblems(manifest, name).length === 0) return lastBackup(manifest as Manifest);
      } catch {
        // unfinished or damaged: the one before it
      }
    }
    return undefined;
  }

  /** What the schedule takes: a full backup when there is no chain or its full one is a week old. */
  async scheduledKind(): Promise<BackupKind> {
    const chain = await newestRestorableChain(await loadCatalog(this.options.dir));
    const full = chain?.[0];
    const end = chain?.at(-1);
    if (!full || !end) return 'full';
    const now = (this.options.now ?? (() => new Date()))();
    if (now.getTime() - Date.parse(full.completedAt) >= FULL_EVERY_DAYS * 86_400_000) return 'full';
    // A log that no longer continues the chain (restored, replaced) starts a new one.
    if (await chainContinues(this.options.store, end, await this.options.store.headPosition()))
      return 'incremental';
    this.options.log?.warn(
      `backups: the log does not continue backup ${end.backupId}; taking a full backup`,
    );
    return 'full';
  }

  /** Takes a backup (one at a time per database), then applies retention. */
  async run(kind: BackupKind | 'scheduled'): Promise<BackupRun> {
    const client = await this.options.pool.connect();
    let locked = false;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [RUN_LOCK_KEY],
      );
      locked = rows[0]?.locked === true;
      if (!locked)
        throw new BackupError(
          'another backup is running against this database (advisory lock qcat.backup.run); try again when it is done',
        );
      const chosen = kind === 'scheduled' ? await this.scheduledKind() : kind;
      const warnings: string[] = [];
      let manifest: Manifest;
      try {
        manifest = await takeBackup({
          store: this.options.store,
          dir: this.options.dir,
          kind: chosen,
          storeInfo: this.options.storeInfo,
          warn: (message) => {
            warnings.push(message);
            this.options.log?.warn(`backups: ${message}`);
          },
          ...(this.options.segmentEvents ? { segmentEvents: this.options.segmentEvents } : {}),
          ...(this.options.now ? { now: this.options.now } : {}),
        });
      } catch (error) {
        // Nothing new is not a failure: the newest backup is still the newest.
        if (error instanceof NothingNewError)
          return { manifest: error.previous, written: false, removed: [], warnings };
        throw error;
      }
      this.options.metrics?.setLastBackup(lastBackup(manifest));
      const retention = await applyRetention(
        this.options.dir,
        this.options.retentionDays,
        (this.options.now ?? (() => new Date()))(),
      );
      return { manifest, written: true, removed: retention.removed, warnings };
    } catch (error) {
      this.options.metrics?.backupFailures.inc();
      throw error;
    } finally {
      if (locked)
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [RUN_LOCK_KEY]);
      client.release();
    }
  }

  /** Starts the schedule in this process (it runs only while this process leads it). */
  async startSchedule(): Promise<void> {
    if (this.scheduler) return;
    const log = this.options.log;
    this.scheduler = new BackupScheduler({
      expression: this.options.schedule,
      connectionString: this.options.connectionString,
      log: (message) => log?.info(message),
      run: async () => {
        let written: string | undefined;
        try {
          const run = await this.run('scheduled');
          const { manifest, removed } = run;
          if (!run.written) {
            log?.info(`backups: nothing new since backup ${manifest.backupId}; nothing written`);
          } else {
            written = manifest.backupId;
            log?.info(
              `backups: ${manifest.kind} backup ${manifest.backupId}: ${manifest.eventCount} events, ${manifest.bytes} bytes in ${manifest.durationSeconds} s${removed.length > 0 ? `; retention removed ${removed.join(', ')}` : ''}`,
            );
          }
        } catch (error) {
          log?.warn(`backups: scheduled backup failed: ${(error as Error).message}`);
        }
        await this.options.afterScheduled?.(written).catch((error: unknown) => {
          log?.warn(`backups: after the scheduled backup: ${(error as Error).message}`);
        });
      },
    });
    await this.scheduler.start();
  }

  /** What the timer does at each scheduled time (for tests and for an operator's "now"). */
  async fireSchedule(): Promise<void> {
    await this.scheduler?.fire();
  }

  get leadsSchedule(): boolean {
    return this.scheduler?.leads ?? false;
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    this.scheduler = undefined;
  }
}
