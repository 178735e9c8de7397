/**
 * Freshness of the market data (ADR 007) for the CandlesStale alert: per timeframe, the open time
 * of the newest stored candle and how many bars old it is, read from `qcat_market` at each scrape
 * (one index lookup per timeframe, on `candles_by_time`). A timeframe without candles has no
 * series. A query that fails keeps the last values: /metrics never fails because of it.
 */
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { TIMEFRAME_MS } from '../core/market/types.js';
import { TIMEFRAMES } from '../core/strategies/kinds.js';

const NEWEST_PER_TIMEFRAME = `
  SELECT tf AS timeframe,
         (SELECT date_part('epoch', max(c.open_time)) FROM qcat_market.candles c
           WHERE c.timeframe = tf) AS newest
    FROM unnest($1::text[]) AS tf`;

export function registerMarketMetrics(
  registry: Registry,
  pool: pg.Pool,
  now: () => number = Date.now,
): void {
  let reading: Promise<void> | undefined;
  const newest = new Gauge({
    name: 'market_candle_latest_open_timestamp_seconds',
    help: 'Open time (Unix seconds) of the newest stored candle of each timeframe',
    labelNames: ['timeframe'] as const,
    registers: [registry],
    collect: () => read(),
  });
  const age = new Gauge({
    name: 'market_candles_age_bars',
    help: 'Bars since the newest stored candle of each timeframe closed (0 while the current bar is open)',
    labelNames: ['timeframe'] as const,
    registers: [registry],
    collect: () => read(),
  });
  const read = (): Promise<void> =>
    (reading ??= pool
      .query<{ timeframe: string; newest: number | null }>({
        text: NEWEST_PER_TIMEFRAME,
        values: [TIMEFRAMES],
      })
      .then(({ rows }) => {
        newest.reset();
        age.reset();
        for (const row of rows) {
          const timeframe = TIMEFRAMES.find((t) => t === row.timeframe);
          if (!timeframe || row.newest === null) continue;
          const bar = TIMEFRAME_MS[timeframe];
          const closedAt = row.newest * 1000 + bar;
          newest.set({ timeframe }, row.newest);
          age.set({ timeframe }, Math.max(0, (now() - closedAt) / bar));
        }
      })
      .catch(() => undefined)
      .finally(() => {
        reading = undefined;
      }));
}
