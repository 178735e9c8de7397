/**
 * What a backup folder holds: one sub-folder per backup (named by its id, with manifest.json),
 * `.partial-<id>` folders of backups being written (or abandoned), and nothing else of ours.
 * Backups link into chains: a full backup, then incrementals each naming the one before.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, isBackupId, manifestProblems, type Manifest } from './format.js';
import { checkSegmentFile } from './segments.js';

export const PARTIAL_PREFIX = '.partial-';

export interface CatalogEntry {
  id: string;
  path: string;
  /** Present when manifest.json exists and is sound. */
  manifest: Manifest | undefined;
  /** Why the manifest is missing or refused, each as `<id>/manifest.json: <reason>`. */
  problems: string[];
}

export interface Catalog {
  dir: string;
  /** Every backup folder, oldest first. */
  entries: CatalogEntry[];
  /** Folders of backups being written, or left by a crash. */
  partials: { name: string; path: string; modifiedMs: number }[];
  /** The sound manifests by id. */
  byId: Map<string, Manifest>;
}

/** Reads every manifest in `dir`; a folder that does not exist is an empty catalog. */
export async function loadCatalog(dir: string): Promise<Catalog> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { dir, entries: [], partials: [], byId: new Map() };
    throw error;
  }
  const entries: CatalogEntry[] = [];
  const partials: Catalog['partials'] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (name.startsWith(PARTIAL_PREFIX)) {
      partials.push({ name, path, modifiedMs: (await stat(path)).mtimeMs });
      continue;
    }
    if (!isBackupId(name)) continue;
    entries.push(await readEntry(name, path));
  }
  const byId = new Map<string, Manifest>();
  for (const entry of entries) if (entry.manifest) byId.set(entry.id, entry.manifest);
  return { dir, entries, partials, byId };
}

async function readEntry(id: string, path: string): Promise<CatalogEntry> {
  const file = `${id}/${MANIFEST_FILE}`;
  let text: string;
  try {
    text = await readFile(join(path, MANIFEST_FILE), 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'missing (the backup never finished, or the file was deleted)'
        : `unreadable (${(error as Error).message})`;
    return { id, path, manifest: undefined, problems: [`${file}: ${reason}`] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      id,
      path,
      manifest: undefined,
      problems: [`${file}: not valid JSON (${(error as Error).message})`],
    };
  }
  const problems = manifestProblems(value, id);
  if (problems.length > 0)
    return { id, path, manifest: undefined, problems: problems.map((p) => `${file}: ${p}`) };
  return { id, path, manifest: value as Manifest, problems: [] };
}

/** Newest last, by completion time (then id). */
export const byCompletion = (a: Manifest, b: Manifest): number =>
  a.completedAt === b.completedAt
    ? a.backupId.localeCompare(b.backupId)
    : a.completedAt.localeCompare(b.completedAt);

/**
 * The chain that ends at backup `id`: its full backup first. Fails naming the broken link: a
 * previous backup missing or unsound, or one whose end is not where the next one starts.
 */
export function chainTo(catalog: Catalog, id: string): { chain: Manifest[] } | { problem: string } {
  const chain: Manifest[] = [];
  let current = catalog.byId.get(id);
  if (!current) return { problem: `${id}: not a sound backup` };
  for (;;) {
    chain.unshift(current);
    if (current.kind === 'full') return { chain };
    const previousId = current.previousBackupId ?? '';
    const previous = catalog.byId.get(previousId);
    if (!previous) {
      const there = catalog.entries.some((entry) => entry.id === previousId);
      return {
        problem: `${current.backupId}: its previous backup ${previousId} is ${there ? 'damaged (see its manifest)' : 'missing'}; the chain is broken`,
      };
    }
    if (previous.positions.last !== current.positions.after)
      return {
        problem: `${current.backupId}/${MANIFEST_FILE}: starts after position ${current.positions.after} but its previous backup ${previous.backupId} ends at ${previous.positions.last}`,
      };
    if (chain.length > catalog.byId.size)
      return { problem: `${id}: the chain of previous backups loops` };
    current = previous;
  }
}

/** Whether every segment of the chain is present with the size its manifest gives. */
export async function filesPresent(catalog: Catalog, chain: readonly Manifest[]): Promise<boolean> {
  for (const manifest of chain) {
    for (const segment of manifest.segments) {
      try {
        const size = (await stat(join(catalog.dir, manifest.backupId, segment.file))).size;
        if (size !== segment.bytes) return false;
      } catch {
        return false;
      }
    }
  }
  return true;
}

/**
 * The newest backup whose whole chain is there (sound manifests, linked, files present), with its
 * chain; undefined when there is none.
 */
export async function newestRestorableChain(catalog: Catalog): Promise<Manifest[] | undefined> {
  const newestFirst = [...catalog.byId.values()].sort(byCompletion).reverse();
  for (const manifest of newestFirst) {
    const found = chainTo(catalog, manifest.backupId);
    if ('chain' in found && (await filesPresent(catalog, found.chain))) return found.chain;
  }
  return undefined;
}

/** Every restorable chain ending at any backup, newest end first. */
export function chainsByEnd(catalog: Catalog): Manifest[][] {
  const chains: Manifest[][] = [];
  for (const manifest of [...catalog.byId.values()].sort(byCompletion).reverse()) {
    const found = chainTo(catalog, manifest.backupId);
    if ('chain' in found) chains.push(found.chain);
  }
  return chains;
}

/**
 * What `backup list` says of each backup: `ok (chain of N)` only when its segments and those of
 * every backup before it in its chain are present with their manifest's size and SHA-256.
 */
export async function chainStatuses(catalog: Catalog): Promise<Map<string, string>> {
  const damaged = new Map<string, string>();
  for (const manifest of catalog.byId.values()) {
    for (const segment of manifest.segments) {
      const problem = await checkSegmentFile(
        join(catalog.dir, manifest.backupId, segment.file),
        segment,
      );
      if (problem) {
        damaged.set(manifest.backupId, `${manifest.backupId}/${segment.file}: ${problem}`);
        break;
      }
    }
  }
  const statuses = new Map<string, string>();
  for (const manifest of catalog.byId.values()) {
    const own = damaged.get(manifest.backupId);
    const found = chainTo(catalog, manifest.backupId);
    if (own) statuses.set(manifest.backupId, `DAMAGED: ${own}`);
    else if ('problem' in found) statuses.set(manifest.backupId, found.problem);
    else {
      const broken = found.chain.find((link) => damaged.has(link.backupId));
      statuses.set(
        manifest.backupId,
        broken
          ? `chain cannot be restored: ${broken.kind} backup ${broken.backupId} is damaged`
          : `ok (chain of ${found.chain.length})`,
      );
    }
  }
  return statuses;
}
