/**
 * The weekly configuration backup (issue 21): the deployment's files — compose, Prometheus,
 * Alertmanager, Grafana, blackbox, nginx, the PostgreSQL role script — and QCAT's own settings,
 * into a `config-<UTC time>` folder beside the log backups, with a manifest of each file's SHA-256.
 * Never secrets: only files on an allow-list are taken, `.env` files, certificates and keys never,
 * QCAT's settings go through `redact`, and a file holding any known secret value is left out
 * (and named in the manifest). Policies (risk limits, the automation and optimization policies)
 * are events in the log, so the log backups hold them.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { folderStamp, sha256OfFile } from './folder-copy.js';

export const CONFIG_MANIFEST = 'config-manifest.json';
const CONFIG_FOLDER = /^config-\d{8}T\d{6}Z$/;
export const isConfigFolder = (name: string): boolean => CONFIG_FOLDER.test(name);

/** What is taken, relative to the configuration root (the repository's layout). */
export const CONFIG_PATHS = [
  'docker-compose.yml',
  '.env.example',
  'Dockerfile',
  'monitoring/prometheus',
  'monitoring/alertmanager',
  'monitoring/grafana',
  'monitoring/blackbox',
  'ops/nginx',
  'ops/postgres',
] as const;

/** Never taken, wherever they are: environment files, certificates and private keys. */
const NEVER = [/(^|\/)\.env($|\.(?!example$))/, /(^|\/)certs\//, /\.(pem|key|crt|p12|pfx)$/i];

async function filesOf(root: string, path: string): Promise<string[]> {
  const full = join(root, path);
  const info = await stat(full).catch(() => undefined);
  if (!info) return [];
  if (info.isFile()) return [path];
  const entries = await readdir(full, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

export interface ConfigManifest {
  kind: 'config';
  createdAt: string;
  files: { path: string; bytes: number; sha256: string }[];
  /** Files on the allow-list left out because they hold a secret value. */
  excluded: { path: string; reason: string }[];
  missing: string[];
}

export interface ConfigExportOptions {
  /** Where the deployment's files are (QCAT_CONFIG_DIR). */
  sourceDir: string;
  dir: string;
  /** QCAT's settings, already redacted: written as `qcat-settings.json`. */
  settings: Record<string, unknown>;
  /** Values that must never reach a backup (passwords of the connection URLs, and so on). */
  secrets: readonly string[];
  now?: Date;
}

/** Writes `config-<time>/` into `dir` (complete or not at all). */
export async function exportConfiguration(
  options: ConfigExportOptions,
): Promise<{ folder: string; manifest: ConfigManifest }> {
  const now = options.now ?? new Date();
  const folder = `config-${folderStamp(now)}`;
  const partial = join(options.dir, `.partial-${folder}`);
  const secrets = options.secrets.filter((secret) => secret.length >= 4);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  const manifest: ConfigManifest = {
    kind: 'config',
    createdAt: now.toISOString(),
    files: [],
    excluded: [],
    missing: [],
  };
  try {
    const write = async (path: string, content: Buffer): Promise<void> => {
      const text = content.toString('utf8');
      if (secrets.some((secret) => text.includes(secret))) {
        manifest.excluded.push({ path, reason: 'holds a secret value' });
        return;
      }
      await mkdir(dirname(join(partial, 'files', path)), { recursive: true });
      await writeFile(join(partial, 'files', path), content);
      manifest.files.push({
        path,
        bytes: content.length,
        sha256: await sha256OfFile(join(partial, 'files', path)),
      });
    };
    for (const path of CONFIG_PATHS) {
      const files = await filesOf(options.sourceDir, path);
      if (files.length === 0) manifest.missing.push(path);
      for (const file of files.sort()) {
        if (NEVER.some((pattern) => pattern.test(file))) continue;
        await write(file, await readFile(join(options.sourceDir, file)));
      }
    }
    await write('qcat-settings.json', Buffer.from(JSON.stringify(options.settings, null, 2)));
    await writeFile(join(partial, CONFIG_MANIFEST), JSON.stringify(manifest, null, 2));
    await rename(partial, join(options.dir, folder));
    return { folder, manifest };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}
