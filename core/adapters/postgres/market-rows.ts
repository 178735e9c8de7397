/**
 * The rows of the market data store (market-data-store.ts): candles and instruments to and from
 * PostgreSQL, and the SQL text of the candle writes, which build array literals themselves.
 */
import type { Candle, Instrument } from '../../market/types.js';
import { TIMEFRAMES, type Timeframe } from '../../strategies/kinds.js';

export const isStorable = (candle: Candle): boolean =>
  Number.isSafeInteger(candle.openTime) &&
  Number.isFinite(candle.open) &&
  Number.isFinite(candle.high) &&
  Number.isFinite(candle.low) &&
  Number.isFinite(candle.close) &&
  Number.isFinite(candle.volume) &&
  (TIMEFRAMES as readonly string[]).includes(candle.timeframe);

/** A PostgreSQL array literal of numbers, or of strings already quoted; built here because pg's
 * generic conversion costs about 3 µs per candle, as much as the INSERT itself. */
export const arrayLiteral = (items: readonly (string | number)[]): string => `{${items.join(',')}}`;

const quotedCache = new Map<string, string>();
/** A string as an element of an array literal: in double quotes, `"` and `\\` escaped. */
export const quoted = (text: string): string => {
  let result = quotedCache.get(text);
  if (result === undefined) {
    result = `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
    if (quotedCache.size < 10_000) quotedCache.set(text, result);
  }
  return result;
};

/** Rows per INSERT: large enough to amortise the round trip, small enough to keep memory flat. */
export const INSERT_BATCH = 10_000;
export const READ_PAGE = 10_000;

const CANDLE_ROWS = `
  SELECT u.s, u.tf, to_timestamp(u.t / 1000.0), u.o, u.h, u.l, u.c, u.v
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[], $6::float8[],
                $7::float8[], $8::float8[]) AS u(s, tf, t, o, h, l, c, v)`;
/** For a batch that meets no stored candle: about a third faster than with ON CONFLICT. */
export const INSERT_NEW_CANDLES = `
  INSERT INTO qcat_market.candles (symbol, timeframe, open_time, open, high, low, close, volume)
  ${CANDLE_ROWS}`;
export const INSERT_CANDLES = `${INSERT_NEW_CANDLES}
  ON CONFLICT (symbol, timeframe, open_time) DO NOTHING`;
/** Whether any stored candle falls in the batch's time span of any of its symbol/timeframes. */
export const BATCH_OVERLAPS = `
  SELECT EXISTS (
    SELECT 1 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS g(s, tf, lo, hi)
     WHERE EXISTS (SELECT 1 FROM qcat_market.candles c
                    WHERE c.symbol = g.s AND c.timeframe = g.tf
                      AND c.open_time BETWEEN to_timestamp(g.lo / 1000.0) AND to_timestamp(g.hi / 1000.0))
  ) AS overlaps`;
export const UNIQUE_VIOLATION = '23505';

/** The columns of a candle, in CandleRow order (open_time as epoch ms). */
export const candleColumns = (alias: string): string =>
  `${alias}.symbol, ${alias}.timeframe, (extract(epoch FROM ${alias}.open_time) * 1000)::float8,
   ${alias}.open, ${alias}.high, ${alias}.low, ${alias}.close, ${alias}.volume`;

export type CandleRow = [string, Timeframe, number, number, number, number, number, number];

export const toCandle = (row: CandleRow): Candle => ({
  symbol: row[0],
  timeframe: row[1],
  openTime: row[2],
  open: row[3],
  high: row[4],
  low: row[5],
  close: row[6],
  volume: row[7],
});

export interface InstrumentRow {
  symbol: string;
  base: string;
  quote: string;
  tick_size: string;
  lot_size: string;
  min_notional: string;
}

export const toInstrument = (row: InstrumentRow): Instrument => ({
  symbol: row.symbol,
  base: row.base,
  quote: row.quote,
  tickSize: Number(row.tick_size),
  lotSize: Number(row.lot_size),
  minNotional: Number(row.min_notional),
});
