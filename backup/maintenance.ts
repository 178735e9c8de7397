/**
 * What keeps the backups honest between restores (issue 21): a daily `backup verify` of the whole
 * backup folder and a monthly restore drill into a scratch database, each on its own cron
 * schedule, each run only by the process holding its own advisory lock (BackupScheduler). Their
 * outcomes go to a status file in the backup folder, read at each scrape by every replica, so the
 * last-success gauges survive restarts and do not depend on which replica led.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { restore } from './restore.js';
import { BackupScheduler } from './schedule.js';
import { verifyBackups } from './verify.js';

/** In the backup folder; loadCatalog reads only backup folders, so this file is left alone. */
export const STATUS_FILE = 'qcat-maintenance.json';

/** `market`, `config` and `copy` are written by backup/extras.ts. */
export type MaintenanceJob = 'verify' | 'drill' | 'market' | 'config' | 'copy';

const jobStatus = z.object({
  lastSuccess: z.iso.datetime().optional(),
  lastFailure: z.iso.datetime().optional(),
  lastProblem: z.string().optional(),
});
type JobStatus = z.infer<typeof jobStatus>;
const statusSchema = z.object({
  verify: jobStatus.optional(),
  drill: jobStatus.optional(),
  market: jobStatus.optional(),
  config: jobStatus.optional(),
  copy: jobStatus.optional(),
});
type Status = z.infer<typeof statusSchema>;

/** The status file; empty when missing or unreadable (the gauges then say 0: never). */
export async function readStatus(dir: string): Promise<Status> {
  try {
    const parsed = statusSchema.safeParse(
      JSON.parse(await readFile(join(dir, STATUS_FILE), 'utf8')),
    );
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** Records a job's outcome in the status file (undefined problem: a success). */
export async function recordJob(
  dir: string,
  job: MaintenanceJob,
  problem: string | undefined,
  at: Date,
): Promise<void> {
  const status = await readStatus(dir);
  const previous = status[job] ?? {};
  status[job] =
    problem === undefined
      ? { ...previous, lastSuccess: at.toISOString() }
      : { ...previous, lastFailure: at.toISOString(), lastProblem: problem.slice(0, 500) };
  // Written aside, then renamed: a scrape never reads half a file.
  const temporary = join(dir, `.${STATUS_FILE}.tmp`);
  await writeFile(temporary, JSON.stringify(status, null, 2));
  await rename(temporary, join(dir, STATUS_FILE));
}

export interface MaintenanceOptions {
  dir: string;
  /** Lock connections of the two schedules. */
  connectionString: string;
  verifySchedule: string;
  drillSchedule: string;
  /** The scratch database the drill empties and restores into; unset = no drill. */
  drillUrl: string | undefined;
  /** The second location (QCAT_BACKUP_COPY_DIR): verified with the backup folder when set. */
  copyDir?: string | undefined;
  redisPrefix: string;
  log: { info(message: string): void; warn(message: string): void };
  now?: () => Date;
}

/** Every schema of the scratch database except PostgreSQL's own, dropped; public made anew. */
async function emptyScratch(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT nspname AS name FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'`,
    );
    for (const { name } of rows)
      await client.query(`DROP SCHEMA ${client.escapeIdentifier(name)} CASCADE`);
    await client.query('CREATE SCHEMA public');
  } finally {
    await client.end();
  }
}

export class BackupMaintenance {
  private schedulers: BackupScheduler[] = [];

  constructor(private readonly options: MaintenanceOptions) {}

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  /** `backup verify` of the whole folder (and of its copy); true when every backup checks out. */
  async verify(): Promise<boolean> {
    const { dir, log, copyDir } = this.options;
    let problem: string | undefined;
    try {
      const found: string[] = [];
      for (const folder of copyDir ? [dir, copyDir] : [dir]) {
        const report = await verifyBackups(folder);
        const problems = [
          ...report.problems,
          ...report.backups.flatMap((b) => b.problems.map((p) => `${b.backupId}: ${p}`)),
        ];
        if (!report.ok) found.push(`${folder}: ${problems.join('; ') || 'verify failed'}`);
      }
      if (found.length > 0) problem = found.join('; ');
    } catch (error) {
      problem = (error as Error).message;
    }
    await recordJob(dir, 'verify', problem, this.now());
    if (problem) log.warn(`backups: scheduled verify found problems: ${problem}`);
    else log.info(`backups: scheduled verify: every backup in ${dir} checks out`);
    return problem === undefined;
  }

  /** Restores the newest backups into the scratch database, then empties it again. */
  async drill(): Promise<boolean> {
    const { dir, log, drillUrl } = this.options;
    if (!drillUrl) {
      log.warn('backups: restore drill skipped: QCAT_RESTORE_DRILL_URL is not set');
      return false;
    }
    let problem: string | undefined;
    try {
      await emptyScratch(drillUrl);
      const result = await restore({
        dir,
        point: { instant: this.now() },
        target: drillUrl,
        redisPrefix: this.options.redisPrefix,
      });
      if (result.events === 0) problem = 'the drill restored no event';
      else
        log.info(
          `backups: restore drill: ${result.events} events up to position ${result.position} restored and ${result.rebuilt.length} read models rebuilt in ${(result.seconds.import + result.seconds.rebuild).toFixed(1)} s`,
        );
    } catch (error) {
      problem = (error as Error).message;
    }
    // Emptied again either way: the scratch copy must not linger as a second, stale database.
    await emptyScratch(drillUrl).catch(() => undefined);
    await recordJob(dir, 'drill', problem, this.now());
    if (problem) log.warn(`backups: restore drill failed: ${problem}`);
    return problem === undefined;
  }

  async start(): Promise<void> {
    const { verifySchedule, drillSchedule, connectionString, log } = this.options;
    for (const [job, expression, run] of [
      ['verify', verifySchedule, () => this.verify()],
      ['drill', drillSchedule, () => this.drill()],
    ] as const) {
      const scheduler = new BackupScheduler({
        expression,
        connectionString,
        lockKey: `qcat.backup.${job}`,
        log: (message) => {
          log.info(message.replace(/^backups:/, `backups (${job}):`));
        },
        run: async () => {
          await run();
        },
      });
      await scheduler.start();
      this.schedulers.push(scheduler);
    }
  }

  async stop(): Promise<void> {
    for (const scheduler of this.schedulers.splice(0)) await scheduler.stop();
  }
}

/** `backup_verify_*` and `backup_restore_drill_*` gauges, read from the status file at scrape. */
export function registerMaintenanceMetrics(registry: Registry, dir: string): void {
  const seconds = (iso: string | undefined): number => (iso ? Date.parse(iso) / 1000 : 0);
  const gauge = (name: string, help: string, job: MaintenanceJob, key: keyof JobStatus) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(seconds((await readStatus(dir))[job]?.[key]));
      },
    });
  gauge(
    'backup_verify_last_success_timestamp_seconds',
    'Unix time the last scheduled `backup verify` found every backup sound; 0 until one did',
    'verify',
    'lastSuccess',
  );
  gauge(
    'backup_verify_last_failure_timestamp_seconds',
    'Unix time the last scheduled `backup verify` found a problem; 0 if none ever did',
    'verify',
    'lastFailure',
  );
  gauge(
    'backup_restore_drill_last_success_timestamp_seconds',
    'Unix time the last restore drill into the scratch database succeeded; 0 until one did',
    'drill',
    'lastSuccess',
  );
  gauge(
    'backup_restore_drill_last_failure_timestamp_seconds',
    'Unix time the last restore drill failed; 0 if none ever did',
    'drill',
    'lastFailure',
  );
  gauge(
    'backup_market_last_success_timestamp_seconds',
    'Unix time the scheduled backup last wrote a market-data snapshot; 0 until one did',
    'market',
    'lastSuccess',
  );
  gauge(
    'backup_market_last_failure_timestamp_seconds',
    'Unix time a market-data snapshot last failed; 0 if none ever did',
    'market',
    'lastFailure',
  );
  gauge(
    'backup_config_last_success_timestamp_seconds',
    'Unix time the weekly configuration backup last succeeded; 0 until one did',
    'config',
    'lastSuccess',
  );
  gauge(
    'backup_config_last_failure_timestamp_seconds',
    'Unix time the configuration backup last failed; 0 if none ever did',
    'config',
    'lastFailure',
  );
  gauge(
    'backup_copy_last_success_timestamp_seconds',
    'Unix time a finished backup was last copied to the second location and the copy verified; 0 until one was',
    'copy',
    'lastSuccess',
  );
  gauge(
    'backup_copy_last_failure_timestamp_seconds',
    'Unix time a copy to the second location last failed or did not verify; 0 if none ever did',
    'copy',
    'lastFailure',
  );
}
