import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

interface Capability {
  name: string;
  enabled: boolean;
  thresholds: Record<string, number | string>;
  defaults: Record<string, number | string>;
  changedBy: string | null;
}
interface Overview {
  held: string | null;
  capabilities: Capability[];
}

describe('GET/PUT /api/v1/automation', () => {
  let api: TestServer;
  const overview = async (): Promise<Overview> => {
    const response = await api.request('GET', '/api/v1/automation', { token: api.tokens.viewer });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Overview & { clock: { source: string } };
    // When each process manager last ticked moves with time; the rest only with the log.
    expect(body.clock.source).toBe('wall');
    const { clock: _clock, ...rest } = body;
    return rest;
  };
  const configure = (capability: string, body: unknown, token = api.tokens.risk_officer) =>
    api.request('PUT', `/api/v1/automation/${capability}`, { token, body });

  beforeAll(async () => {
    api = await startTestServer('automation');
  });
  afterAll(async () => {
    await api.stop();
  });

  it('shows the ten capabilities with their defaults, nothing holding them', async () => {
    const { held, capabilities } = await overview();
    expect(held).toBeNull();
    expect(capabilities.map((c) => c.name)).toHaveLength(10);
    const elimination = capabilities.find((c) => c.name === 'elimination')!;
    expect(elimination).toMatchObject({ enabled: false, changedBy: null });
    expect(elimination.thresholds).toEqual(elimination.defaults);
    expect(elimination.defaults).toMatchObject({ sharpeBelow: 0.5, drawdownAbove: 0.1 });
  });

  it('lets a risk officer switch one on with a threshold, and shows who did', async () => {
    const response = await configure('elimination', {
      enabled: true,
      thresholds: { losingWeeksInARow: 3 },
    });
    expect(response.status).toBe(200);
    const elimination = (await overview()).capabilities.find((c) => c.name === 'elimination')!;
    expect(elimination.enabled).toBe(true);
    expect(elimination.thresholds['losingWeeksInARow']).toBe(3);
    expect(elimination.changedBy).toMatch(/^apikey:/);
  });

  it('refuses bad changes with a specific problem, and writes nothing', async () => {
    const before = await overview();
    const cases: [string, unknown, number, string, RegExp][] = [
      [
        'elimination',
        { thresholds: { windowDays: -1 } },
        400,
        'INVALID_THRESHOLD',
        /thresholds\.windowDays/,
      ],
      ['hot_symbols', { thresholds: { topN: 0 } }, 400, 'INVALID_THRESHOLD', /thresholds\.topN/],
      ['hot_symbols', { thresholds: { turnover: 0.9 } }, 400, 'INVALID_THRESHOLD', /sum to 1/],
      ['teleport', { enabled: true }, 404, 'UNKNOWN_CAPABILITY', /teleport/],
      ['new_strategies', { enabled: true }, 409, 'PREREQUISITE_OFF', /hot_symbols/],
      ['elimination', { enabled: 'yes' }, 400, 'VALIDATION_FAILED', /enabled/],
    ];
    for (const [capability, body, status, code, detail] of cases) {
      const response = await configure(capability, body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const problem = (await response.json()) as { code: string; detail: string };
      expect(problem.code).toBe(code);
      expect(problem.detail).toMatch(detail);
    }
    const trader = await configure('elimination', { enabled: false }, api.tokens.trader);
    expect(trader.status).toBe(403);
    expect(await overview()).toEqual(before);
  });

  it('says what holds every capability once the kill switch is engaged', async () => {
    const engaged = await api.request('POST', '/api/v1/risk/kill-switch', {
      token: api.tokens.risk_officer,
      body: { reason: 'drill' },
    });
    expect(engaged.status).toBe(200);
    expect((await overview()).held).toMatch(/^KILL_SWITCH_ENGAGED: .*drill/);
  });
});
