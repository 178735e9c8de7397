import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { registerMarketMetrics } from './market-metrics.js';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);

/** The freshness gauges of the CandlesStale alert, read from a real qcat_market. */
describe('market data freshness metrics', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  const registry = new Registry();

  const values = async (name: string): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await registry.metrics())
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`))
        .map((line) => {
          const timeframe = /timeframe="([^"]+)"/.exec(line)?.[1] ?? '';
          return [timeframe, Number(line.split(' ').at(-1))];
        }),
    );

  beforeAll(async () => {
    database = await createTestDatabase('market_metrics');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    await ensureMarketSchema(pool);
    registerMarketMetrics(registry, pool, () => NOW);
  });

  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it('exports no series while there are no candles', async () => {
    expect(await values('market_candles_age_bars')).toEqual({});
  });

  it('says how many bars ago the newest candle of each timeframe closed', async () => {
    const candle = (timeframe: '1m' | '1h', openTime: number) => ({
      symbol: 'BTCUSDT',
      timeframe,
      openTime,
      open: 100,
      high: 101,
      low: 99,
      close: 100,
      volume: 1,
    });
    await new MarketDataStore(pool).insertCandles([
      // 1m: the newest opened 11:49, closed 11:50: 10 bars ago at 12:00.
      candle('1m', NOW - 12 * 60_000),
      candle('1m', NOW - 11 * 60_000),
      // 1h: the bar of 11:00 is still open.
      candle('1h', NOW - 3_600_000),
    ]);
    expect(await values('market_candles_age_bars')).toEqual({ '1m': 10, '1h': 0 });
    expect(await values('market_candle_latest_open_timestamp_seconds')).toEqual({
      '1m': (NOW - 11 * 60_000) / 1000,
      '1h': (NOW - 3_600_000) / 1000,
    });
  });
});
