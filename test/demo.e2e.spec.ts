import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQcat, type QcatProcess } from './support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

type Json = Record<string, unknown>;

describe('qcat serve --demo on an empty store', () => {
  let database: TestDatabase;
  let qcat: QcatProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase('demo');
  });
  afterAll(async () => {
    await qcat?.stop();
    await database.drop();
  });

  it('shows orders, positions and PnL moving within a minute, over the API', async () => {
    const started = Date.now();
    qcat = await startQcat({ DATABASE_URL: database.url }, 90_000, ['--demo']);
    const output = qcat.output();
    const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    const token = /Token \(shown only now\): (\S+)/.exec(output)?.[1];
    expect(url).toBeDefined();
    expect(token).toBeDefined();
    const get = async (path: string): Promise<Json> => {
      const response = await fetch(`${url}/api/v1${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status, path).toBe(200);
      return (await response.json()) as Json;
    };

    // Three demo strategies, approved by someone other than their owner, in paper trading.
    await expect
      .poll(
        async () => ((await get('/strategies?state=paper')).strategies as Json[] | undefined) ?? [],
        { timeout: Math.max(1, 60_000 - (Date.now() - started)), interval: 500 },
      )
      .toHaveLength(3);

    // Fills, positions and valuations appear.
    await expect
      .poll(
        async () => ((await get('/fills?portfolioId=paper-1m')).fills as Json[] | undefined) ?? [],
        { timeout: Math.max(1, 120_000 - (Date.now() - started)), interval: 500 },
      )
      .not.toHaveLength(0);
    console.log(`demo: first fill ${((Date.now() - started) / 1000).toFixed(1)} s after start`);
    const portfolio = await get('/portfolios/paper-1m');
    expect(JSON.stringify(portfolio)).toMatch(/"equity":\s*\d/);
    const valuedAt = (await get('/portfolios/paper-1m')).valuedAt;
    // PnL moves: the portfolio is valued again at every bar (one a second at the demo's speed),
    // so within the same 3 s as before; asked every 250 ms instead of once after 3 s.
    await expect
      .poll(async () => (await get('/portfolios/paper-1m')).valuedAt, {
        timeout: 3_000,
        interval: 250,
      })
      .not.toEqual(valuedAt);
  }, 180_000);
});
