import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { KlinesCsvParser, parseKlinesCsv, parseKlinesLines } from './klines-csv.js';

const options = { file: 'klines.csv', symbol: 'BTCUSDT', timeframe: '1m' as const };
const HEADER =
  'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
// Two real rows of BTCUSDT-1m-2025-01-01.csv from data.binance.vision.
const ROW_1 =
  '1735689600000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,1735689659999,768978.16515590,1336,3.76124000,351920.63309900,0';
const ROW_2 =
  '1735689660000,93610.93000000,93652.00000000,93606.29000000,93648.00000000,7.20418000,1735689719999,674579.72180440,1216,3.18310000,298065.77734680,0';

const expected = [
  {
    symbol: 'BTCUSDT',
    timeframe: '1m',
    openTime: 1735689600000,
    open: 93576,
    high: 93610.93,
    low: 93537.5,
    close: 93610.93,
    volume: 8.21827,
  },
  {
    symbol: 'BTCUSDT',
    timeframe: '1m',
    openTime: 1735689660000,
    open: 93610.93,
    high: 93652,
    low: 93606.29,
    close: 93648,
    volume: 7.20418,
  },
];

/** Row 1 with one field replaced (0-based column). */
const withField = (index: number, value: string): string => {
  const fields = ROW_1.split(',');
  fields[index] = value;
  return fields.join(',');
};

/** The ValidationError that parsing `text` throws. */
const errorOf = (text: string, timeframe: '1m' | '1h' = '1m'): ValidationError => {
  try {
    Array.from(parseKlinesCsv(text, { ...options, timeframe }));
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error('parsed without an error');
};

describe('Binance kline CSV', () => {
  it('parses a file without a header', () => {
    expect([...parseKlinesCsv(`${ROW_1}\n${ROW_2}\n`, options)]).toEqual(expected);
  });

  it('skips a header row, a byte order mark, CRLF line ends and blank lines', () => {
    const text = `\uFEFF${HEADER}\r\n${ROW_1}\r\n\r\n${ROW_2}\r\n`;
    expect([...parseKlinesCsv(text, options)]).toEqual(expected);
  });

  it('reads microsecond timestamps (Binance spot files from 2025 on) as milliseconds', () => {
    const micro = (row: string): string => {
      const fields = row.split(',');
      fields[0] = `${fields[0] ?? ''}000`;
      fields[6] = `${fields[6] ?? ''}999`;
      return fields.join(',');
    };
    expect(micro(ROW_1)).toMatch(/^1735689600000000,.*,1735689659999999,/);
    expect([...parseKlinesCsv(`${micro(ROW_1)}\n${micro(ROW_2)}`, options)]).toEqual(expected);
  });

  it('parses longer timeframes, whose close time is open + length − 1 ms', () => {
    const hour = '1735689600000,1,2,0.5,1.5,10,1735693199999,15,3,5,7,0';
    expect([...parseKlinesCsv(hour, { ...options, timeframe: '1h' })]).toEqual([
      {
        symbol: 'BTCUSDT',
        timeframe: '1h',
        openTime: 1735689600000,
        open: 1,
        high: 2,
        low: 0.5,
        close: 1.5,
        volume: 10,
      },
    ]);
  });

  it('streams: one line at a time, from any iterable of lines', async () => {
    async function* lines(): AsyncGenerator<string> {
      yield HEADER;
      yield ROW_1;
      yield ROW_2;
    }
    const candles = [];
    for await (const candle of parseKlinesLines(lines(), options)) candles.push(candle);
    expect(candles).toEqual(expected);

    const parser = new KlinesCsvParser(options);
    expect(parser.push(HEADER)).toBeUndefined();
    expect(parser.push(ROW_1)).toEqual(expected[0]);
    expect(parser.lines).toBe(2);
    expect(parser.candles).toBe(1);
  });

  it.each([
    ['a word', withField(2, 'abc'), 'high', 'expected a number, got "abc"'],
    ['an empty field', withField(1, ''), 'open', 'expected a number, got ""'],
    ['NaN', withField(4, 'NaN'), 'close', 'expected a number, got "NaN"'],
    ['a zero price', withField(3, '0'), 'low', 'expected a price above 0'],
    ['a negative volume', withField(5, '-1.5'), 'volume', 'expected a number ≥ 0, got "-1.5"'],
    ['a fractional trade count', withField(8, '12.5'), 'count', 'expected a whole number'],
    ['a text open time', withField(0, '2025-01-01'), 'open_time', 'expected a whole number'],
    ['a bad quote volume', withField(7, '1,2'), 'ignore', 'expected 12 comma-separated fields'],
    ['a bad taker volume', withField(10, 'x'), 'taker_buy_quote_volume', 'got "x"'],
    ['an open time off the minute', withField(0, '1735689601000'), 'open_time', 'boundary'],
    ['a close time of another timeframe', withField(6, '1735693199999'), 'close_time', '1m'],
    ['a high below the open', withField(2, '93570'), 'high', "below the bar's open"],
    ['a high below the low', withField(2, '93500'), 'high', "below the bar's low"],
    ['a low above the open', withField(3, '93600'), 'low', "above the bar's open"],
    ['missing fields', ROW_1.split(',').slice(0, 9).join(','), 'taker_buy_volume', 'missing'],
  ])('names file, line and field for %s', (_label, row, field, message) => {
    const error = errorOf(
      `${HEADER}\n${ROW_2.replace('1735689660000', '1735689540000').replace('1735689719999', '1735689599999')}\n${row}`,
    );
    expect(error.code).toBe('INVALID_KLINES_CSV');
    expect(error.message).toMatch(new RegExp(`^klines\\.csv line 3, field ${field}: `));
    expect(error.message).toContain(message);
    expect(error.details).toMatchObject({ file: 'klines.csv', line: 3, field });
  });

  it('refuses a bar that is not after the previous one, naming both lines', () => {
    const error = errorOf(`${ROW_1}\n${ROW_2}\n${ROW_1}`);
    expect(error.message).toBe(
      "klines.csv line 3, field open_time: 2025-01-01T00:00:00.000Z is not after the previous bar's 2025-01-01T00:01:00.000Z (line 2)",
    );
  });

  it('treats a first line with a typo as data, not as a header', () => {
    expect(errorOf(withField(0, 'x1735689600000')).message).toMatch(
      /^klines\.csv line 1, field open_time: expected a whole number, got "x1735689600000"/,
    );
  });

  it('suggests the timeframe when a whole file is of another one', () => {
    // 00:00 is on an hour boundary too, so the close time is what gives it away ...
    expect(errorOf(`${ROW_1}\n${ROW_2}`, '1h').message).toBe(
      'klines.csv line 1, field close_time: expected open_time + 1h − 1 ms (1735693199999); is the timeframe right?',
    );
    // ... and 00:01 is not on one.
    expect(errorOf(ROW_2, '1h').message).toBe(
      'klines.csv line 1, field open_time: 2025-01-01T00:01:00.000Z is not on a 1h boundary; is the timeframe right?',
    );
  });
});
