/**
 * `qcat backup verify`: re-reads every backup in a folder and checks manifests, chain links,
 * segment sizes and SHA-256s, event counts, position order, times, stream revisions and the
 * well-formedness of every line. Read-only; reports every problem it finds, each naming its file.
 */
import { join } from 'node:path';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { chainTo, loadCatalog, type Catalog } from './catalog.js';
import { BackupError } from './errors.js';
import type { Manifest } from './format.js';
import { checkSegmentFile, cloneState, readSegment, type ReadState } from './segments.js';

export interface BackupCheck {
  backupId: string;
  kind: Manifest['kind'] | 'unknown';
  events: number;
  segments: number;
  /** Each `<backup>/<file>: <reason>`. */
  problems: string[];
}

export interface VerifyReport {
  dir: string;
  backups: BackupCheck[];
  /** Problems not tied to one backup (an empty folder). */
  problems: string[];
  ok: boolean;
}

const freshState = (after: bigint, fromStart: boolean): ReadState => ({
  lastPosition: after,
  lastRecordedAt: Number.NEGATIVE_INFINITY,
  revisions: fromStart ? new Map() : undefined,
});

/** Reads every segment of one backup, continuing `state`; answers its problems. */
async function verifyBackup(
  catalog: Catalog,
  manifest: Manifest,
  state: ReadState,
): Promise<string[]> {
  const problems: string[] = [];
  const folder = join(catalog.dir, manifest.backupId);
  let last: RecordedEvent | undefined;
  for (const segment of manifest.segments) {
    const path = join(folder, segment.file);
    const fileProblem = await checkSegmentFile(path, segment);
    const resume = (): void => {
      // The order checks go on from where the manifest says this segment ended.
      state.lastPosition = BigInt(segment.lastPosition);
      state.lastRecordedAt = Date.parse(segment.lastRecordedAt);
      state.revisions = undefined;
      last = undefined;
    };
    if (fileProblem) {
      problems.push(`${manifest.backupId}/${segment.file}: ${fileProblem}`);
      resume();
      continue;
    }
    try {
      const reader = readSegment(path, segment, state);
      for (;;) {
        const next = await reader.next();
        if (next.done) break;
        last = next.value.at(-1) ?? last;
      }
    } catch (error) {
      if (!(error instanceof BackupError)) throw error;
      problems.push(error.message);
      resume();
    }
  }
  if (last && manifest.lastEvent && last.eventId !== manifest.lastEvent.eventId)
    problems.push(
      `${manifest.backupId}/manifest.json: lastEvent names ${manifest.lastEvent.eventId}, the last event in the segments is ${last.eventId}`,
    );
  return problems;
}

export async function verifyBackups(dir: string): Promise<VerifyReport> {
  const catalog = await loadCatalog(dir);
  const report: VerifyReport = { dir, backups: [], problems: [], ok: true };
  if (catalog.entries.length === 0) {
    report.problems.push(`no backups in ${dir}`);
    report.ok = false;
    return report;
  }
  const checks = new Map<string, BackupCheck>();
  for (const entry of catalog.entries) {
    checks.set(entry.id, {
      backupId: entry.id,
      kind: entry.manifest?.kind ?? 'unknown',
      events: entry.manifest?.eventCount ?? 0,
      segments: entry.manifest?.segments.length ?? 0,
      problems: [...entry.problems],
    });
  }
  const children = new Map<string, Manifest[]>();
  const starts: Manifest[] = [];
  for (const manifest of catalog.byId.values()) {
    if (manifest.kind === 'full') {
      starts.push(manifest);
      continue;
    }
    const found = chainTo(catalog, manifest.backupId);
    const previous = manifest.previousBackupId ?? '';
    if ('problem' in found && !catalog.byId.has(previous)) {
      // Its previous backup is gone or damaged: read it on its own.
      checks.get(manifest.backupId)?.problems.push(found.problem);
      starts.push(manifest);
      continue;
    }
    if ('problem' in found && found.problem.startsWith(`${manifest.backupId}/`))
      checks.get(manifest.backupId)?.problems.push(found.problem);
    children.set(previous, [...(children.get(previous) ?? []), manifest]);
  }

  // Depth first along each chain, so order and revisions are checked across backups too.
  const visit = async (manifest: Manifest, state: ReadState): Promise<void> => {
    checks.get(manifest.backupId)?.problems.push(...(await verifyBackup(catalog, manifest, state)));
    const next = children.get(manifest.backupId) ?? [];
    for (const [index, child] of next.entries()) {
      await visit(child, index === next.length - 1 ? state : cloneState(state));
    }
  };
  for (const start of starts) {
    await visit(start, freshState(BigInt(start.positions.after), start.kind === 'full'));
  }

  // An incremental is only as good as the backups before it: a failed link cannot be restored.
  for (const manifest of catalog.byId.values()) {
    const found = chainTo(catalog, manifest.backupId);
    if (!('chain' in found)) continue;
    const failed = found.chain
      .slice(0, -1)
      .filter((link) => (checks.get(link.backupId)?.problems.length ?? 0) > 0);
    if (failed.length > 0)
      checks
        .get(manifest.backupId)
        ?.problems.push(
          `${manifest.backupId}: its chain cannot be restored: ${failed.map((link) => `${link.kind} backup ${link.backupId}`).join(', ')} failed verification`,
        );
  }

  report.backups = [...checks.values()];
  report.ok = report.backups.every((check) => check.problems.length === 0);
  return report;
}
