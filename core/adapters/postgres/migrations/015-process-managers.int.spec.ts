import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-database.js';
import { processManagersMigration } from './015-process-managers.js';
import { eventLogMigrations, migrate } from '../migrations.js';

describe('migration 15: the approval flow and the backtest runner become process managers', () => {
  let database: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('pmmigration');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined); // ended by the database drop
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it('carries their checkpoints over to the process managers and drops their old read models', async () => {
    const before = eventLogMigrations.filter((m) => m.version < processManagersMigration.version);
    await migrate(pool, before);
    // As the projection runner left them: registry rows, a generation each, its view.
    for (const [name, table, checkpoint] of [
      ['approval_flow', 'approval_flow_log', 41],
      ['backtest_runner', 'backtest_runner_log', 42],
    ] as const) {
      await pool.query(
        `INSERT INTO qcat_projections (name, kind, version, generation, checkpoint)
         VALUES ($1, 'postgres', 1, 2, $2)`,
        [name, checkpoint],
      );
      await pool.query(`CREATE SCHEMA qcat_p_${name}_2`);
      await pool.query(`CREATE TABLE qcat_p_${name}_2.${table} (x int)`);
      await pool.query(`CREATE VIEW qcat_read.${table} AS SELECT * FROM qcat_p_${name}_2.${table}`);
    }
    // A read model whose name starts alike is left alone.
    await pool.query('CREATE SCHEMA qcat_p_approval_flowers_1');

    expect(await migrate(pool)).toContain(processManagersMigration.version);

    const { rows } = await pool.query<{ name: string; kind: string; checkpoint: string }>(
      'SELECT name, kind, checkpoint FROM qcat_projections ORDER BY name',
    );
    expect(rows).toEqual([
      { name: 'automation.approval-flow', kind: 'process', checkpoint: '41' },
      { name: 'automation.backtest-runner', kind: 'process', checkpoint: '42' },
    ]);
    const { rows: schemas } = await pool.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'qcat_p_%' ORDER BY nspname`,
    );
    expect(schemas.map((s) => s.nspname)).toEqual(['qcat_p_approval_flowers_1']);
    const { rows: views } = await pool.query<{ found: string | null }>(
      "SELECT to_regclass('qcat_read.approval_flow_log')::text AS found",
    );
    expect(views[0]?.found).toBeNull();
    const { rows: outcomes } = await pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM qcat_process_outcomes',
    );
    expect(outcomes[0]?.n).toBe('0');
  });
});
