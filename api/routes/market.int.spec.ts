import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES } from '../../core/access/roles.js';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import type { Candle } from '../../core/market/types.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';

const FROM = Date.UTC(2025, 5, 1);
const DAY = 86_400_000;

interface CandlePage {
  symbol: string;
  timeframe: string;
  candles: {
    openTime: string;
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
  }[];
  nextCursor: string | null;
}

const asApi = (c: Candle): CandlePage['candles'][number] => ({
  openTime: new Date(c.openTime).toISOString(),
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume,
});

describe('market data API', () => {
  let api: TestServer;
  let minutes: Candle[];

  beforeAll(async () => {
    api = await startTestServer('market_api');
    const store = new MarketDataStore(api.server.runtime.pool);
    const instruments = DEFAULT_INSTRUMENTS.slice(0, 2);
    await store.upsertInstruments(DEFAULT_INSTRUMENTS);
    const candles = [...generateCandles({ seed: 5, from: FROM, to: FROM + DAY, instruments })];
    await store.insertCandles(candles);
    await store.insertCandles([
      ...generateCandles({ seed: 5, from: FROM, to: FROM + DAY, instruments, timeframe: '1h' }),
    ]);
    minutes = candles.filter((c) => c.symbol === 'ETHUSDT');
  });
  afterAll(async () => {
    await api.stop();
  });

  it('lists every instrument, for every role', async () => {
    for (const role of ROLES) {
      const response = await api.request('GET', '/api/v1/instruments', { token: api.tokens[role] });
      expect(response.status, role).toBe(200);
      const body = (await response.json()) as { instruments: unknown[] };
      expect(body.instruments).toHaveLength(DEFAULT_INSTRUMENTS.length);
    }
    const response = await api.request('GET', '/api/v1/instruments', { token: api.tokens.viewer });
    const { instruments } = (await response.json()) as { instruments: unknown[] };
    expect(instruments[0]).toEqual({
      symbol: 'ADAUSDT',
      base: 'ADA',
      quote: 'USDT',
      tickSize: 0.0001,
      lotSize: 0.1,
      minNotional: 5,
    });
    expect((await api.request('GET', '/api/v1/instruments', { token: null })).status).toBe(401);
  });

  it('pages through candles in time order with the cursor, at most 5000 a page', async () => {
    const seen: CandlePage['candles'] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `symbol=ETHUSDT&timeframe=1m&limit=500${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`;
      const response = await api.request('GET', `/api/v1/candles?${query}`, {
        token: api.tokens.trader,
      });
      expect(response.status).toBe(200);
      const page = (await response.json()) as CandlePage;
      expect(page.symbol).toBe('ETHUSDT');
      expect(page.candles.length).toBeLessThanOrEqual(500);
      seen.push(...page.candles);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(minutes.map(asApi));

    const tooMany = await api.request('GET', '/api/v1/candles?symbol=ETHUSDT&limit=5001');
    expect(tooMany.status).toBe(400);
    const full = await api.request('GET', '/api/v1/candles?symbol=ETHUSDT&limit=5000');
    const page = (await full.json()) as CandlePage;
    expect(page.candles).toHaveLength(1440);
    expect(page.nextCursor).toBeNull();
  });

  it('answers the newest bars with latest=true, oldest first, within the range and without a cursor', async () => {
    const newest = await api.request('GET', '/api/v1/candles?symbol=ETHUSDT&latest=true&limit=50');
    expect(newest.status).toBe(200);
    const page = (await newest.json()) as CandlePage;
    expect(page.candles).toEqual(minutes.slice(-50).map(asApi));
    expect(page.nextCursor).toBeNull();
    const to = new Date(FROM + 3_600_000).toISOString();
    const bounded = await api.request(
      'GET',
      `/api/v1/candles?symbol=ETHUSDT&latest=true&limit=10&to=${to}`,
    );
    expect(((await bounded.json()) as CandlePage).candles).toEqual(
      minutes.slice(50, 60).map(asApi),
    );
    const withCursor = await api.request(
      'GET',
      `/api/v1/candles?symbol=ETHUSDT&latest=true&after=${encodeURIComponent(to)}`,
    );
    expect(withCursor.status).toBe(400);
    expect(((await withCursor.json()) as { detail: string }).detail).toMatch(/no cursor/);
  });

  it('filters by timeframe and range (from inclusive, to exclusive)', async () => {
    const from = new Date(FROM + 2 * 3_600_000).toISOString();
    const to = new Date(FROM + 5 * 3_600_000).toISOString();
    const response = await api.request(
      'GET',
      `/api/v1/candles?symbol=BTCUSDT&timeframe=1h&from=${from}&to=${to}`,
    );
    const page = (await response.json()) as CandlePage;
    expect(page.timeframe).toBe('1h');
    expect(page.candles.map((c) => c.openTime)).toEqual([
      from,
      new Date(FROM + 3 * 3_600_000).toISOString(),
      new Date(FROM + 4 * 3_600_000).toISOString(),
    ]);
    const minute = await api.request(
      'GET',
      `/api/v1/candles?symbol=ETHUSDT&from=${new Date(FROM + 60_000).toISOString()}&to=${new Date(FROM + 180_000).toISOString()}`,
    );
    expect(((await minute.json()) as CandlePage).candles).toEqual(minutes.slice(1, 3).map(asApi));
  });

  it('answers 404 for an unknown symbol, an empty page for a known one without candles', async () => {
    const unknown = await api.request('GET', '/api/v1/candles?symbol=NOPEUSDT');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('INSTRUMENT_NOT_FOUND');
    const quiet = await api.request('GET', '/api/v1/candles?symbol=DOTUSDT');
    expect(quiet.status).toBe(200);
    expect(await quiet.json()).toEqual({
      symbol: 'DOTUSDT',
      timeframe: '1m',
      candles: [],
      nextCursor: null,
    });
  });

  it('refuses malformed queries with 400 problem+json', async () => {
    for (const query of [
      '',
      'symbol=btc-usdt',
      'symbol=ETHUSDT&timeframe=2h',
      'symbol=ETHUSDT&from=yesterday',
      'symbol=ETHUSDT&from=2025-06-02T00:00:00Z&to=2025-06-01T00:00:00Z',
      'symbol=ETHUSDT&after=17',
      'symbol=ETHUSDT&limit=0',
      'symbol=ETHUSDT&extra=1',
    ]) {
      const response = await api.request('GET', `/api/v1/candles?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.headers.get('content-type'), query).toMatch(/^application\/problem\+json/);
    }
  });

  it('answers edge instants without a server error', async () => {
    for (const query of [
      'from=0000-01-01T00:00:00Z',
      'to=9999-12-31T23:59:59.999Z',
      'from=2025-02-30T00:00:00Z',
      'after=2025-06-01T00:00:00.123456789%2B14:00',
      'from=1969-12-31T23:59:59.999Z&to=1970-01-01T00:00:00.001Z',
    ]) {
      const response = await api.request('GET', `/api/v1/candles?symbol=ETHUSDT&${query}`);
      expect([200, 400], query).toContain(response.status);
    }
    // The domain's edges (docs/api.md, domain ranges) are accepted; year 0 lies outside them.
    const early = await api.request(
      'GET',
      '/api/v1/candles?symbol=ETHUSDT&limit=1&from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z',
    );
    expect(((await early.json()) as CandlePage).candles).toEqual(minutes.slice(0, 1).map(asApi));
    const outside = await api.request(
      'GET',
      '/api/v1/candles?symbol=ETHUSDT&from=0000-01-01T00:00:00Z',
    );
    expect(outside.status).toBe(400);
    expect(((await outside.json()) as { detail: string }).detail).toMatch(/from/);
  });
});
