/**
 * The second location (issue 21): each finished backup folder (log backup, market snapshot,
 * configuration) is copied to QCAT_BACKUP_COPY_DIR — a mounted folder on another disk or host —
 * and the copy is verified on its own: the same files, each with the SHA-256 of the original.
 * A copy is written under a `.partial-` name and renamed when complete, so a reader never takes
 * half a copy for a backup.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Every file under `root`, as paths relative to it, sorted. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

/** Problems of `copy` against `original`: files missing, extra or different; empty when equal. */
export async function copyProblems(original: string, copy: string): Promise<string[]> {
  const [want, have] = await Promise.all([filesUnder(original), filesUnder(copy)]).catch(
    (error: unknown) => {
      throw new Error(`cannot list ${copy}: ${(error as Error).message}`);
    },
  );
  const problems: string[] = [];
  const present = new Set(have);
  for (const file of want) {
    if (!present.has(file)) problems.push(`${file}: missing in the copy`);
    else if ((await sha256OfFile(join(original, file))) !== (await sha256OfFile(join(copy, file))))
      problems.push(`${file}: the copy's SHA-256 differs`);
  }
  const expected = new Set(want);
  for (const file of have) if (!expected.has(file)) problems.push(`${file}: not in the original`);
  return problems;
}

/**
 * Copies the folder `name` of `sourceDir` into `copyDir` and verifies the copy; throws naming each
 * problem (the damaged copy is removed). An existing, equal copy is kept as it is.
 */
export async function copyAndVerify(
  sourceDir: string,
  name: string,
  copyDir: string,
): Promise<void> {
  const original = join(sourceDir, name);
  const target = join(copyDir, name);
  await mkdir(copyDir, { recursive: true });
  const existing = await copyProblems(original, target).catch(() => undefined);
  if (existing?.length === 0) return;
  const partial = join(copyDir, `.partial-${name}`);
  await rm(partial, { recursive: true, force: true });
  await cp(original, partial, { recursive: true, errorOnExist: false });
  const problems = await copyProblems(original, partial);
  if (problems.length > 0) {
    await rm(partial, { recursive: true, force: true });
    throw new Error(`copy of ${name} to ${copyDir} does not verify: ${problems.join('; ')}`);
  }
  await rm(target, { recursive: true, force: true });
  await rename(partial, target);
}

/** A folder name's UTC time, to the second: `20261207T031500Z`. */
export const folderStamp = (at: Date): string =>
  at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * Deletes the `<prefix><stamp>` folders of `dir` older than `days`, always keeping the newest
 * one; answers their names.
 */
export async function pruneDatedFolders(
  dir: string,
  prefix: 'market-' | 'config-',
  days: number,
  now: Date,
): Promise<string[]> {
  const names = (await readdir(dir))
    .filter((name) => new RegExp(`^${prefix}\\d{8}T\\d{6}Z$`).test(name))
    .sort();
  const cutoff = folderStamp(new Date(now.getTime() - days * 86_400_000));
  const removed = names.slice(0, -1).filter((name) => name.slice(prefix.length) < cutoff);
  for (const name of removed) await rm(join(dir, name), { recursive: true, force: true });
  return removed;
}
