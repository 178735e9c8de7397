/**
 * Binance kline CSV files (data.binance.vision, `/api/v3/klines` saved as CSV) as candles.
 *
 * Columns: open_time, open, high, low, close, volume, close_time, quote_volume, count,
 * taker_buy_volume, taker_buy_quote_volume, ignore. An optional header row on line 1. Times are
 * epoch milliseconds, or microseconds (Binance spot files from 2025 on), told apart per line by
 * size. Every field is checked, and the bar itself: low ≤ open, close ≤ high; close_time =
 * open_time + timeframe − 1 ms (which catches a wrong timeframe); open times strictly increasing.
 *
 * The parser takes one line at a time, so a file of any size streams through it. Every error is
 * a ValidationError naming the file, the 1-based line and the field, such as
 * `klines.csv line 17, field high: expected a number, got "abc"`, with `file`, `line`, `field`
 * and `value` in its details.
 */
import { ValidationError } from '../errors.js';
import type { Timeframe } from '../strategies/kinds.js';
import { TIMEFRAME_MS, type Candle } from './types.js';

/** Binance's column names, as in the header row of its files. */
export const KLINE_FIELDS = [
  'open_time',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'close_time',
  'quote_volume',
  'count',
  'taker_buy_volume',
  'taker_buy_quote_volume',
  'ignore',
] as const;
export type KlineField = (typeof KLINE_FIELDS)[number];

export interface KlinesCsvOptions {
  /** The file's name as the user knows it; it starts every error message. */
  file: string;
  symbol: string;
  timeframe: Timeframe;
}

/** Times at or above this are microseconds (1e14 ms would be the year 5138). */
const MICROSECONDS_FROM = 1e14;
/** Epoch microseconds up to this (the year 5138 again). */
const MICROSECONDS_TO = 1e17;

const UNSIGNED_INTEGER = /^\d+$/;
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

const shown = (value: string): string =>
  JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);

const iso = (ms: number): string => new Date(ms).toISOString();

export class KlinesCsvParser {
  private lineNumber = 0;
  private previousOpen: number | undefined;
  private previousLine = 0;
  private count = 0;
  private readonly timeframeMs: number;

  constructor(private readonly options: KlinesCsvOptions) {
    this.timeframeMs = TIMEFRAME_MS[options.timeframe];
  }

  /** Lines read so far. */
  get lines(): number {
    return this.lineNumber;
  }

  /** Candles parsed so far. */
  get candles(): number {
    return this.count;
  }

  /**
   * The next line of the file, without its line break (a trailing `\r` is ignored). Answers its
   * candle, or undefined for a blank line or the header row.
   */
  push(text: string): Candle | undefined {
    this.lineNumber++;
    let line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (this.lineNumber === 1 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.trim() === '') return undefined;
    const fields = line.split(',').map((field) => field.trim().replace(/^"(.*)"$/, '$1'));
    // A header row: line 1, every field a name (a line of data with a typo is not one).
    if (this.lineNumber === 1 && fields.every((field) => /^[A-Za-z_][\w ]*$/.test(field)))
      return undefined;
    if (fields.length !== KLINE_FIELDS.length) {
      const field = KLINE_FIELDS[Math.min(fields.length, KLINE_FIELDS.length - 1)] ?? 'ignore';
      this.fail(
        field,
        fields.length < KLINE_FIELDS.length
          ? `missing: expected ${KLINE_FIELDS.length} comma-separated fields, got ${fields.length}`
          : `expected ${KLINE_FIELDS.length} comma-separated fields, got ${fields.length}`,
        line,
      );
    }
    const at = (index: number): string => fields[index] ?? '';

    const rawOpen = this.integer('open_time', at(0));
    const micro = rawOpen >= MICROSECONDS_FROM;
    if (rawOpen >= MICROSECONDS_TO)
      this.fail('open_time', 'expected epoch milliseconds or microseconds', at(0));
    const scale = micro ? 1000 : 1;
    if (rawOpen % scale !== 0)
      this.fail('open_time', `not on a ${this.options.timeframe} boundary`, at(0));
    const openTime = rawOpen / scale;
    if (openTime % this.timeframeMs !== 0) {
      this.fail(
        'open_time',
        `${iso(openTime)} is not on a ${this.options.timeframe} boundary; is the timeframe right?`,
        at(0),
      );
    }
    const open = this.price('open', at(1));
    const high = this.price('high', at(2));
    const low = this.price('low', at(3));
    const close = this.price('close', at(4));
    const volume = this.amount('volume', at(5));
    const closeTime = this.integer('close_time', at(6));
    const expectedClose = rawOpen + this.timeframeMs * scale - 1;
    if (closeTime !== expectedClose) {
      this.fail(
        'close_time',
        `expected open_time + ${this.options.timeframe} − 1 ${micro ? 'µs' : 'ms'} (${expectedClose}); is the timeframe right?`,
        at(6),
      );
    }
    this.amount('quote_volume', at(7));
    this.integer('count', at(8));
    this.amount('taker_buy_volume', at(9));
    this.amount('taker_buy_quote_volume', at(10));

    this.checkBar({ openTime, open, high, low, close }, at);
    this.previousOpen = openTime;
    this.previousLine = this.lineNumber;
    this.count++;
    return {
      symbol: this.options.symbol,
      timeframe: this.options.timeframe,
      openTime,
      open,
      high,
      low,
      close,
      volume,
    };
  }

  /** A bar's prices agree with each other, and it comes after the previous bar. */
  private checkBar(
    bar: Pick<Candle, 'openTime' | 'open' | 'high' | 'low' | 'close'>,
    at: (index: number) => string,
  ): void {
    const { openTime, open, high, low, close } = bar;
    if (high < Math.max(open, close, low))
      this.fail(
        'high',
        `${high} is below the bar's ${high < low ? 'low' : high < open ? 'open' : 'close'}`,
        at(2),
      );
    if (low > Math.min(open, close))
      this.fail('low', `${low} is above the bar's ${low > open ? 'open' : 'close'}`, at(3));
    if (this.previousOpen !== undefined && openTime <= this.previousOpen) {
      this.fail(
        'open_time',
        `${iso(openTime)} is not after the previous bar's ${iso(this.previousOpen)} (line ${this.previousLine})`,
        at(0),
      );
    }
  }

  private fail(field: KlineField, problem: string, value: string): never {
    const { file } = this.options;
    throw new ValidationError(
      'INVALID_KLINES_CSV',
      `${file} line ${this.lineNumber}, field ${field}: ${problem}`,
      { file, line: this.lineNumber, field, value: value.slice(0, 200) },
    );
  }

  private integer(field: KlineField, value: string): number {
    const parsed = Number(value);
    if (!UNSIGNED_INTEGER.test(value) || !Number.isSafeInteger(parsed))
      this.fail(field, `expected a whole number, got ${shown(value)}`, value);
    return parsed;
  }

  private amount(field: KlineField, value: string): number {
    const parsed = Number(value);
    if (!DECIMAL.test(value) || !Number.isFinite(parsed))
      this.fail(field, `expected a number, got ${shown(value)}`, value);
    if (parsed < 0) this.fail(field, `expected a number ≥ 0, got ${shown(value)}`, value);
    return parsed;
  }

  private price(field: KlineField, value: string): number {
    const parsed = this.amount(field, value);
    if (parsed <= 0) this.fail(field, `expected a price above 0, got ${shown(value)}`, value);
    return parsed;
  }
}

/** Every candle of a whole file's text (`\n` or `\r\n` line breaks). */
export function* parseKlinesCsv(
  text: string,
  options: KlinesCsvOptions,
): Generator<Candle, void, undefined> {
  const parser = new KlinesCsvParser(options);
  for (const line of text.split('\n')) {
    const candle = parser.push(line);
    if (candle) yield candle;
  }
}

/** Candles from a stream of lines (e.g. node:readline over a file), one line at a time. */
export async function* parseKlinesLines(
  lines: AsyncIterable<string> | Iterable<string>,
  options: KlinesCsvOptions,
): AsyncGenerator<Candle, void, undefined> {
  const parser = new KlinesCsvParser(options);
  for await (const line of lines) {
    const candle = parser.push(line);
    if (candle) yield candle;
  }
}
