import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { eventLogMigrations, migrate } from './migrations.js';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/legacy-schema');

/** Loads a pg_dump of a database as older code left it (test/fixtures/legacy-schema). */
async function loadFixture(url: string, file: string): Promise<void> {
  // Its own connection: the dump empties search_path for the session.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(readFileSync(join(FIXTURES, file), 'utf8'));
  } finally {
    await client.end();
  }
}

/**
 * What the migrations' schemas are made of, as the catalog says it: functions' source, columns,
 * indexes, …
 */
async function schemaOf(pool: pg.Pool): Promise<Record<string, string[]>> {
  const list = async (sql: string): Promise<string[]> =>
    (await pool.query<{ item: string }>(sql)).rows.map((row) => row.item);
  const ours =
    "n.nspname IN ('public', 'qcat_read', 'qcat_market', 'qcat_engine', 'qcat_backtest')";
  const schemas = "IN ('public', 'qcat_read', 'qcat_market', 'qcat_engine', 'qcat_backtest')";
  return {
    functions: await list(`SELECT pg_get_functiondef(p.oid) AS item FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${ours} ORDER BY 1`),
    columns: await list(`SELECT table_schema || '.' || table_name || '.' || column_name || ' '
      || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS item
      FROM information_schema.columns WHERE table_schema ${schemas}
      ORDER BY 1`),
    indexes: await list(`SELECT indexdef AS item FROM pg_indexes
      WHERE schemaname ${schemas} ORDER BY 1`),
    constraints:
      await list(`SELECT c.conrelid::regclass || ' ' || pg_get_constraintdef(c.oid) AS item
      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE ${ours} ORDER BY 1`),
    triggers: await list(`SELECT pg_get_triggerdef(t.oid) AS item FROM pg_trigger t
      WHERE NOT t.tgisinternal ORDER BY 1`),
  };
}

describe('migrations: one mechanism for every schema QCAT owns (ADR 028)', () => {
  const databases: TestDatabase[] = [];
  const pools: pg.Pool[] = [];
  let fresh: Record<string, string[]>;

  const database = async (label: string): Promise<{ url: string; pool: pg.Pool }> => {
    const created = await createTestDatabase(label);
    databases.push(created);
    const pool = new pg.Pool({ connectionString: created.url, max: 2 });
    pool.on('error', () => undefined); // ended by the database drop
    pools.push(pool);
    return { url: created.url, pool };
  };

  beforeAll(async () => {
    const { pool } = await database('migrate_fresh');
    expect(await migrate(pool)).toEqual(eventLogMigrations.map((m) => m.version));
    fresh = await schemaOf(pool);
  });
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await Promise.all(databases.map((created) => created.drop()));
  });

  it('upgrades a database as the released code left it: market versions carried over, nothing run twice, the old ledger left for the version before', async () => {
    const { url, pool } = await database('migrate_released');
    await loadFixture(url, 'released-2026-12.sql');
    const before = await pool.query<{ version: number; applied_at: Date }>(
      'SELECT version, applied_at FROM qcat_market.schema_versions ORDER BY version',
    );
    expect(before.rows.map((row) => row.version)).toEqual([1, 2, 3, 4]);

    const market = eventLogMigrations.filter((m) => m.carriedFrom);
    const applied = await migrate(pool);
    // The market's four were recorded in its own ledger: carried over, not applied again.
    expect(applied.filter((version) => market.some((m) => m.version === version))).toEqual([]);
    expect(applied.every((version) => version > 9)).toBe(true);

    const { rows } = await pool.query<{ version: number; applied_at: Date }>(
      'SELECT version, applied_at FROM qcat_migrations ORDER BY version',
    );
    expect(rows.map((row) => row.version)).toEqual(eventLogMigrations.map((m) => m.version));
    for (const migration of market) {
      const old = before.rows.find((row) => row.version === migration.carriedFrom?.version);
      const carried = rows.find((row) => row.version === migration.version);
      expect(carried?.applied_at).toEqual(old?.applied_at);
    }
    // The old ledger stays as it was, for a replica of the version before (rolling upgrade).
    const frozen = await pool.query<{ version: number; applied_at: Date }>(
      'SELECT version, applied_at FROM qcat_market.schema_versions ORDER BY version',
    );
    expect(frozen.rows).toEqual(before.rows);
    const withoutOldLedger = Object.fromEntries(
      Object.entries(await schemaOf(pool)).map(([kind, items]) => [
        kind,
        items.filter((item) => !item.includes('schema_versions')),
      ]),
    );
    expect(withoutOldLedger).toEqual(fresh);
    expect(await migrate(pool)).toEqual([]);
  });

  it('upgrades a log at migration 4 (append functions without hashes) to the functions of a fresh one', async () => {
    const { url, pool } = await database('migrate_v4');
    await loadFixture(url, 'log-v4.sql');
    expect(await migrate(pool)).toEqual(
      eventLogMigrations.filter((m) => m.version > 4).map((m) => m.version),
    );
    const upgraded = await schemaOf(pool);
    expect(upgraded.functions).toHaveLength(fresh.functions?.length ?? -1);
    expect(upgraded).toEqual(fresh);
  });

  it('keeps one definition of each append function: migrations replace it, they carry no copy', () => {
    const folder = join(import.meta.dirname, 'migrations');
    const sources = [
      ...readdirSync(folder).filter((file) => file.endsWith('.ts') && !file.includes('.spec.')),
      ...readdirSync(join(folder, 'functions')).map((file) => join('functions', file)),
    ].map((file) => ({ file, text: readFileSync(join(folder, file), 'utf8') }));
    for (const name of ['qcat_append', 'qcat_append_batch']) {
      const defining = sources.filter(({ text }) =>
        new RegExp(`CREATE (OR REPLACE )?FUNCTION ${name}\\(`).test(text),
      );
      expect(defining.map(({ file }) => file)).toEqual(['functions/qcat-append.ts']);
    }
  });
});
