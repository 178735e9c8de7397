import { inInstantRange, RANGE_TEXT } from '../domain-bounds.js';
import { ValidationError } from '../errors.js';

/**
 * Binance USDⓈ-M futures files of the public data archive, as records a CSV parser produced
 * (ops/derivatives-import.ts reads them with csv-parse): each record's fields and its line in the
 * file. Every bad value stops the import with a ValidationError naming file, line and field.
 *
 *   metrics (`BTCUSDT-metrics-2025-01-01.csv`, every 5 minutes):
 *     create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,…
 *     `create_time` is `YYYY-MM-DD HH:MM:SS` UTC; open interest in the base asset, its value in USDT.
 *   fundingRate (`BTCUSDT-fundingRate-2025-01.csv`, every funding period):
 *     calc_time,funding_interval_hours,last_funding_rate
 *     `calc_time` in epoch milliseconds; the rate per period (0.0001 = 0.01 %).
 * A header line is recognised by its first column's name and then columns are found by name (so
 * extra columns are harmless); without one, the columns are taken in the order above.
 */

export interface OpenInterestPoint {
  symbol: string;
  /** Epoch ms. */
  time: number;
  /** Open interest in the base asset (contracts of 1 unit). */
  openInterest: number;
  /** Its value in the quote currency, when the file has it. */
  openInterestValue: number | null;
}

export interface FundingPoint {
  symbol: string;
  /** Epoch ms of the funding calculation. */
  time: number;
  /** Funding rate per period (positive: longs pay shorts). */
  rate: number;
  intervalHours: number | null;
}

export type DerivativesKind = 'metrics' | 'funding';

export interface CsvRecord {
  fields: string[];
  /** 1-based line of the record in its file. */
  line: number;
}

interface Context {
  file: string;
  /** The symbol the file is of (its `symbol` column, when present, must agree). */
  symbol: string;
}

const COLUMNS: Record<DerivativesKind, readonly string[]> = {
  metrics: ['create_time', 'symbol', 'sum_open_interest', 'sum_open_interest_value'],
  funding: ['calc_time', 'funding_interval_hours', 'last_funding_rate'],
};
/** A funding rate's magnitude is capped by the exchange at a few percent; 1 means a bad file. */
const MAX_RATE = 1;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z?$/;

/** A metrics file's records as open-interest points. */
export const parseOpenInterestRecords = (
  records: AsyncIterable<CsvRecord>,
  context: Context,
): AsyncGenerator<OpenInterestPoint> => parseRecords('metrics', records, context, metricsPoint);

/** A fundingRate file's records as funding points. */
export const parseFundingRecords = (
  records: AsyncIterable<CsvRecord>,
  context: Context,
): AsyncGenerator<FundingPoint> => parseRecords('funding', records, context, fundingPoint);

async function* parseRecords<P>(
  kind: DerivativesKind,
  records: AsyncIterable<CsvRecord>,
  context: Context,
  point: (cell: Cell, where: string, context: Context) => P,
): AsyncGenerator<P> {
  const expected = COLUMNS[kind];
  let index: Map<string, number> | undefined;
  let first = true;
  for await (const { fields, line } of records) {
    const where = `${context.file}: line ${line}`;
    const cells = fields.map((f) => f.trim());
    if (first) {
      first = false;
      if (cells[0] === expected[0]) {
        index = new Map(cells.map((name, i) => [name, i]));
        const absent = expected.filter((name, i) => !index?.has(name) && i < 3);
        if (absent.length > 0)
          fail(where, 'header', `missing column(s) ${absent.join(', ')} of a ${kind} file`);
        continue;
      }
      if (!/^\d/.test(cells[0] ?? ''))
        fail(where, expected[0] ?? '', `expected a ${kind} file (header ${expected.join(',')})`);
    }
    const cell = (name: string): string | undefined => {
      const at = index ? index.get(name) : expected.indexOf(name);
      return at === undefined || at < 0 ? undefined : cells[at];
    };
    yield point(cell, where, context);
  }
}

type Cell = (name: string) => string | undefined;

function metricsPoint(cell: Cell, where: string, context: Context): OpenInterestPoint {
  const time = instant(cell('create_time'), where, 'create_time');
  const symbol = cell('symbol');
  if (symbol !== undefined && symbol !== '' && symbol.toUpperCase() !== context.symbol)
    fail(where, 'symbol', `'${symbol}' is not ${context.symbol}`);
  const openInterest = amount(cell('sum_open_interest'), where, 'sum_open_interest');
  const valueText = cell('sum_open_interest_value');
  const openInterestValue =
    valueText === undefined || valueText === ''
      ? null
      : amount(valueText, where, 'sum_open_interest_value');
  return { symbol: context.symbol, time, openInterest, openInterestValue };
}

function fundingPoint(cell: Cell, where: string, context: Context): FundingPoint {
  const time = instant(cell('calc_time'), where, 'calc_time');
  const intervalText = cell('funding_interval_hours');
  let intervalHours: number | null = null;
  if (intervalText !== undefined && intervalText !== '') {
    intervalHours = Number(intervalText);
    if (!/^\d+$/.test(intervalText) || intervalHours < 1 || intervalHours > 24)
      fail(
        where,
        'funding_interval_hours',
        `'${intervalText}' is not a whole number of hours 1-24`,
      );
  }
  const rateText = cell('last_funding_rate') ?? '';
  const rate = Number(rateText);
  if (rateText === '' || !Number.isFinite(rate) || Math.abs(rate) >= MAX_RATE)
    fail(where, 'last_funding_rate', `'${rateText}' is not a funding rate (a number within ±1)`);
  return { symbol: context.symbol, time, rate, intervalHours };
}

/** Epoch ms or µs (digits), or `YYYY-MM-DD HH:MM:SS` in UTC. */
function instant(text: string | undefined, where: string, field: string): number {
  const value = text ?? '';
  let ms = NaN;
  if (/^\d{1,17}$/.test(value)) {
    ms = Number(value);
    if (ms >= 1e14) ms = Math.floor(ms / 1000); // microseconds, as newer archive files have
  } else {
    const match = DATE_TIME.exec(value);
    if (match) {
      const [, y, mo, d, h, mi, s] = match.map(Number);
      ms = Date.UTC(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0);
      // Nothing rolls over: 2025-02-30, 24:00:00, 12:60:00 and 12:00:60 are not times.
      const date = new Date(ms);
      if (
        date.getUTCDate() !== d ||
        date.getUTCHours() !== h ||
        date.getUTCMinutes() !== mi ||
        date.getUTCSeconds() !== s
      )
        ms = NaN;
    }
  }
  if (Number.isNaN(ms))
    fail(where, field, `'${value}' is not a time (epoch ms or YYYY-MM-DD HH:MM:SS)`);
  if (!inInstantRange(ms))
    fail(where, field, `'${value}' is outside the accepted range, ${RANGE_TEXT}`);
  return ms;
}

function amount(text: string | undefined, where: string, field: string): number {
  const value = text ?? '';
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < 0 || n > 1e15)
    fail(where, field, `'${value}' is not an amount ≥ 0`);
  return n;
}

function fail(where: string, field: string, message: string): never {
  throw new ValidationError('INVALID_DERIVATIVES_CSV', `${where}, ${field}: ${message}`, {
    field,
  });
}
