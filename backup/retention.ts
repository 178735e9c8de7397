/**
 * Retention: backups older than the window go, unless a backup that stays needs them. Kept are
 * (a) every backup of the newest restorable chain, whatever its age, and (b) every backup younger
 * than the window together with the backups it builds on, so any instant in the window stays
 * restorable. With no restorable chain at all nothing is deleted. Folders of backups that never
 * finished (`.partial-…`) go after a day.
 */
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PARTIAL_PREFIX, loadCatalog, newestRestorableChain } from './catalog.js';

const DAY_MS = 86_400_000;

export interface RetentionResult {
  removed: string[];
  kept: string[];
}

/** When a backup id says it started (its first 19 characters). */
const idTime = (id: string): number =>
  Date.parse(
    `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.${id.slice(15, 18)}Z`,
  );

export async function applyRetention(
  dir: string,
  retentionDays: number,
  now: Date = new Date(),
): Promise<RetentionResult> {
  const catalog = await loadCatalog(dir);
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const newest = await newestRestorableChain(catalog);
  if (!newest) return { removed: [], kept: catalog.entries.map((entry) => entry.id) };

  const keep = new Set(newest.map((manifest) => manifest.backupId));
  for (const manifest of catalog.byId.values()) {
    if (Date.parse(manifest.completedAt) < cutoff) continue;
    // It and everything it builds on.
    let current: typeof manifest | undefined = manifest;
    while (current && !keep.has(current.backupId)) {
      keep.add(current.backupId);
      current = current.previousBackupId ? catalog.byId.get(current.previousBackupId) : undefined;
    }
  }
  const removed: string[] = [];
  for (const entry of catalog.entries) {
    if (keep.has(entry.id)) continue;
    const finished = entry.manifest ? Date.parse(entry.manifest.completedAt) : idTime(entry.id);
    if (!(finished < cutoff)) continue;
    // Renamed first: a deletion cut short leaves a partial folder, never a half backup.
    const doomed = join(dir, `${PARTIAL_PREFIX}deleting-${entry.id}`);
    await rename(entry.path, doomed);
    await rm(doomed, { recursive: true, force: true });
    removed.push(entry.id);
  }
  for (const partial of catalog.partials) {
    if (partial.modifiedMs < now.getTime() - DAY_MS) {
      await rm(partial.path, { recursive: true, force: true });
      removed.push(partial.name);
    }
  }
  return {
    removed,
    kept: catalog.entries.map((entry) => entry.id).filter((id) => !removed.includes(id)),
  };
}
