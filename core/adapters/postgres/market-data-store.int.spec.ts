import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { ValidationError } from '../../errors.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../market/synthetic.js';
import type { Candle } from '../../market/types.js';
import { ensureMarketSchema, MarketDataStore } from './market-data-store.js';

const FROM = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

const byKey = (a: Candle, b: Candle): number =>
  a.symbol.localeCompare(b.symbol) ||
  a.timeframe.localeCompare(b.timeframe) ||
  a.openTime - b.openTime;

describe('MarketDataStore (PostgreSQL)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: MarketDataStore;

  beforeAll(async () => {
    database = await createTestDatabase('market');
    pool = new pg.Pool({ connectionString: database.url, max: 5 });
    pool.on('error', () => undefined); // ended by the database drop
    store = new MarketDataStore(pool);
    await ensureMarketSchema(pool);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it('creates its schema once, even when several processes start together', async () => {
    const fresh = await createTestDatabase('market_schema');
    const freshPool = new pg.Pool({ connectionString: fresh.url, max: 5 });
    freshPool.on('error', () => undefined); // ended by the database drop
    try {
      const results = await Promise.all([
        ensureMarketSchema(freshPool),
        ensureMarketSchema(freshPool),
        ensureMarketSchema(freshPool),
      ]);
      expect(results.flat()).toEqual([10, 11, 12, 13]); // the market's migrations among QCAT's (ADR 028)
      expect(await ensureMarketSchema(freshPool)).toEqual([]);
    } finally {
      await freshPool.end();
      await fresh.drop();
    }
    const { rows } = await pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'qcat_market' ORDER BY 1",
    );
    expect(rows.map((r) => r.table_name)).toEqual([
      'candles',
      'feeds',
      'funding_rates',
      'instruments',
      'open_interest',
    ]); // versions in qcat_migrations, with the rest of QCAT's (ADR 028)
  });

  it('upserts instruments: adds, updates what changed, leaves the rest', async () => {
    expect(await store.upsertInstruments(DEFAULT_INSTRUMENTS)).toBe(DEFAULT_INSTRUMENTS.length);
    expect(await store.upsertInstruments(DEFAULT_INSTRUMENTS)).toBe(0);
    const btc = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT')!;
    expect(await store.upsertInstruments([{ ...btc, minNotional: 10 }])).toBe(1);
    expect(await store.getInstrument('BTCUSDT')).toEqual({ ...btc, minNotional: 10 });
    await store.upsertInstruments([btc]);
    const listed = await store.listInstruments();
    expect(listed).toEqual(
      [...DEFAULT_INSTRUMENTS].sort((a, b) => a.symbol.localeCompare(b.symbol)),
    );
    expect(await store.getInstrument('NOPEUSDT')).toBeUndefined();
  });

  it('stores candles exactly, skips ones already there, reads them back in time order in pages', async () => {
    const instruments = DEFAULT_INSTRUMENTS.slice(0, 3);
    const candles = [...generateCandles({ seed: 9, from: FROM, to: FROM + DAY, instruments })];
    expect(await store.insertCandles(candles)).toBe(candles.length);
    const again = await store.writeCandles(candles.slice(0, 3000));
    expect(again).toEqual({ candles: 3000, inserted: 0 });

    const eth = candles.filter((c) => c.symbol === 'ETHUSDT');
    const read: Candle[] = [];
    for await (const candle of store.readCandles({ symbol: 'ETHUSDT', timeframe: '1m' }, 100))
      read.push(candle);
    expect(read).toEqual(eth); // every number exactly as written, in time order

    const from = FROM + 60 * 60_000;
    const to = FROM + 90 * 60_000;
    const range: Candle[] = [];
    for await (const candle of store.readCandles(
      { symbol: 'ETHUSDT', timeframe: '1m', from, to },
      7,
    ))
      range.push(candle);
    expect(range).toEqual(eth.slice(60, 90));

    const page = await store.candlePage({
      symbol: 'ETHUSDT',
      timeframe: '1m',
      after: eth[9]!.openTime,
      limit: 3,
    });
    expect(page).toEqual(eth.slice(10, 13));
    expect(await store.countCandles({ symbol: 'ETHUSDT' })).toBe(1440);
    expect(await store.countCandles({ timeframe: '1h' })).toBe(0);
  });

  it('answers the newest candle of each instrument', async () => {
    const latest = await store.latestCandles('1m');
    expect(latest.map((c) => [c.symbol, c.openTime])).toEqual(
      DEFAULT_INSTRUMENTS.slice(0, 3)
        .map((i) => [i.symbol, FROM + DAY - 60_000] as const)
        .sort((a, b) => a[0].localeCompare(b[0])),
    );
    expect(await store.latestCandles('1d')).toEqual([]);
  });

  it('writes all or nothing inside a transaction', async () => {
    const instruments = [DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'DOTUSDT')!];
    // 28,800 candles: the first batch of 10,000 is written before the source breaks.
    const candles = generateCandles({ seed: 1, from: FROM, to: FROM + 20 * DAY, instruments });
    function* failing(): Generator<Candle> {
      let n = 0;
      for (const candle of candles) {
        if (++n === 15_000) throw new ValidationError('BROKEN_SOURCE', 'the source broke');
        yield candle;
      }
    }
    await expect(
      store.transaction(async (tx) => {
        await tx.upsertInstruments([{ ...instruments[0]!, symbol: 'DOTXUSDT' }]);
        return tx.writeCandles(failing());
      }),
    ).rejects.toThrow('the source broke');
    expect(await store.countCandles({ symbol: 'DOTUSDT' })).toBe(0);
    expect(await store.getInstrument('DOTXUSDT')).toBeUndefined();
  });

  it('refuses a candle that is not a number', async () => {
    const bad: Candle = {
      symbol: 'BTCUSDT',
      timeframe: '1m',
      openTime: FROM,
      open: Number.NaN,
      high: 1,
      low: 1,
      close: 1,
      volume: 1,
    };
    await expect(store.insertCandles([bad])).rejects.toThrow(/finite numbers/);
    await expect(store.insertCandles([{ ...bad, open: 1, openTime: FROM + 0.5 }])).rejects.toThrow(
      ValidationError,
    );
    // The table's own checks stand behind it: low above the open.
    await expect(store.insertCandles([{ ...bad, open: 1, low: 2, high: 3 }])).rejects.toThrow(
      /check constraint/,
    );
  });

  it('copes with a key twice in one batch, in and out of a transaction', async () => {
    const [first] = [
      ...generateCandles({
        seed: 4,
        from: FROM + 400 * DAY,
        to: FROM + 400 * DAY + 60_000,
        instruments: DEFAULT_INSTRUMENTS.slice(0, 1),
      }),
    ];
    const second = { ...first!, openTime: first!.openTime + 60_000 };
    expect(await store.insertCandles([first!, first!])).toBe(1);
    // Inside a transaction the failed first try must not abort the transaction.
    const counts = await store.transaction(async (tx) => [
      await tx.insertCandles([second, second]),
      await tx.insertCandles([first!]),
      await tx.countCandles({ symbol: first!.symbol }),
    ]);
    expect(counts).toEqual([1, 0, 1440 + 2]);
  });

  it('bulk-writes a large batch (rate printed, not asserted)', async () => {
    const instruments = DEFAULT_INSTRUMENTS.slice(3, 10);
    const candles = [...generateCandles({ seed: 2, from: FROM, to: FROM + 20 * DAY, instruments })];
    const started = performance.now();
    const result = await store.transaction((tx) => tx.writeCandles(candles));
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `market data store: ${result.inserted} candles in ${seconds.toFixed(2)} s = ${Math.round(result.inserted / seconds)} candles/s`,
    );
    expect(result).toEqual({ candles: candles.length, inserted: candles.length });
    const stored: Candle[] = [];
    for (const instrument of instruments)
      for await (const c of store.readCandles({ symbol: instrument.symbol, timeframe: '1m' }))
        stored.push(c);
    expect(stored.sort(byKey)).toEqual([...candles].sort(byKey));
  });
});
