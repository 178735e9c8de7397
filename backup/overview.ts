/**
 * What the backup folder says of itself, for people (GET /api/v1/backups, the console's Operations
 * page): each backup's manifest and what the last scheduled `backup verify` found of it, and the
 * outcomes of the scheduled jobs from the maintenance status file (the source of the
 * `backup_*_timestamp_seconds` gauges). Read-only and cheap: manifests and one status file, never
 * the segments (verifying them is the daily job's work, not a page load's).
 */
import { loadCatalog } from './catalog.js';
import { readStatus, type MaintenanceJob } from './maintenance.js';

/** A scheduled job's last outcomes, as recorded (null: never). */
export interface JobOutcome {
  lastSuccess: string | null;
  lastFailure: string | null;
  lastProblem: string | null;
  /** The newer of the two: `succeeded`, `failed`, or `never` run. */
  outcome: 'succeeded' | 'failed' | 'never';
  at: string | null;
}

export interface BackupRow {
  backupId: string;
  kind: 'full' | 'incremental' | null;
  previousBackupId: string | null;
  completedAt: string | null;
  positions: { after: string; first: string | null; last: string } | null;
  eventCount: number | null;
  bytes: number | null;
  /** A full backup's hash-chain check of the log it copied: null when intact or not checked. */
  logProblem: string | null;
  /**
   * What the last scheduled verify found: `verified` (it checked this backup and found it
   * sound), `failed` (it named this backup), `unverified` (finished after that verify, or no
   * verify yet), `unreadable` (the manifest is missing or refused: `problem` says why).
   */
  verification: { status: 'verified' | 'failed' | 'unverified' | 'unreadable'; at: string | null };
  problem: string | null;
}

export interface BackupOverview {
  /** Newest first; a page of `limit` after the cursor. */
  backups: BackupRow[];
  /** The last backup id of this page when more follow (pass it as `after`), else null. */
  nextCursor: string | null;
  /** Folders of backups being written, or left by a crash. */
  partials: number;
  verify: JobOutcome;
  market: JobOutcome;
  config: JobOutcome;
  copy: JobOutcome;
}

type Status = Awaited<ReturnType<typeof readStatus>>;

function outcomeOf(status: Status, job: MaintenanceJob): JobOutcome {
  const recorded = status[job] ?? {};
  const success = recorded.lastSuccess ?? null;
  const failure = recorded.lastFailure ?? null;
  const failedLast = failure !== null && (success === null || failure > success);
  return {
    lastSuccess: success,
    lastFailure: failure,
    lastProblem: recorded.lastProblem ?? null,
    outcome: failedLast ? 'failed' : success !== null ? 'succeeded' : 'never',
    at: failedLast ? failure : success,
  };
}

/** The problem the failed verify recorded about `backupId` (`<id>: …` or `<id>/<file>: …`). */
function problemAbout(problem: string | null, backupId: string): string | null {
  if (problem === null) return null;
  const found = problem
    .split('; ')
    .filter((part) => part.includes(`${backupId}:`) || part.includes(`${backupId}/`));
  return found.length > 0 ? found.join('; ') : null;
}

/**
 * The backups in `dir`, newest first (a page: `limit` of them older than the backup `after`), with
 * what the last verify found; the jobs' outcomes.
 */
export async function backupOverview(
  dir: string,
  page: { after?: string | undefined; limit: number },
): Promise<BackupOverview> {
  const [catalog, status] = await Promise.all([loadCatalog(dir), readStatus(dir)]);
  const verify = outcomeOf(status, 'verify');
  const backups = catalog.entries.map((entry): BackupRow => {
    const manifest = entry.manifest;
    if (!manifest)
      return {
        backupId: entry.id,
        kind: null,
        previousBackupId: null,
        completedAt: null,
        positions: null,
        eventCount: null,
        bytes: null,
        logProblem: null,
        verification: { status: 'unreadable', at: null },
        problem: entry.problems.join('; '),
      };
    const named = verify.outcome === 'failed' ? problemAbout(verify.lastProblem, entry.id) : null;
    const checked = verify.at !== null && manifest.completedAt <= verify.at;
    return {
      backupId: manifest.backupId,
      kind: manifest.kind,
      previousBackupId: manifest.previousBackupId,
      completedAt: manifest.completedAt,
      positions: manifest.positions,
      eventCount: manifest.eventCount,
      bytes: manifest.bytes,
      logProblem: manifest.logCheck?.problem ?? null,
      verification:
        named !== null
          ? { status: 'failed', at: verify.at }
          : checked
            ? { status: 'verified', at: verify.at }
            : { status: 'unverified', at: null },
      problem: named,
    };
  });
  const newestFirst = backups
    .reverse()
    .filter((row) => page.after === undefined || row.backupId < page.after);
  const shown = newestFirst.slice(0, page.limit);
  return {
    backups: shown,
    nextCursor: newestFirst.length > page.limit ? (shown.at(-1)?.backupId ?? null) : null,
    partials: catalog.partials.length,
    verify,
    market: outcomeOf(status, 'market'),
    config: outcomeOf(status, 'config'),
    copy: outcomeOf(status, 'copy'),
  };
}

/** The last restore drill as recorded, and whether one is configured at all. */
export async function lastDrill(
  dir: string,
  configured: { schedule: string; scratchDatabase: boolean },
): Promise<JobOutcome & { schedule: string; configured: boolean }> {
  return {
    ...outcomeOf(await readStatus(dir), 'drill'),
    schedule: configured.schedule,
    configured: configured.scratchDatabase,
  };
}
