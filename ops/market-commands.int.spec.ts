import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import type { Candle } from '../core/market/types.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';

const root = new URL('..', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('qcat market generate | import', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: MarketDataStore;
  let dir: string;

  /** `qcat market ...` as a real process (the run's build of the sources). */
  const qcat = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: database.url };
      delete env['REDIS_URL'];
      execFile(
        process.execPath,
        qcatNodeArgs('market', ...args),
        { cwd: root, env, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  const all = async (symbol: string, timeframe: Candle['timeframe']): Promise<Candle[]> => {
    const candles: Candle[] = [];
    for await (const candle of store.readCandles({ symbol, timeframe })) candles.push(candle);
    return candles;
  };

  beforeAll(async () => {
    database = await createTestDatabase('market_cli');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined); // ended by the database drop
    store = new MarketDataStore(pool);
    dir = mkdtempSync(join(tmpdir(), 'qcat-klines-'));
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates candles for the symbols, range and timeframes asked, the same for the same seed', async () => {
    const args = [
      'generate',
      '--symbols',
      'BTCUSDT,SOLUSDT',
      '--from',
      '2025-03-01',
      '--days',
      '1',
      '--seed',
      '7',
      '--timeframes',
      '1m,1h',
    ];
    const first = await qcat(...args);
    expect(first.stderr).not.toContain('qcat:');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      'generated 2 symbols, 2025-03-01T00:00Z → 2025-03-02T00:00Z, seed 7: 1m 2,880, 1h 48',
    );
    expect(first.stdout).toMatch(
      /stored 2,928 new candles of 2,928 \(0 already there\) in [\d.]+ s/,
    );
    expect(await store.countCandles()).toBe(2928);
    // Open interest every hour and funding every 8 hours, from the hourly bars.
    expect(first.stdout).toMatch(/stored 48 new open-interest points and 6 new funding rates/);
    expect(await store.derivatives().count('open_interest', 'SOLUSDT')).toBe(24);
    expect((await store.listInstruments()).map((i) => i.symbol)).toEqual(['BTCUSDT', 'SOLUSDT']);
    const hours = await all('SOLUSDT', '1h');
    expect(hours).toHaveLength(24);
    expect(hours[0]?.openTime).toBe(Date.UTC(2025, 2, 1));
    const minutes = await all('SOLUSDT', '1m');
    expect(hours[0]?.close).toBe(minutes[59]?.close);

    // Again with the same seed: the very same candles, so nothing new.
    const again = await qcat(...args);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('stored 0 new candles of 2,928 (2,928 already there)');
    expect(again.stdout).toContain('stored 0 new open-interest points and 0 new funding rates');

    // Another seed over the next day: other prices, stored beside the first.
    const other = await qcat(
      'generate',
      '--symbols',
      'SOLUSDT',
      '--from',
      '2025-03-02',
      '--to',
      '2025-03-02T06:00:00Z',
      '--seed',
      '8',
      '--timeframes',
      '1m',
    );
    expect(other.code).toBe(0);
    expect(other.stdout).toContain('1m 360');
    expect(await store.countCandles({ symbol: 'SOLUSDT', timeframe: '1m' })).toBe(1440 + 360);
  });

  it('refuses bad options with a message and exit code 1', async () => {
    const unknown = await qcat('generate', '--symbols', 'NOPEUSDT', '--days', '1');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^qcat: --symbols: unknown instrument NOPEUSDT; known: /);
    const timeframe = await qcat('generate', '--timeframes', '1m,2h', '--days', '1');
    expect(timeframe.code).toBe(1);
    expect(timeframe.stderr).toContain('--timeframes: unknown 2h');
    const range = await qcat('generate', '--from', '2025-01-02', '--to', '2025-01-01');
    expect(range.code).toBe(1);
    expect(range.stderr).toContain('is not before --to');
  });

  it('imports Binance kline files, with or without header, ms or µs, and skips bars already stored', async () => {
    const january = join(dir, 'ETHUSDT-1m-2025-01-01.csv');
    writeFileSync(
      january,
      [
        'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore',
        '1735689600000,3332.0,3340.5,3330.1,3338.2,120.5,1735689659999,401234.5,900,60.1,200000.1,0',
        '1735689660000,3338.2,3341.0,3335.0,3336.0,80.25,1735689719999,267000.0,700,40.0,133000.0,0',
        '',
      ].join('\n'),
    );
    const micro = join(dir, 'ETHUSDT-1m-2025-01-01b.csv');
    writeFileSync(
      micro,
      '1735689660000000,3338.2,3341.0,3335.0,3336.0,80.25,1735689719999999,267000.0,700,40.0,133000.0,0\r\n' +
        '1735689720000000,3336.0,3337.0,3320.0,3321.5,300,1735689779999999,999000.0,2100,150.0,499000.0,0\r\n',
    );
    const result = await qcat('import', january, micro, '--symbol', 'ETHUSDT', '--timeframe', '1m');
    expect(result.stderr).not.toContain('qcat:');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${january}: 2 candles, 2 new`);
    expect(result.stdout).toContain(`${micro}: 2 candles, 1 new`);
    expect(result.stdout).toMatch(
      /imported 3 new 1m candles of ETHUSDT from 4 in 2 file\(s\) \(1 already there\)/,
    );
    expect(await all('ETHUSDT', '1m')).toEqual([
      {
        symbol: 'ETHUSDT',
        timeframe: '1m',
        openTime: 1735689600000,
        open: 3332,
        high: 3340.5,
        low: 3330.1,
        close: 3338.2,
        volume: 120.5,
      },
      {
        symbol: 'ETHUSDT',
        timeframe: '1m',
        openTime: 1735689660000,
        open: 3338.2,
        high: 3341,
        low: 3335,
        close: 3336,
        volume: 80.25,
      },
      {
        symbol: 'ETHUSDT',
        timeframe: '1m',
        openTime: 1735689720000,
        open: 3336,
        high: 3337,
        low: 3320,
        close: 3321.5,
        volume: 300,
      },
    ]);
    // A symbol QCAT knows gets its instrument from the built-in universe.
    expect(await store.getInstrument('ETHUSDT')).toMatchObject({ base: 'ETH', quote: 'USDT' });
  });

  it('writes nothing when any file has an error, and names file, line and field', async () => {
    const good = join(dir, 'PEPEUSDT-good.csv');
    writeFileSync(
      good,
      '1735689600000,0.0000190,0.0000191,0.0000189,0.0000190,5000000,1735689659999,95.0,12,2500000,47.5,0\n',
    );
    const bad = join(dir, 'PEPEUSDT-bad.csv');
    writeFileSync(
      bad,
      [
        'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore',
        '1735689660000,0.0000190,0.0000192,0.0000189,0.0000191,4000000,1735689719999,76.0,10,2000000,38.0,0',
        '1735689720000,0.0000191,abc,0.0000189,0.0000190,4000000,1735689779999,76.0,10,2000000,38.0,0',
      ].join('\n'),
    );
    const unknown = await qcat('import', good, '--symbol', 'PEPEUSDT');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('PEPEUSDT is not a known instrument: give --tick-size');

    const failed = await qcat(
      'import',
      good,
      bad,
      '--symbol',
      'PEPEUSDT',
      '--tick-size',
      '0.0000001',
      '--lot-size',
      '1',
      '--min-notional',
      '1',
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim()).toBe(
      `qcat: ${bad} line 3, field high: expected a number, got "abc"; nothing was imported`,
    );
    expect(await store.countCandles({ symbol: 'PEPEUSDT' })).toBe(0);
    expect(await store.getInstrument('PEPEUSDT')).toBeUndefined();

    const missing = await qcat('import', good, join(dir, 'nope.csv'), '--symbol', 'PEPEUSDT');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.csv: no such file');

    // Fixed, the same import goes through, and the instrument is created with it.
    writeFileSync(bad, '');
    const fixed = await qcat(
      'import',
      good,
      bad,
      '--symbol',
      'PEPEUSDT',
      '--tick-size',
      '0.0000001',
      '--lot-size',
      '1',
      '--min-notional',
      '1',
    );
    expect(fixed.code).toBe(0);
    expect(await store.countCandles({ symbol: 'PEPEUSDT' })).toBe(1);
    expect(await store.getInstrument('PEPEUSDT')).toEqual({
      symbol: 'PEPEUSDT',
      base: 'PEPE',
      quote: 'USDT',
      tickSize: 0.0000001,
      lotSize: 1,
      minNotional: 1,
    });
  });
});
