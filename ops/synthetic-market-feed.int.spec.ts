import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { SyntheticFeed } from '../core/market/live-feed.js';
import { TIMEFRAME_MS, type Candle } from '../core/market/types.js';
import { TIMEFRAMES } from '../core/strategies/kinds.js';
import { FEED_NAME, SyntheticMarketFeed } from './synthetic-market-feed.js';

const MINUTE = 60_000;
/** Wall time the tests start at: mid-minute, mid-hour. */
const T0 = Date.UTC(2026, 5, 10, 12, 17, 23);

describe('the synthetic market feed (MARKET_FEED=synthetic)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('synthetic_feed');
    pool = new pg.Pool({ connectionString: database.url, max: 3 });
    pool.on('error', () => undefined);
    await ensureMarketSchema(pool);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  const clean = async (): Promise<void> => {
    await pool.query('TRUNCATE qcat_market.candles, qcat_market.feeds');
  };
  const stored = async (): Promise<Candle[]> => {
    const { rows } = await pool.query<{
      symbol: string;
      timeframe: Candle['timeframe'];
      ms: string;
      open: number;
      high: number;
      low: number;
      close: number;
      volume: number;
    }>(
      `SELECT symbol, timeframe, round(date_part('epoch', open_time) * 1000)::bigint AS ms,
              open, high, low, close, volume
         FROM qcat_market.candles ORDER BY timeframe, symbol, open_time`,
    );
    return rows.map(({ ms, ...candle }) => ({ ...candle, openTime: Number(ms) }));
  };
  const sorted = (candles: readonly Candle[]): Candle[] =>
    [...candles].sort(
      (a, b) =>
        a.timeframe.localeCompare(b.timeframe) ||
        a.symbol.localeCompare(b.symbol) ||
        a.openTime - b.openTime,
    );
  const feed = (wall: { now: number }, speed: number, hours: number, log: string[] = []) =>
    new SyntheticMarketFeed({
      market: new MarketDataStore(pool),
      config: {
        MARKET_FEED_SPEED: speed,
        MARKET_FEED_SEED: 42,
        MARKET_FEED_HISTORY_HOURS: hours,
      },
      log: { info: (m) => log.push(m), warn: (m) => log.push(m) },
      now: () => wall.now,
    });

  it('never runs the market clock past the wall clock, at any speed', async () => {
    await clean();
    const wall = { now: T0 };
    const demo = feed(wall, 60, 2);
    const latestClose = async (): Promise<number> => {
      const { rows } = await pool.query<{ ms: string }>(
        `SELECT max(round(date_part('epoch', open_time) * 1000)::bigint +
                CASE timeframe ${TIMEFRAMES.map((t) => `WHEN '${t}' THEN ${TIMEFRAME_MS[t]}`).join(' ')} END)
                AS ms FROM qcat_market.candles`,
      );
      return Number(rows[0]?.ms ?? 0);
    };
    await demo.round();
    // Sped up: one market hour per wall minute, from the start of its two hours of history.
    wall.now += 30_000;
    await demo.round();
    const origin = Math.floor(T0 / MINUTE) * MINUTE - 2 * 3_600_000;
    expect(await latestClose()).toBe(origin + 30 * MINUTE);
    // Two wall minutes are two market hours: it reaches now, 12:17, at 12:19 …
    wall.now += 90_000;
    while ((await demo.round()) > 0);
    expect(await latestClose()).toBe(origin + 120 * MINUTE);
    // … and stays with the wall clock from then on.
    for (const step of [600_000, 3_600_000, 5_000, 61_000]) {
      wall.now += step;
      while ((await demo.round()) > 0);
      const close = await latestClose();
      expect(close).toBeLessThanOrEqual(wall.now);
      expect(close).toBe(Math.floor(wall.now / MINUTE) * MINUTE);
    }
  });

  it('goes on from where the stored bars end after a restart or a new leader: the one path, no bar twice', async () => {
    await clean();
    const wall = { now: T0 };
    const origin = Math.floor(T0 / MINUTE) * MINUTE - 3 * 3_600_000;
    const logs: string[][] = [];
    const start = (speed = 1) => {
      const log: string[] = [];
      logs.push(log);
      return feed(wall, speed, 3, log);
    };
    const first = start();
    while ((await first.round()) > 0);
    wall.now += 7 * MINUTE + 11_000;
    await first.round();
    // Were a restart to regenerate its path from the recorded origin, it would now be another
    // path: the saved state, not the origin, says where the path stands.
    await pool.query(`UPDATE qcat_market.feeds SET origin = origin - interval '1 day'`);
    // A restart (a new process), then a second leader while the first still holds its feed.
    wall.now += 50 * MINUTE;
    const second = start();
    while ((await second.round()) > 0);
    wall.now += 3 * 3_600_000 + 5 * MINUTE;
    const third = start(60);
    wall.now += 20_000; // 20 market minutes at ×60
    await third.round();
    first.reset(); // leadership back to the first process: it reads the feed back
    wall.now += 20_000;
    await first.round();
    await first.round();

    expect(logs[1]?.join('\n')).toMatch(/resumed from/);
    expect(logs[2]?.join('\n')).toMatch(/resumed from/);
    expect(logs[0]?.filter((line) => line.includes('resumed from'))).toHaveLength(1);
    const reference = SyntheticFeed.start({
      seed: 42,
      origin,
      rollUps: TIMEFRAMES.filter((t) => t !== '1m'),
    });
    const { rows } = await pool.query<{ ms: string }>(
      `SELECT round(date_part('epoch', max(open_time)) * 1000)::bigint AS ms
         FROM qcat_market.candles WHERE timeframe = '1m'`,
    );
    const end = Number(rows[0]?.ms) + MINUTE;
    const expected = sorted(reference.advance(end));
    const got = await stored();
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
    // Every minute from the origin, twelve symbols, no gap.
    expect(got.filter((c) => c.timeframe === '1m')).toHaveLength(((end - origin) / MINUTE) * 12);
  });

  it('starts its path again from the origin when the saved state is missing (a feed of an earlier version)', async () => {
    await clean();
    const wall = { now: T0 };
    const first = feed(wall, 1, 1);
    while ((await first.round()) > 0);
    await pool.query('UPDATE qcat_market.feeds SET state = NULL WHERE name = $1', [FEED_NAME]);
    wall.now += 30 * MINUTE;
    const log: string[] = [];
    const upgraded = feed(wall, 1, 1, log);
    while ((await upgraded.round()) > 0);
    expect(log.join('\n')).toMatch(/its path from/);
    const origin = Math.floor(T0 / MINUTE) * MINUTE - 3_600_000;
    const reference = SyntheticFeed.start({
      seed: 42,
      origin,
      rollUps: TIMEFRAMES.filter((t) => t !== '1m'),
    });
    expect(await stored()).toEqual(sorted(reference.advance(wall.now)));
    const { rows } = await pool.query<{ saved: boolean }>(
      'SELECT state IS NOT NULL AS saved FROM qcat_market.feeds WHERE name = $1',
      [FEED_NAME],
    );
    expect(rows[0]?.saved).toBe(true);
  });
});
