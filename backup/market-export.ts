/**
 * Market data in the backup schedule (issue 21): ADR 007 keeps candles outside the log, so the log
 * backups do not hold them. Each scheduled backup run also writes a snapshot of the `qcat_market`
 * tables — gzip'd CSV per table, by PostgreSQL's COPY, and a manifest with each file's rows, size
 * and SHA-256 — into a `market-<UTC time>` folder beside the log backups. `qcat market restore`
 * loads one back; stored bars are never overwritten (ADR 007), so loading is idempotent.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { z } from 'zod';
import { folderStamp, sha256OfFile } from './folder-copy.js';

export const MARKET_MANIFEST = 'market-manifest.json';
const MARKET_FOLDER = /^market-\d{8}T\d{6}Z$/;
export const isMarketFolder = (name: string): boolean => MARKET_FOLDER.test(name);

/** The tables in the order they load; the key lists make `ON CONFLICT DO NOTHING` well defined. */
const TABLES = [
  { name: 'instruments', order: 'symbol' },
  { name: 'feeds', order: 'name' },
  { name: 'candles', order: 'symbol, timeframe, open_time' },
] as const;

const fileEntry = z.object({
  table: z.enum(['instruments', 'feeds', 'candles']),
  file: z.string().regex(/^[a-z]+\.csv\.gz$/),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
const manifestSchema = z.object({
  kind: z.literal('market'),
  createdAt: z.iso.datetime(),
  files: z.array(fileEntry),
});
export type MarketManifest = z.infer<typeof manifestSchema>;

/** Writes `market-<time>/` into `dir` (complete or not at all); answers its folder name. */
export async function exportMarketData(
  pool: pg.Pool,
  dir: string,
  now: Date = new Date(),
): Promise<{ folder: string; manifest: MarketManifest }> {
  const folder = `market-${folderStamp(now)}`;
  const partial = join(dir, `.partial-${folder}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  const client = await pool.connect();
  try {
    const files: MarketManifest['files'] = [];
    // One snapshot of all three tables.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    for (const table of TABLES) {
      const file = `${table.name}.csv.gz`;
      const source = client.query(
        copyTo(
          `COPY (SELECT * FROM qcat_market.${table.name} ORDER BY ${table.order}) TO STDOUT (FORMAT csv, HEADER true)`,
        ),
      );
      await pipeline(source, createGzip(), createWriteStream(join(partial, file)));
      const path = join(partial, file);
      files.push({
        table: table.name,
        file,
        rows: source.rowCount,
        bytes: (await stat(path)).size,
        sha256: await sha256OfFile(path),
      });
    }
    await client.query('COMMIT');
    const manifest: MarketManifest = { kind: 'market', createdAt: now.toISOString(), files };
    await writeFile(join(partial, MARKET_MANIFEST), JSON.stringify(manifest, null, 2));
    await rename(partial, join(dir, folder));
    return { folder, manifest };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    await rm(partial, { recursive: true, force: true });
    throw error;
  } finally {
    client.release();
  }
}

/** Problems of a market snapshot: manifest, each file's size and SHA-256; empty when sound. */
export async function marketSnapshotProblems(folder: string): Promise<string[]> {
  let manifest: MarketManifest;
  try {
    manifest = manifestSchema.parse(
      JSON.parse(await readFile(join(folder, MARKET_MANIFEST), 'utf8')),
    );
  } catch (error) {
    return [`${MARKET_MANIFEST}: ${(error as Error).message}`];
  }
  const problems: string[] = [];
  for (const entry of manifest.files) {
    const path = join(folder, entry.file);
    try {
      if ((await stat(path)).size !== entry.bytes) problems.push(`${entry.file}: size differs`);
      else if ((await sha256OfFile(path)) !== entry.sha256)
        problems.push(`${entry.file}: SHA-256 differs`);
    } catch {
      problems.push(`${entry.file}: missing`);
    }
  }
  return problems;
}

/** Loads a snapshot into `qcat_market` (after a check); bars already stored are kept. */
export async function importMarketData(
  pool: pg.Pool,
  folder: string,
): Promise<Record<string, number>> {
  const problems = await marketSnapshotProblems(folder);
  if (problems.length > 0) throw new Error(`market snapshot ${folder}: ${problems.join('; ')}`);
  const manifest = manifestSchema.parse(
    JSON.parse(await readFile(join(folder, MARKET_MANIFEST), 'utf8')),
  );
  const client = await pool.connect();
  const added: Record<string, number> = {};
  try {
    await client.query('BEGIN');
    for (const table of TABLES) {
      const entry = manifest.files.find((f) => f.table === table.name);
      if (!entry) continue;
      const staging = `qcat_market_load_${table.name}`;
      await client.query(
        `CREATE TEMP TABLE ${staging} (LIKE qcat_market.${table.name}) ON COMMIT DROP`,
      );
      await pipeline(
        createReadStream(join(folder, entry.file)),
        createGunzip(),
        client.query(copyFrom(`COPY ${staging} FROM STDIN (FORMAT csv, HEADER true)`)),
      );
      const result = await client.query(
        `INSERT INTO qcat_market.${table.name} SELECT * FROM ${staging} ON CONFLICT DO NOTHING`,
      );
      added[table.name] = result.rowCount ?? 0;
    }
    await client.query('COMMIT');
    return added;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
