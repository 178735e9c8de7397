import { describe, expect, it } from 'vitest';
import {
  parseFundingRecords,
  parseOpenInterestRecords,
  type CsvRecord,
} from './derivatives-csv.js';

async function* records(lines: string[][]): AsyncGenerator<CsvRecord> {
  for (const [i, fields] of lines.entries()) yield { fields, line: i + 1 };
}
const all = async <T>(source: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
};
const context = { file: 'BTCUSDT-metrics-2025-01-01.csv', symbol: 'BTCUSDT' };
const METRICS_HEADER = [
  'create_time',
  'symbol',
  'sum_open_interest',
  'sum_open_interest_value',
  'count_toptrader_long_short_ratio',
  'sum_toptrader_long_short_ratio',
  'count_long_short_ratio',
  'sum_taker_long_short_vol_ratio',
];

describe('Binance futures metrics and fundingRate files', () => {
  it('reads open interest by column name, in UTC', async () => {
    const points = await all(
      parseOpenInterestRecords(
        records([
          METRICS_HEADER,
          [
            '2025-01-01 00:05:00',
            'BTCUSDT',
            '77082.018',
            '7193842750.77',
            '1.9',
            '3.2',
            '1.4',
            '1.08',
          ],
          ['2025-01-01 00:10:00', 'BTCUSDT', '77234.084', '', '', '', '', ''],
        ]),
        context,
      ),
    );
    expect(points).toEqual([
      {
        symbol: 'BTCUSDT',
        time: Date.UTC(2025, 0, 1, 0, 5),
        openInterest: 77082.018,
        openInterestValue: 7193842750.77,
      },
      {
        symbol: 'BTCUSDT',
        time: Date.UTC(2025, 0, 1, 0, 10),
        openInterest: 77234.084,
        openInterestValue: null,
      },
    ]);
  });

  it('reads funding rates with or without a header, ms or µs times', async () => {
    const expected = { symbol: 'BTCUSDT', time: 1735689600000, rate: 0.0001, intervalHours: 8 };
    for (const lines of [
      [
        ['calc_time', 'funding_interval_hours', 'last_funding_rate'],
        ['1735689600000', '8', '0.00010000'],
      ],
      [['1735689600000000', '8', '0.0001']],
    ])
      expect(await all(parseFundingRecords(records(lines), context))).toEqual([expected]);
  });

  it('names file, line and field of the first bad value', async () => {
    const cases: [string[][], 'metrics' | 'funding', RegExp][] = [
      [
        [METRICS_HEADER, ['2025-01-01 00:05:00', 'BTCUSDT', '-3', '1']],
        'metrics',
        /^BTCUSDT-metrics-2025-01-01\.csv: line 2, sum_open_interest: '-3' is not an amount ≥ 0$/,
      ],
      [
        [METRICS_HEADER, ['2025-02-30 00:05:00', 'BTCUSDT', '3', '1']],
        'metrics',
        /line 2, create_time: '2025-02-30 00:05:00' is not a time/,
      ],
      [
        [METRICS_HEADER, ['2025-01-01 12:60:00', 'BTCUSDT', '3', '1']],
        'metrics',
        /line 2, create_time: '2025-01-01 12:60:00' is not a time/,
      ],
      [
        [METRICS_HEADER, ['2025-01-01 23:59:60', 'BTCUSDT', '3', '1']],
        'metrics',
        /line 2, create_time: '2025-01-01 23:59:60' is not a time/,
      ],
      [
        [METRICS_HEADER, ['2025-01-01 00:05:00', 'ETHUSDT', '3', '1']],
        'metrics',
        /line 2, symbol: 'ETHUSDT' is not BTCUSDT/,
      ],
      [
        [
          ['calc_time', 'funding_interval_hours', 'last_funding_rate'],
          ['1735689600000', '8', 'x'],
        ],
        'funding',
        /line 2, last_funding_rate: 'x' is not a funding rate/,
      ],
      [
        [['calc_time', 'oops']],
        'funding',
        /line 1, header: missing column\(s\) funding_interval_hours, last_funding_rate/,
      ],
      [[['open_time', 'open']], 'funding', /line 1, calc_time: expected a funding file/],
      [
        [['1735689600000', '30', '0.0001']],
        'funding',
        /line 1, funding_interval_hours: '30' is not a whole number of hours/,
      ],
    ];
    for (const [lines, kind, message] of cases) {
      const parsed =
        kind === 'metrics'
          ? all(parseOpenInterestRecords(records(lines), context))
          : all(parseFundingRecords(records(lines), context));
      await expect(parsed).rejects.toThrow(message);
    }
  });
});
