import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-database.js';
import { migrate } from '../migrations.js';

/**
 * qcat_position_at bisects on positions (migration 7). It must answer what the query it replaced
 * answered — the last position recorded at or before an instant — on logs with ties (one commit,
 * many events) and gaps in positions (a log imported as it was).
 */
describe('qcat_position_at', () => {
  let database: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('position_at');
    pool = new pg.Pool({ connectionString: database.url, max: 1 });
    await migrate(pool);
  });

  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  const answers = async (instants: string[]): Promise<[string, string][]> => {
    const result: [string, string][] = [];
    for (const instant of instants) {
      const { rows } = await pool.query<{ bisected: string; scanned: string }>(
        `SELECT qcat_position_at($1) AS bisected,
                coalesce((SELECT position FROM qcat_events WHERE recorded_at <= $1
                           ORDER BY recorded_at DESC, position DESC LIMIT 1), 0) AS scanned`,
        [instant],
      );
      result.push([rows[0]!.bisected, rows[0]!.scanned]);
    }
    return result;
  };

  it('answers 0 on an empty log', async () => {
    expect(await answers(['2030-01-01T00:00:00Z'])).toEqual([['0', '0']]);
  });

  it('answers as a scan would, with ties and gaps', async () => {
    // Positions 1..200 with gaps (every 7th missing), 3 events per millisecond.
    await pool.query(`
      INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash)
      SELECT g, 'x-1', g, gen_random_uuid(), 'T', '{}', '{"actor":"a"}',
             timestamptz '2026-01-01' + (g / 3) * interval '1 millisecond', repeat('0', 64)
        FROM generate_series(1, 200) AS g WHERE g % 7 <> 0`);
    const instants = ['2025-12-31T23:59:59.999Z'];
    for (let ms = 0; ms <= 70; ms++) {
      instants.push(new Date(Date.parse('2026-01-01T00:00:00Z') + ms).toISOString());
    }
    const result = await answers(instants);
    for (const [bisected, scanned] of result) expect(bisected).toBe(scanned);
    expect(result[0]).toEqual(['0', '0']);
    expect(result.at(-1)).toEqual(['200', '200']);
    expect(new Set(result.map(([bisected]) => bisected)).size).toBeGreaterThan(50);
  });
});
