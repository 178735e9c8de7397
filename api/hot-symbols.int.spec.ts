import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { injectIntoCandles } from '../core/hot-symbols/synthetic-derivatives.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { automationGate } from '../automation/gate.js';
import { hotSymbolsManager } from '../automation/hot-symbols/manager.js';
import { ProcessManagerTarget } from '../automation/process-manager-target.js';
import { approvedSymbols } from '../automation/new-strategies/decide.js';
import { hotSymbolList, listedSymbols, tradableSymbols } from '../projections/hot-symbol-list.js';

const HOUR = 3_600_000;

interface Ranking {
  position: string;
  rankedBy: string;
  trigger: string;
  recommended: string[];
  scores: {
    symbol: string;
    score: number | null;
    dimensions: Record<string, { z: number | null; missing?: string }>;
  }[];
}

describe('hot symbols over HTTP', () => {
  let api: TestServer;

  beforeAll(async () => {
    api = await startTestServer('hot_symbols');
    // Six symbols, 32 days of hourly candles up to the last full hour; SOL's volume jumps today.
    const now = Math.floor(Date.now() / HOUR) * HOUR;
    const instruments = DEFAULT_INSTRUMENTS.slice(0, 6);
    const store = new MarketDataStore(api.server.runtime.pool);
    await store.upsertInstruments(instruments);
    const candles = injectIntoCandles(
      [
        ...generateCandles({
          seed: 5,
          from: now - 32 * 24 * HOUR,
          to: now,
          instruments,
          timeframe: '1h',
        }),
      ],
      [{ kind: 'volume_jump', symbol: 'SOLUSDT', from: now - 20 * HOUR }],
    );
    await store.insertCandles(candles);
  });
  afterAll(async () => {
    await api.stop();
  });

  it('answers 404 before the first ranking', async () => {
    const response = await api.request('GET', '/api/v1/hot-symbols', { token: api.tokens.viewer });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { code: string }).code).toBe('NO_RANKING_YET');
  });

  it('ranks on demand for an analyst, and shows every dimension, missing ones with why', async () => {
    const refused = await api.request('POST', '/api/v1/hot-symbols/rankings', {
      token: api.tokens.trader,
    });
    expect(refused.status).toBe(403);
    const ranked = await api.request('POST', '/api/v1/hot-symbols/rankings', {
      token: api.tokens.analyst,
    });
    expect(ranked.status).toBe(201);
    const { position } = (await ranked.json()) as { position: string };
    const response = await api.request('GET', `/api/v1/hot-symbols?minPosition=${position}`, {
      token: api.tokens.viewer,
    });
    expect(response.status).toBe(200);
    const ranking = (await response.json()) as Ranking;
    expect(ranking).toMatchObject({ position, trigger: 'manual' });
    expect(ranking.recommended[0]).toBe('SOLUSDT');
    expect(ranking.rankedBy).toMatch(/^apikey:/);
    expect(ranking.scores).toHaveLength(6);
    const [top] = ranking.scores;
    expect(top?.symbol).toBe('SOLUSDT');
    expect(top?.dimensions['volumeJump']?.z).toBeGreaterThan(4);
    // No open interest or funding was imported here: missing, and said so, never zero.
    expect(top?.dimensions['openInterest']).toEqual({
      z: null,
      rank: null,
      missing: 'no open-interest series',
    });
  });

  it('an analyst proposes a recommended symbol, a second person approves it onto the tradable list, which it leaves after expiryDays', async () => {
    const call = async (
      role: keyof TestServer['tokens'],
      method: string,
      path: string,
      body?: unknown,
    ) => {
      const response = await api.request(method, `/api/v1${path}`, {
        token: api.tokens[role],
        ...(body === undefined ? {} : { body }),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
      };
    };
    const head = await api.server.runtime.eventStore.headPosition();
    expect(
      (await call('trader', 'POST', '/hot-symbols/proposals', { symbol: 'SOLUSDT', reason: 'x' }))
        .status,
    ).toBe(403);
    const stranger = await call('analyst', 'POST', '/hot-symbols/proposals', {
      symbol: 'ETHUSDT',
      reason: 'x',
    });
    expect(stranger.status).toBe(409);
    expect(stranger.body).toMatchObject({ code: 'NOT_RECOMMENDED' });
    expect(String(stranger.body['detail'])).toMatch(/^body\.symbol: ETHUSDT is not recommended/);
    const lower = await call('analyst', 'POST', '/hot-symbols/proposals', {
      symbol: 'solusdt',
      reason: 'x',
    });
    expect(lower.status).toBe(400);
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);

    const proposed = await call('admin', 'POST', '/hot-symbols/proposals', {
      symbol: 'SOLUSDT',
      reason: 'volume jump',
    });
    expect(proposed.status, JSON.stringify(proposed.body)).toBe(201);
    const proposalId = String(proposed.body['proposalId']);
    const self = await call('admin', 'POST', '/hot-symbols/SOLUSDT/approve', { proposalId });
    expect(self.status).toBe(403);
    expect(self.body).toMatchObject({ code: 'SELF_APPROVAL_FORBIDDEN' });
    const wrong = await call('risk_officer', 'POST', '/hot-symbols/SOLUSDT/approve', {
      proposalId: 'hs-nope',
    });
    expect(wrong.status).toBe(409);
    expect(wrong.body).toMatchObject({ code: 'HOT_SYMBOL_NOT_PENDING' });
    expect(
      (await call('analyst', 'POST', '/hot-symbols/SOLUSDT/approve', { proposalId })).status,
    ).toBe(403);
    const approved = await call('risk_officer', 'POST', '/hot-symbols/SOLUSDT/approve', {
      proposalId,
      comment: 'fine',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);

    const list = await call(
      'viewer',
      'GET',
      `/hot-symbols/list?minPosition=${String(approved.body['position'])}`,
    );
    expect(list.status).toBe(200);
    const [row] = list.body['items'] as Record<string, unknown>[];
    expect(row).toMatchObject({
      symbol: 'SOLUSDT',
      status: 'tradable',
      proposalId,
      decisionNote: 'fine',
    });
    expect(String(row?.['proposedBy'])).toMatch(/^apikey:/);
    // Tradable for the policy's expiryDays (default 7), then off the list.
    const until = Date.parse(String(row?.['tradableUntil']));
    expect(until - Date.now()).toBeGreaterThan(7 * 24 * HOUR - 60_000);
    expect(until - Date.now()).toBeLessThanOrEqual(7 * 24 * HOUR);
    const { pool } = api.server.runtime;
    expect(await tradableSymbols(pool, new Date())).toEqual(['SOLUSDT']);
    expect(await tradableSymbols(pool, new Date(until))).toEqual([]);
    expect((await hotSymbolList(pool, new Date(until)))[0]?.status).toBe('expired');
    // Capability 8 reads the same list and, at its tick, uses what is approved and not expired.
    const listed = await listedSymbols(pool);
    expect(listed).toEqual([{ symbol: 'SOLUSDT', tradableUntil: until, score: row?.['score'] }]);
    expect(approvedSymbols(listed, Date.now())).toEqual(['SOLUSDT']);
    expect(approvedSymbols(listed, until)).toEqual([]);
    // The audit trail explains it: the symbol's stream, proposer and approver.
    const history = await api.server.runtime.eventStore.readStream('hotsymbol-SOLUSDT');
    expect(history.map((e) => e.type)).toEqual(['HotSymbolProposed', 'HotSymbolApproved']);
  });

  it('ranks on the hour as automation:hot-symbols only while the capability is on', async () => {
    const { runtime } = api.server;
    const manager = hotSymbolsManager({
      commands: runtime.commands,
      market: new MarketDataStore(runtime.pool),
    });
    const target = new ProcessManagerTarget(runtime.pool, manager, runtime.commands, {
      eventStore: runtime.eventStore,
      gate: automationGate(runtime.commands, async () => []),
    });
    const later = new Date(Date.now() + 2 * HOUR);
    expect(await manager.tick?.(later)).toBeUndefined(); // off by default
    const on = await api.request('PUT', '/api/v1/automation/hot_symbols', {
      token: api.tokens.risk_officer,
      body: { enabled: true },
    });
    expect(on.status).toBe(200);
    await target.tick(later);
    await target.tick(later); // the same hour again: nothing new
    const events = await runtime.eventStore.readStream('hotsymbols-ranking');
    const scheduled = events.filter((e) => e.metadata.actor === 'automation:hot-symbols');
    expect(scheduled).toHaveLength(1);
    expect(scheduled[0]!.metadata.causationId).toBe(
      `tick:hot-symbols:${new Date(Math.floor(later.getTime() / HOUR) * HOUR).toISOString()}`,
    );
  });

  it('refuses a second ranking of the same minute', async () => {
    const again = await api.request('POST', '/api/v1/hot-symbols/rankings', {
      token: api.tokens.risk_officer,
    });
    // Either a new minute began (201) or the same one is refused (409): never a duplicate.
    expect([201, 409]).toContain(again.status);
    if (again.status === 409)
      expect(((await again.json()) as { code: string }).code).toBe('RANKING_NOT_NEWER');
  });
});
