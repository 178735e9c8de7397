/**
 * `qcat backup full|incremental|list|verify` and `qcat restore`, registered on the CLI's program.
 * Every expected failure becomes the CLI's own "message only" error: the operator reads what file
 * and why, never a stack trace.
 */
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { BulkImportError } from '../core/adapters/postgres/bulk-import.js';
import { loadConfig, type Config } from './config.js';
import type { Runtime } from './runtime.js';
import { backupDir } from '../backup/backup-service.js';
import { backupServiceFor } from './backup-wiring.js';
import { chainStatuses, loadCatalog, type CatalogEntry } from '../backup/catalog.js';
import { BackupError } from '../backup/errors.js';
import {
  describePoint,
  parseRestorePoint,
  type Manifest,
  type RestorePoint,
} from '../backup/format.js';
import { restore, type RestoreResult } from '../backup/restore.js';
import { verifyBackups } from '../backup/verify.js';

export interface BackupCliParts {
  /** Opens the configured runtime (event store, database) for the work, and closes it. */
  withRuntime: <T>(work: (runtime: Runtime) => Promise<T>) => Promise<T>;
  /** The CLI's error for an expected failure (printed as `qcat: <message>`, exit code 1). */
  fail: (message: string) => Error;
}

const number = (value: number): string => value.toLocaleString('en-US');
const size = (bytes: number): string =>
  bytes >= 1 << 30
    ? `${(bytes / (1 << 30)).toFixed(1)} GiB`
    : bytes >= 1 << 20
      ? `${(bytes / (1 << 20)).toFixed(1)} MiB`
      : `${(bytes / 1024).toFixed(1)} KiB`;

const describeManifest = (manifest: Manifest): string =>
  `${manifest.kind} backup ${manifest.backupId}: ${number(manifest.eventCount)} events${
    manifest.positions.first
      ? ` (positions ${manifest.positions.first}..${manifest.positions.last}, ${manifest.time.first ?? ''} .. ${manifest.time.last ?? ''})`
      : ` (nothing new after position ${manifest.positions.after})`
  }, ${manifest.segments.length} segment(s), ${size(manifest.bytes)} in ${manifest.durationSeconds.toFixed(1)} s`;

/** Runs a command's work, turning its expected failures into the CLI's message-only error. */
const expected = async (parts: BackupCliParts, work: () => Promise<void>): Promise<void> => {
  try {
    await work();
  } catch (error) {
    if (error instanceof BackupError || error instanceof BulkImportError)
      throw parts.fail(error.message);
    throw error;
  }
};

const dirOf = (config: Config, dir: string | undefined): string => dir ?? backupDir(config);

export function registerBackupCommands(program: Command, parts: BackupCliParts): void {
  const backup = program
    .command('backup')
    .description(
      'back up the event log to compressed segment files (read models are rebuilt, not backed up)',
    );
  for (const kind of ['full', 'incremental'] as const) registerBackupRun(backup, kind, parts);
  registerBackupList(backup, parts);
  registerBackupVerify(backup, parts);
  registerRestore(program, parts);
}

/** `qcat backup full` and `qcat backup incremental`. */
function registerBackupRun(
  backup: Command,
  kind: 'full' | 'incremental',
  parts: BackupCliParts,
): void {
  backup
    .command(kind)
    .description(
      kind === 'full'
        ? 'back up the whole log (starts a new chain), then apply retention'
        : 'back up what the log gained since the newest backup, then apply retention',
    )
    .option('--dir <dir>', 'backup folder (default QCAT_BACKUP_DIR)')
    .action((options: { dir?: string }) =>
      expected(parts, async () => {
        const config = loadConfig();
        const dir = dirOf(config, options.dir);
        await parts.withRuntime(async (runtime) => {
          const service = backupServiceFor(
            { ...config, QCAT_BACKUP_DIR: dir },
            { store: runtime.eventStore, pool: runtime.pool, databaseUrl: runtime.databaseUrl },
          );
          const { manifest, written, removed, warnings } = await service.run(kind);
          for (const warning of warnings) console.error(`qcat: warning: ${warning}`);
          if (!written) {
            console.log(
              `nothing new since backup ${manifest.backupId} (the log ends at its position ${manifest.positions.last}): no backup written`,
            );
            return;
          }
          console.log(describeManifest(manifest));
          console.log(`written to ${dir}/${manifest.backupId}`);
          if (removed.length > 0) console.log(`retention removed: ${removed.join(', ')}`);
        });
      }),
    );
}

/** `qcat backup list`. */
function registerBackupList(backup: Command, parts: BackupCliParts): void {
  backup
    .command('list')
    .description('every backup in the folder, oldest first, with its chain')
    .option('--dir <dir>', 'backup folder (default QCAT_BACKUP_DIR)')
    .option('--json', 'print the manifests as JSON')
    .action((options: { dir?: string; json?: boolean }) =>
      expected(parts, async () => {
        const dir = dirOf(loadConfig(), options.dir);
        const catalog = await loadCatalog(dir);
        if (options.json) {
          console.log(
            JSON.stringify(
              catalog.entries.map(
                (entry) => entry.manifest ?? { backupId: entry.id, problems: entry.problems },
              ),
              null,
              2,
            ),
          );
          return;
        }
        if (catalog.entries.length === 0) {
          console.log(`no backups in ${dir}`);
          return;
        }
        const statuses = await chainStatuses(catalog);
        console.table(catalog.entries.map((entry) => listRow(entry, statuses)));
      }),
    );
}

/** One row of `qcat backup list`'s table. */
function listRow(entry: CatalogEntry, statuses: Map<string, string>): Record<string, unknown> {
  const manifest = entry.manifest;
  if (!manifest) return { backup: entry.id, status: entry.problems.join('; ') };
  return {
    backup: manifest.backupId,
    kind: manifest.kind,
    previous: manifest.previousBackupId ?? '',
    positions: manifest.positions.first
      ? `${manifest.positions.first}..${manifest.positions.last}`
      : `(none after ${manifest.positions.after})`,
    events: manifest.eventCount,
    from: manifest.time.first ?? '',
    to: manifest.time.last ?? '',
    size: size(manifest.bytes),
    status: statuses.get(manifest.backupId) ?? '',
  };
}

/** `qcat backup verify`. */
function registerBackupVerify(backup: Command, parts: BackupCliParts): void {
  backup
    .command('verify')
    .description(
      're-read every backup: files, SHA-256s, counts, order, chain links and every line; exit 1 on any problem',
    )
    .option('--dir <dir>', 'backup folder (default QCAT_BACKUP_DIR)')
    .action((options: { dir?: string }) =>
      expected(parts, async () => {
        const dir = dirOf(loadConfig(), options.dir);
        const report = await verifyBackups(dir);
        for (const check of report.backups) {
          if (check.problems.length === 0) {
            console.log(
              `ok      ${check.backupId} (${check.kind}, ${number(check.events)} events, ${check.segments} segment(s))`,
            );
          } else {
            console.log(`FAILED  ${check.backupId}`);
            for (const problem of check.problems) console.log(`        ${problem}`);
          }
        }
        const problems = [...report.problems, ...report.backups.flatMap((check) => check.problems)];
        if (problems.length > 0) {
          const failed = report.backups.filter((check) => check.problems.length > 0).length;
          throw new BackupError(
            `verify failed: ${problems.length} problem(s) in ${failed} of ${report.backups.length} backup(s) in ${dir}:\n  ${problems.join('\n  ')}`,
          );
        }
        console.log(`all ${report.backups.length} backup(s) in ${dir} verified`);
      }),
    );
}

/** `qcat restore`. */
function registerRestore(program: Command, parts: BackupCliParts): void {
  program
    .command('restore')
    .description(
      'restore the log up to an instant or position from the backups into an empty store, then rebuild every read model',
    )
    .requiredOption(
      '--to <point>',
      'ISO instant (e.g. 2026-11-26T10:00:00Z: events recorded at or before it) or position',
    )
    .requiredOption('--target <url>', 'empty store to restore into: postgres://… (or esdb://…)')
    .option('--from <dir>', 'backup folder (default QCAT_BACKUP_DIR)')
    .action((options: { to: string; target: string; from?: string }) =>
      expected(parts, async () => {
        let point;
        try {
          point = parseRestorePoint(options.to);
        } catch (error) {
          throw new BackupError((error as Error).message);
        }
        const config = loadConfig();
        const dir = dirOf(config, options.from);
        let redis: Redis | undefined;
        if (config.REDIS_URL) {
          redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 });
          await redis.connect();
        }
        try {
          const result = await restore({
            dir,
            point,
            target: options.target,
            readModelsUrl: config.DATABASE_URL,
            redis,
            redisPrefix: config.QCAT_REDIS_PREFIX,
            log: (line) => {
              console.error(line);
            },
          });
          printRestored(point, result);
        } finally {
          redis?.disconnect();
        }
      }),
    );
}

/** What `qcat restore` did: where it stopped, the read models it built, and how long each step took. */
function printRestored(point: RestorePoint, result: RestoreResult): void {
  console.log(
    `restored to ${describePoint(point)}: stopped at position ${result.position} (recorded at ${result.recordedAt?.toISOString() ?? 'none: nothing to restore'}); ${number(result.events)} events`,
  );
  const end = result.plan.chain.at(-1);
  if (result.plan.beyondBackups && end) {
    console.log(
      `note: the backups end there (backup ${end.backupId}, completed ${end.completedAt}); anything the log recorded later is in no backup`,
    );
  }
  console.log(
    `read models built: ${result.rebuilt.map((p) => `${p.name} (${number(p.events)} events)`).join(', ')}${
      result.skipped.length > 0
        ? `; not rebuilt (REDIS_URL unset): ${result.skipped.join(', ')}`
        : ''
    }`,
  );
  console.log(
    `seconds: check files ${result.seconds.check.toFixed(1)}, import ${result.seconds.import.toFixed(1)}, read models ${result.seconds.rebuild.toFixed(1)}`,
  );
}
