/** Planning a restore: the chain and segments it reads, checked before anything is written. */
import { join } from 'node:path';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { chainsByEnd, loadCatalog } from './catalog.js';
import { BackupError } from './errors.js';
import { describePoint, type Manifest, type RestorePoint, type SegmentEntry } from './format.js';
import { readSegment, scanSegment, type ReadState } from './segments.js';

export interface PlannedRead {
  manifest: Manifest;
  segments: SegmentEntry[];
}

export interface RestorePlan {
  dir: string;
  point: RestorePoint;
  chain: Manifest[];
  reads: PlannedRead[];
  /** The point lies beyond the newest backup's last event: the whole chain is restored. */
  beyondBackups: boolean;
}

const chainEndTime = (chain: readonly Manifest[]): string | null =>
  [...chain].reverse().find((manifest) => manifest.time.last !== null)?.time.last ?? null;

/** Does the chain hold the log up to the point, with certainty? */
function covers(chain: readonly Manifest[], point: RestorePoint): boolean {
  const end = chain.at(-1);
  if (!end) return false;
  if ('position' in point) return BigInt(end.positions.last) >= point.position;
  // Certain only if an event after the instant is in it: times never decrease along positions.
  const last = chainEndTime(chain);
  return last !== null && Date.parse(last) > point.instant.getTime();
}

/** The chain and segments a restore to `point` reads; refuses a damaged folder. */
export async function planRestore(dir: string, point: RestorePoint): Promise<RestorePlan> {
  const catalog = await loadCatalog(dir);
  const damaged = catalog.entries.flatMap((entry) => entry.problems);
  if (damaged.length > 0)
    throw new BackupError(
      `${dir} holds damaged backups; move them out of the folder (or restore --from another) after checking with \`qcat backup verify\`:\n  ${damaged.join('\n  ')}`,
    );
  const chains = chainsByEnd(catalog);
  if (catalog.byId.size === 0) throw new BackupError(`no backups in ${dir}`);
  const linked = new Set(chains.flat().map((manifest) => manifest.backupId));
  for (const manifest of catalog.byId.values()) {
    if (!linked.has(manifest.backupId)) {
      throw new BackupError(
        `${dir}/${manifest.backupId}: its chain is broken (previous backup ${manifest.previousBackupId ?? '?'} missing, or its positions do not follow on); move it out of the folder to restore from the rest`,
      );
    }
  }
  const newest = chains[0];
  if (!newest) throw new BackupError(`no full backup in ${dir}`);
  const chain = chains.find((candidate) => covers(candidate, point)) ?? newest;
  const beyondBackups = !covers(chain, point);
  const first = chain.flatMap((manifest) => manifest.segments)[0];
  const before =
    first &&
    ('position' in point
      ? BigInt(first.firstPosition) > point.position
      : Date.parse(first.firstRecordedAt) > point.instant.getTime());
  // Restoring nothing would leave an empty store that looks like a successful restore.
  if (!first || before)
    throw new BackupError(
      first
        ? `nothing to restore: ${describePoint(point)} is before the first event in the backups (position ${first.firstPosition}, recorded at ${first.firstRecordedAt})`
        : `nothing to restore: the backups in ${dir} hold no event`,
    );

  const reads: PlannedRead[] = [];
  planning: for (const manifest of chain) {
    const segments: SegmentEntry[] = [];
    for (const segment of manifest.segments) {
      const starts =
        'position' in point
          ? BigInt(segment.firstPosition) <= point.position
          : Date.parse(segment.firstRecordedAt) <= point.instant.getTime();
      if (!starts) {
        reads.push({ manifest, segments });
        break planning;
      }
      segments.push(segment);
      const ends =
        'position' in point
          ? BigInt(segment.lastPosition) >= point.position
          : Date.parse(segment.lastRecordedAt) > point.instant.getTime();
      if (ends) {
        reads.push({ manifest, segments });
        break planning;
      }
    }
    reads.push({ manifest, segments });
  }
  return { dir, point, chain, reads, beyondBackups };
}

/**
 * The planned events, in batches, checked line by line from the first event of the log (so
 * revisions too), stopping at the point. `checkHash` also hashes the bytes on the way.
 */
export async function* plannedEvents(
  plan: RestorePlan,
  checkHash: boolean,
): AsyncGenerator<RecordedEvent[]> {
  const state: ReadState = {
    lastPosition: 0n,
    lastRecordedAt: Number.NEGATIVE_INFINITY,
    revisions: new Map(),
  };
  for (const read of plan.reads) {
    for (const segment of read.segments) {
      const path = join(plan.dir, read.manifest.backupId, segment.file);
      const reader = readSegment(path, segment, state, { cut: plan.point, checkHash });
      for (;;) {
        const next = await reader.next();
        if (next.done) {
          if (next.value.cutReached) return;
          break;
        }
        yield next.value;
      }
    }
  }
}

/** Segment files scanned at once: the gunzip runs on libuv's threads, the SHA-256 here. */
const SCAN_CONCURRENCY = 2;

/**
 * Step 2, before the target is touched: every planned segment read once — present, its size and
 * SHA-256, a whole gzip stream, its number of lines, its first and last events where the manifest
 * says. (Each line is parsed and checked during the import, which any failure rolls back.) Two
 * files at a time; a failure names the first damaged file in the plan's order.
 */
export async function checkPlannedFiles(plan: RestorePlan): Promise<number> {
  const files = plan.reads.flatMap((read) =>
    read.segments.map((segment) => ({
      label: `${read.manifest.backupId}/${segment.file}`,
      path: join(plan.dir, read.manifest.backupId, segment.file),
      segment,
    })),
  );
  const problems: (string | undefined)[] = [];
  let next = 0;
  const scanner = async (): Promise<void> => {
    while (next < files.length) {
      const index = next++;
      const file = files[index];
      if (!file) return;
      problems[index] = await scanSegment(file.path, file.segment);
      // A damaged file ends the check; files after it are not read.
      if (problems[index] !== undefined) next = files.length;
    }
  };
  await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, scanner));
  files.forEach((file, index) => {
    const problem = problems[index];
    if (problem !== undefined) throw new BackupError(`${file.label}: ${problem}`, file.path);
  });
  return files.length;
}
