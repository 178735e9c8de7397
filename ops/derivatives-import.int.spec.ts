import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rankingCommand } from '../automation/hot-symbols/ranking-command.js';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';

const root = new URL('..', import.meta.url).pathname;
const HOUR = 3_600_000;
const NOW = Math.floor(Date.now() / HOUR) * HOUR;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `YYYY-MM-DD HH:MM:SS`, as Binance's metrics files stamp their rows. */
const stamp = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

/**
 * `qcat market import --kind metrics|funding` as a real process: Binance's futures metrics and
 * fundingRate files into qcat_market, all or nothing, errors naming file, line and field; then the
 * hot-symbol ranking scores the imported series instead of marking them missing.
 */
describe('qcat market import --kind metrics | funding', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let dir: string;

  const qcat = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: database.url };
      delete env['REDIS_URL'];
      execFile(
        process.execPath,
        qcatNodeArgs('market', 'import', ...args),
        { cwd: root, env, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  const counts = async () => {
    const derivatives = new MarketDataStore(pool).derivatives();
    return [await derivatives.count('open_interest'), await derivatives.count('funding_rates')];
  };

  beforeAll(async () => {
    database = await createTestDatabase('derivatives_import');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined);
    await ensureMarketSchema(pool);
    dir = mkdtempSync(join(tmpdir(), 'qcat-derivatives-'));
    const instruments = DEFAULT_INSTRUMENTS.slice(0, 4);
    const market = new MarketDataStore(pool);
    await market.upsertInstruments(instruments);
    await market.insertCandles([
      ...generateCandles({
        seed: 9,
        from: NOW - 33 * 24 * HOUR,
        to: NOW,
        instruments,
        timeframe: '1h',
      }),
    ]);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports metrics and funding files of one symbol; the ranking scores them', async () => {
    const symbol = DEFAULT_INSTRUMENTS[1]?.symbol ?? '';
    // Open interest every 5 minutes over 33 days: flat with a wobble, +80 % over the last day.
    const header =
      'create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio';
    const rows: string[] = [];
    for (let t = NOW - 33 * 24 * HOUR; t < NOW; t += 5 * 60_000) {
      const wobble = 1 + 0.02 * Math.sin(t / (7 * HOUR));
      const buildUp = t >= NOW - 24 * HOUR ? 1 + 0.8 * ((t - (NOW - 24 * HOUR)) / (24 * HOUR)) : 1;
      const oi = 50_000 * wobble * buildUp;
      rows.push(`${stamp(t)},${symbol},${oi.toFixed(3)},${(oi * 100).toFixed(2)},1,1,1,1`);
    }
    const metricsA = join(dir, `${symbol}-metrics-a.csv`);
    const metricsB = join(dir, `${symbol}-metrics-b.csv`);
    const half = Math.floor(rows.length / 2);
    writeFileSync(metricsA, [header, ...rows.slice(0, half)].join('\n') + '\n');
    writeFileSync(metricsB, [header, ...rows.slice(half)].join('\r\n') + '\r\n');
    // Funding every 8 h around 0.01 %, the last one at 0.3 %.
    const funding = join(dir, `${symbol}-fundingRate.csv`);
    const periods: string[] = [];
    for (let t = NOW - 33 * 24 * HOUR; t < NOW; t += 8 * HOUR) {
      const rate = t >= NOW - 8 * HOUR ? 0.003 : 0.0001 + 0.00002 * Math.sin(t / (24 * HOUR));
      periods.push(`${t},8,${rate.toFixed(8)}`);
    }
    writeFileSync(
      funding,
      ['calc_time,funding_interval_hours,last_funding_rate', ...periods].join('\n'),
    );

    const imported = await qcat('--kind', 'metrics', '--symbol', symbol, metricsA, metricsB);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain(
      `imported ${rows.length.toLocaleString('en-US')} new open-interest points of ${symbol}`,
    );
    const again = await qcat('--kind', 'metrics', '--symbol', symbol, metricsA);
    expect(again.stdout).toMatch(/imported 0 new open-interest points .* already there/);
    const rates = await qcat('--kind', 'funding', '--symbol', symbol, funding);
    expect(rates.code, rates.stderr).toBe(0);
    expect(await counts()).toEqual([rows.length, periods.length]);

    const ranking = await rankingCommand(
      new MarketDataStore(pool),
      NOW,
      { minScore: 1, topN: 5 },
      'manual',
    );
    const scored = ranking.scores.find((s) => s.symbol === symbol);
    expect(scored?.dimensions.openInterest.z).toBeGreaterThan(3);
    expect(scored?.dimensions.funding.z).toBeGreaterThan(3);
    const other = ranking.scores.find((s) => s.symbol !== symbol);
    expect(other?.dimensions.funding).toEqual({
      z: null,
      rank: null,
      missing: 'no funding-rate series',
    });
  });

  it('imports nothing when a line of any file is bad, and says which file, line and field', async () => {
    const before = await counts();
    const good = join(dir, 'good-funding.csv');
    const bad = join(dir, 'bad-funding.csv');
    writeFileSync(
      good,
      'calc_time,funding_interval_hours,last_funding_rate\n1000000000000,8,0.0001\n',
    );
    writeFileSync(
      bad,
      'calc_time,funding_interval_hours,last_funding_rate\n1000028800000,8,0.0001\n1000057600000,8,lots\n',
    );
    const run = await qcat('--kind', 'funding', '--symbol', 'ETHUSDT', good, bad);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^qcat: .*bad-funding\.csv: line 3, last_funding_rate: 'lots' is not a funding rate .*; nothing was imported/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    const unbalanced = join(dir, 'quote.csv');
    writeFileSync(
      unbalanced,
      'calc_time,funding_interval_hours,last_funding_rate\n"1000000000000,8,0.1\n',
    );
    const quoted = await qcat('--kind', 'funding', '--symbol', 'ETHUSDT', unbalanced);
    expect(quoted.code).toBe(1);
    expect(quoted.stderr).toMatch(/quote\.csv: line \d+: .*nothing was imported/);
    const kind = await qcat('--kind', 'trades', '--symbol', 'ETHUSDT', good);
    expect(kind.stderr).toMatch(/--kind 'trades': expected klines, metrics or funding/);
    expect(await counts()).toEqual(before);
  });
});
