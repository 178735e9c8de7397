/**
 * Futures market data beside the candles (ADR 007, docs/hot-symbols.md): open interest and
 * funding rates per symbol in `qcat_market.open_interest` and `qcat_market.funding_rates`
 * (market schema migration 3). Facts observed, not decisions: no events; a point already stored
 * is kept (`ON CONFLICT DO NOTHING`), so a repeated import or generate is harmless.
 */
import type pg from 'pg';
import type { FundingPoint, OpenInterestPoint } from '../../market/derivatives-csv.js';

const BATCH = 10_000;
const HOUR = 3_600_000;

type Db = pg.Pool | pg.PoolClient;

export class DerivativesStore {
  constructor(private readonly db: Db) {}

  /** Runs `work` in one transaction on `pool`: every write commits together or none does. */
  static async transaction<T>(
    pool: pg.Pool,
    work: (store: DerivativesStore) => Promise<T>,
  ): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(new DerivativesStore(client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Stores points in batches; answers how many were written and how many were new. */
  async writeOpenInterest(
    points: AsyncIterable<OpenInterestPoint> | Iterable<OpenInterestPoint>,
  ): Promise<{ points: number; inserted: number }> {
    return this.batched(points, async (batch) => {
      const result = await this.db.query(
        `INSERT INTO qcat_market.open_interest (symbol, time, open_interest, open_interest_value)
         SELECT s, to_timestamp(t / 1000.0), oi, v
           FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[]) AS u(s, t, oi, v)
         ON CONFLICT (symbol, time) DO NOTHING`,
        [
          batch.map((p) => p.symbol),
          batch.map((p) => p.time),
          batch.map((p) => p.openInterest),
          batch.map((p) => p.openInterestValue),
        ],
      );
      return result.rowCount ?? 0;
    });
  }

  async writeFunding(
    points: AsyncIterable<FundingPoint> | Iterable<FundingPoint>,
  ): Promise<{ points: number; inserted: number }> {
    return this.batched(points, async (batch) => {
      const result = await this.db.query(
        `INSERT INTO qcat_market.funding_rates (symbol, time, rate, interval_hours)
         SELECT s, to_timestamp(t / 1000.0), r, h
           FROM unnest($1::text[], $2::float8[], $3::float8[], $4::int[]) AS u(s, t, r, h)
         ON CONFLICT (symbol, time) DO NOTHING`,
        [
          batch.map((p) => p.symbol),
          batch.map((p) => p.time),
          batch.map((p) => p.rate),
          batch.map((p) => p.intervalHours),
        ],
      );
      return result.rowCount ?? 0;
    });
  }

  /**
   * Open interest of `symbol` in [from, to), one point an hour (the last of each hour), oldest
   * first: what the hot-symbol score compares 24-hour changes of.
   */
  async hourlyOpenInterest(
    symbol: string,
    from: number,
    to: number,
  ): Promise<{ time: number; value: number }[]> {
    const { rows } = await this.db.query<{ time: number; value: number }>(
      `SELECT DISTINCT ON (date_trunc('hour', time))
              (extract(epoch FROM date_trunc('hour', time)) * 1000)::float8 AS time,
              open_interest AS value
         FROM qcat_market.open_interest
        WHERE symbol = $1 AND time >= to_timestamp($2 / 1000.0) AND time < to_timestamp($3 / 1000.0)
        ORDER BY date_trunc('hour', time), time DESC`,
      [symbol, from, to],
    );
    // Stamped at the end of its hour: the value known by then.
    return rows.map((row) => ({ time: row.time + HOUR - 1, value: row.value }));
  }

  /** Funding rates of `symbol` in [from, to), oldest first. */
  async funding(
    symbol: string,
    from: number,
    to: number,
  ): Promise<{ time: number; rate: number }[]> {
    const { rows } = await this.db.query<{ time: number; rate: number }>(
      `SELECT (extract(epoch FROM time) * 1000)::float8 AS time, rate
         FROM qcat_market.funding_rates
        WHERE symbol = $1 AND time >= to_timestamp($2 / 1000.0) AND time < to_timestamp($3 / 1000.0)
        ORDER BY time`,
      [symbol, from, to],
    );
    return rows;
  }

  async count(table: 'open_interest' | 'funding_rates', symbol?: string): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM qcat_market.${table} WHERE $1::text IS NULL OR symbol = $1`,
      [symbol ?? null],
    );
    return Number(rows[0]?.n ?? 0);
  }

  private async batched<P>(
    points: AsyncIterable<P> | Iterable<P>,
    write: (batch: P[]) => Promise<number>,
  ): Promise<{ points: number; inserted: number }> {
    let batch: P[] = [];
    let total = 0;
    let inserted = 0;
    for await (const point of points) {
      batch.push(point);
      total++;
      if (batch.length >= BATCH) {
        inserted += await write(batch);
        batch = [];
      }
    }
    if (batch.length > 0) inserted += await write(batch);
    return { points: total, inserted };
  }
}
