import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { ApiKeyService } from './auth/api-key-service.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { tradingStateStream } from '../core/risk/common.js';
import {
  tradingStates,
  type RiskTriggerFiredData,
  type ScopeTradingState,
} from '../core/risk/trading-state.js';
import { positionStream } from '../core/trading/accounting.js';
import { orderStream } from '../core/trading/orders.js';
import type { Runtime } from '../ops/runtime.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { activeGenerationKey, RedisTarget, redisViewKeys } from '../projections/redis-target.js';
import { liveRiskKeys, liveRiskView } from '../projections/risk-live.js';
import { riskProjection } from '../projections/risk.js';
import type { PortfolioValuedData } from '../projections/trading.js';
import { tableChecksum } from '../test/support/read-model-checksums.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { describeNeeding } from '../test/support/tools.js';

/**
 * The risk read side, API and approval wiring over real PostgreSQL, Redis and HTTP (the paper
 * engine is off: what it would write is appended here by hand, with its actor). Limit changes,
 * resets and the kill switch's release go through four-eyes approvals and the approval flow.
 */

type Json = Record<string, unknown>;
type Role = keyof TestServer['tokens'] | 'officer2';
const ENGINE = 'system:paper-engine';
const DAY = 86_400_000;
const HOUR = 3_600_000;
const D0 = Date.UTC(2025, 5, 1);

describeNeeding(['redis'], 'risk read models, API and approvals', () => {
  let api: TestServer;
  let redis: TestRedis;
  let runtime: Runtime;
  let officer2: { token: string; keyId: string };
  let strategyId: string;

  const call = async (
    role: Role,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; type: string }> => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: role === 'officer2' ? officer2.token : api.tokens[role],
      ...(body === undefined ? {} : { body }),
      headers,
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === '' ? {} : (JSON.parse(text) as Json),
      type: response.headers.get('content-type') ?? '',
    };
  };
  const ok = (answer: { status: number; body: Json }, status = 200): Json => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return answer.body;
  };
  const problem = (
    answer: { status: number; body: Json; type: string },
    status: number,
    code: string,
  ): Json => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(answer.body['code']).toBe(code);
    return answer.body;
  };
  const get = async <T = Json>(path: string, role: Role = 'viewer') =>
    ok(await call(role, 'GET', path)) as T;

  /** Everything written so far, the approval flow's commands included, is in the risk models. */
  const settled = async (): Promise<string> => {
    let head = await runtime.eventStore.headPosition();
    expect(await runtime.automation.waitFor('approval-flow', head, 15_000)).toBe(true);
    head = await runtime.eventStore.headPosition();
    for (const name of ['risk', 'live_risk', 'trading', 'approvals'])
      expect(await runtime.projections.waitFor(name, head, 15_000), name).toBe(true);
    return head.toString();
  };

  /** Requested by the first risk officer, approved by the second: the flow applies it. */
  const approved = async (requestPath: string, body: JsonObject): Promise<string> => {
    const requestId = ok(await call('risk_officer', 'POST', requestPath, body), 201)[
      'approvalRequestId'
    ] as string;
    ok(await call('officer2', 'POST', `/approvals/${requestId}/approve`, { comment: 'ok' }));
    await settled();
    return requestId;
  };

  const snapshot = async (): Promise<Json> => {
    const { rows } = await runtime.pool.query<{ snapshot: Json; position: string }>(
      'SELECT snapshot, position FROM qcat_read.risk_snapshot',
    );
    expect(rows).toHaveLength(1);
    return { ...rows[0]!.snapshot, position: rows[0]!.position };
  };

  const liveKeys = async () => {
    const prefix = redis.prefix;
    const generation = Number(
      (await redis.redis.get(activeGenerationKey(prefix, 'live_risk'))) ?? '1',
    );
    return liveRiskKeys(redisViewKeys(prefix, 'live_risk', generation).data);
  };

  beforeAll(async () => {
    redis = await connectTestRedis('risk');
    api = await startTestServer('risk', { REDIS_URL: redis.url, QCAT_REDIS_PREFIX: redis.prefix });
    runtime = api.server.runtime;
    const issued = await new ApiKeyService(runtime.commands).issue(
      'second-officer',
      'risk_officer',
      'test-setup',
    );
    officer2 = { token: issued.token, keyId: issued.keyId };
    expect(await runtime.projections.waitFor('api_keys', issued.result.position, 10_000)).toBe(
      true,
    );
    const created = ok(
      await call('trader', 'POST', '/strategies', {
        name: 'risk test',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1m',
        parameters: { fastPeriod: 5, slowPeriod: 20 },
        capitalRequest: 10_000,
      }),
      201,
    );
    strategyId = created['strategyId'] as string;
    await settled();
  }, 60_000);
  afterAll(async () => {
    await api.stop();
    await redis.cleanup();
  });

  it('shows defaults for a scope never set, and lets a risk officer set stricter first limits', async () => {
    const defaults = await get<{ limits: Json[] }>(
      '/risk/limits?scopeType=portfolio&scopeId=paper-1m',
    );
    expect(defaults.limits).toEqual([
      expect.objectContaining({
        scopeType: 'portfolio',
        scopeId: 'paper-1m',
        isDefault: true,
        version: 0,
        limits: expect.objectContaining({
          maxLeverage: 10,
          maxPositionShareOfEquity: 0.2,
          dailyLossLimit: 0.05,
          maxDrawdown: 0.15,
          maxGrossExposure: null,
        }) as Json,
      }),
    ]);

    problem(
      await call('trader', 'PUT', '/risk/limits/portfolio/paper-1m', {
        limits: { maxLeverage: 5 },
      }),
      403,
      'FORBIDDEN',
    );
    problem(
      await call('risk_officer', 'PUT', '/risk/limits/portfolio/paper-5m', {
        limits: { maxLeverage: 20 },
      }),
      422,
      'LIMIT_LOOSER_THAN_DEFAULT',
    );
    const set = ok(
      await call('risk_officer', 'PUT', '/risk/limits/portfolio/paper-1m', {
        limits: { maxLeverage: 5, maxOrderNotional: 50_000 },
      }),
    );
    expect(set['eventCount']).toBe(1);
    problem(
      await call('risk_officer', 'PUT', '/risk/limits/portfolio/paper-1m', {
        limits: { maxLeverage: 4 },
      }),
      409,
      'LIMITS_ALREADY_SET',
    );
    const listed = await get<{ limits: Json[] }>(
      `/risk/limits?minPosition=${set['position'] as string}`,
    );
    expect(listed.limits).toEqual([
      expect.objectContaining({
        scopeType: 'portfolio',
        scopeId: 'paper-1m',
        isDefault: false,
        version: 1,
        changedBy: expect.stringMatching(/\(test-risk_officer\)$/) as string,
        limits: expect.objectContaining({ maxLeverage: 5, maxOrderNotional: 50_000 }) as Json,
      }),
    ]);
  });

  it('refuses bad limit change requests with the field named, and unknown scopes', async () => {
    const path = '/risk/limits/portfolio/paper-1m/change-requests';
    const head = await runtime.eventStore.headPosition();
    let body = problem(
      await call('risk_officer', 'POST', path, { changes: { maxLeverage: -1 }, reason: 'x' }),
      400,
      'INVALID_LIMITS',
    );
    expect(body['detail']).toMatch(/maxLeverage/);
    body = problem(
      await call('risk_officer', 'POST', path, { changes: { bogus: 1 }, reason: 'x' }),
      400,
      'INVALID_LIMITS',
    );
    expect(body['detail']).toMatch(/bogus/);
    problem(
      await call('risk_officer', 'POST', path, { changes: {}, reason: 'x' }),
      400,
      'INVALID_LIMITS',
    );
    body = problem(
      await call('risk_officer', 'POST', path, {
        changes: { priceBreaker: { maxMove: 0.2, windowMs: 60_000, cooldownMs: 60_000 } },
        reason: 'x',
      }),
      400,
      'LIMIT_NOT_APPLICABLE',
    );
    expect(body['detail']).toMatch(/priceBreaker/);
    problem(
      await call('risk_officer', 'POST', path, { changes: { maxLeverage: 8 } }),
      400,
      'VALIDATION_FAILED',
    );
    problem(
      await call('risk_officer', 'POST', '/risk/limits/desk/paper-1m/change-requests', {
        changes: { maxLeverage: 8 },
        reason: 'x',
      }),
      400,
      'VALIDATION_FAILED',
    );
    problem(
      await call('risk_officer', 'POST', '/risk/limits/strategy/no-such-strategy/change-requests', {
        changes: { maxLeverage: 8 },
        reason: 'x',
      }),
      404,
      'STRATEGY_NOT_FOUND',
    );
    problem(
      await call('risk_officer', 'POST', '/risk/limits/portfolio/nowhere/change-requests', {
        changes: { maxLeverage: 8 },
        reason: 'x',
      }),
      404,
      'PORTFOLIO_NOT_FOUND',
    );
    problem(
      await call('risk_officer', 'POST', '/risk/limits/symbol/btc-usdt/change-requests', {
        changes: { maxLeverage: 8 },
        reason: 'x',
      }),
      400,
      'VALIDATION_FAILED',
    );
    problem(
      await call('trader', 'POST', path, { changes: { maxLeverage: 8 }, reason: 'x' }),
      403,
      'FORBIDDEN',
    );
    problem(await call('viewer', 'GET', '/risk/limits?scopeId=paper-1m'), 400, 'VALIDATION_FAILED');
    expect(await runtime.eventStore.headPosition()).toBe(head);
  });

  it('changes limits only through an approval by another risk officer', async () => {
    const path = '/risk/limits/portfolio/paper-1m/change-requests';
    const changes = { maxLeverage: 8, maxGrossExposure: 500_000 };
    const key = { 'idempotency-key': 'limit-change-0001' };
    const opened = ok(
      await call('risk_officer', 'POST', path, { changes, reason: 'more room' }, key),
      201,
    );
    const requestId = opened['approvalRequestId'] as string;
    // A retry with the same key gets the first answer and opens nothing new; another request
    // for the scope is refused.
    const retried = ok(
      await call('risk_officer', 'POST', path, { changes, reason: 'more room' }, key),
      201,
    );
    expect(retried).toEqual(opened);
    const twice = problem(
      await call('risk_officer', 'POST', path, { changes: { maxLeverage: 9 }, reason: 'again' }),
      409,
      'REQUEST_ALREADY_OPEN',
    );
    expect(twice['openRequestId']).toBe(requestId);

    const request = await get(`/approvals/${requestId}`);
    expect(request).toMatchObject({
      kind: 'risk_limit_change',
      subject: { type: 'risk_limits', id: 'portfolio:paper-1m' },
      payload: { changes },
      status: 'pending',
    });
    problem(
      await call('risk_officer', 'POST', `/approvals/${requestId}/approve`),
      403,
      'SELF_APPROVAL_FORBIDDEN',
    );
    problem(
      await call('admin', 'POST', `/approvals/${requestId}/approve`),
      403,
      'APPROVER_ROLE_NOT_ELIGIBLE',
    );
    // Nothing changed while it waits.
    expect((await snapshot())['limits']).toMatchObject({
      'portfolio:paper-1m': { maxLeverage: 5 },
    });

    ok(await call('officer2', 'POST', `/approvals/${requestId}/approve`, { comment: 'ok' }));
    await settled();
    const { limits } = await get<{ limits: Json[] }>(
      '/risk/limits?scopeType=portfolio&scopeId=paper-1m',
    );
    expect(limits[0]).toMatchObject({
      version: 2,
      requestId,
      changedBy: 'system:approval-flow',
      limits: { maxLeverage: 8, maxGrossExposure: 500_000, maxOrderNotional: 50_000 },
    });
    expect((await snapshot())['limits']).toMatchObject({
      'portfolio:paper-1m': { maxLeverage: 8, maxGrossExposure: 500_000, maxOrderNotional: 50_000 },
    });
    const [changed] = (await runtime.eventStore.readStream('risk-limits-portfolio-paper-1m')).slice(
      -1,
    );
    expect(changed).toMatchObject({
      type: 'LimitsChanged',
      data: {
        requestId,
        approvers: [{ id: `apikey:${officer2.keyId}`, role: 'risk_officer' }],
        previous: { maxLeverage: 5, maxGrossExposure: null },
      },
      metadata: { actor: 'system:approval-flow' },
    });
  });

  it('engages the kill switch (risk officers only), on the risk channel, in the snapshot and Redis', async () => {
    const ws = new WebSocket(`${api.server.url.replace('http', 'ws')}/ws`, {
      headers: { authorization: `Bearer ${api.tokens.viewer}` },
    });
    const frames: Json[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as Json));
    const next = (match: (frame: Json) => boolean): Promise<Json> =>
      vi.waitFor(
        () => {
          const found = frames.find(match);
          if (!found) throw new Error(`no frame; got ${JSON.stringify(frames)}`);
          return found;
        },
        { timeout: 10_000, interval: 20 },
      );
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'risk' }));
    await next((f) => f['type'] === 'subscribed');

    problem(
      await call('trader', 'POST', '/risk/kill-switch', { reason: 'panic', flatten: true }),
      403,
      'FORBIDDEN',
    );
    problem(
      await call('risk_officer', 'POST', '/risk/kill-switch', { reason: ' ' }),
      400,
      'VALIDATION_FAILED',
    );
    const engaged = ok(
      await call('risk_officer', 'POST', '/risk/kill-switch', { reason: 'flash crash' }),
    );
    const frame = await next((f) => f['type'] === 'event');
    expect(frame).toMatchObject({
      channel: 'risk',
      event: {
        streamId: 'risk-killswitch-global',
        type: 'KillSwitchEngaged',
        position: engaged['position'],
        data: { reason: 'flash crash', flatten: false },
      },
    });
    ws.close();

    const first = await get(`/risk/kill-switch?minPosition=${engaged['position'] as string}`);
    expect(first).toMatchObject({
      engaged: true,
      flatten: false,
      reason: 'flash crash',
      engagedBy: expect.stringMatching(/\(test-risk_officer\)$/) as string,
    });
    problem(
      await call('admin', 'POST', '/risk/kill-switch', { reason: 'again' }),
      409,
      'KILL_SWITCH_ALREADY_ENGAGED',
    );
    // Escalating to flatten is the one engagement more that says something new.
    const flattened = ok(
      await call('admin', 'POST', '/risk/kill-switch', { reason: 'close all', flatten: true }),
    );
    const now = await get(`/risk/kill-switch?minPosition=${flattened['position'] as string}`);
    expect(now).toMatchObject({ engaged: true, flatten: true, since: first['since'] });
    await settled();
    expect((await snapshot())['killSwitch']).toEqual({
      engaged: true,
      flatten: true,
      since: Date.parse(first['since'] as string),
    });
    const keys = await liveKeys();
    expect(await redis.redis.hgetall(keys.killSwitch)).toMatchObject({
      engaged: 'true',
      flatten: 'true',
      since: first['since'],
      reason: 'close all',
      position: flattened['position'],
    });
    const overview = await get('/risk/overview');
    expect(overview['killSwitch']).toEqual({ engaged: true, flatten: true, since: first['since'] });
  });

  it('releases the kill switch only through an approved risk_reset', async () => {
    const path = '/risk/kill-switch/release-requests';
    problem(await call('trader', 'POST', path, { reason: 'over' }), 403, 'FORBIDDEN');
    const rejected = ok(await call('risk_officer', 'POST', path, { reason: 'over' }), 201)[
      'approvalRequestId'
    ] as string;
    ok(await call('officer2', 'POST', `/approvals/${rejected}/reject`, { reason: 'not yet' }));
    await settled();
    expect(await get('/risk/kill-switch')).toMatchObject({ engaged: true });

    const requestId = await approved(path, { reason: 'markets calm' });
    expect(await get('/approvals/' + requestId)).toMatchObject({
      kind: 'risk_reset',
      subject: { type: 'risk_killswitch', id: 'global' },
      status: 'approved',
    });
    expect(await get('/risk/kill-switch')).toMatchObject({
      engaged: false,
      flatten: false,
      releasedBy: `apikey:${officer2.keyId}`,
      releaseRequestId: requestId,
    });
    expect((await snapshot())['killSwitch']).toEqual({
      engaged: false,
      flatten: false,
      since: null,
    });
    const keys = await liveKeys();
    const live = await redis.redis.hgetall(keys.killSwitch);
    expect(live).toMatchObject({ engaged: 'false', flatten: 'false', releaseRequestId: requestId });
    expect(live['since']).toBeUndefined();
    problem(
      await call('risk_officer', 'POST', path, { reason: 'again' }),
      409,
      'KILL_SWITCH_NOT_ENGAGED',
    );
  });

  it('halts a scope at once and loosens it only through an approved reset', async () => {
    const path = `/risk/states/strategy/${strategyId}`;
    problem(await call('trader', 'POST', path, { state: 'HALTED', reason: 'x' }), 403, 'FORBIDDEN');
    problem(
      await call('risk_officer', 'POST', path, { state: 'ACTIVE', reason: 'x' }),
      400,
      'VALIDATION_FAILED',
    );
    problem(
      await call('risk_officer', 'POST', `${path}/reset-requests`, { reason: 'nothing to do' }),
      409,
      'NOTHING_TO_RESET',
    );
    const halted = ok(
      await call('risk_officer', 'POST', path, { state: 'HALTED', reason: 'misbehaving' }),
    );
    expect(halted['eventCount']).toBe(1);
    problem(
      await call('risk_officer', 'POST', path, { state: 'REDUCING', reason: 'softer' }),
      409,
      'RESET_REQUIRES_APPROVAL',
    );
    const { states } = await get<{ states: Json[] }>(
      `/risk/states?scopeType=strategy&minPosition=${halted['position'] as string}`,
    );
    expect(states).toEqual([
      expect.objectContaining({
        scopeType: 'strategy',
        scopeId: strategyId,
        state: 'HALTED',
        base: 'HALTED',
        temporary: null,
        reason: 'misbehaving',
        resetAt: null,
      }),
    ]);
    await settled();
    const keys = await liveKeys();
    expect(
      JSON.parse((await redis.redis.hget(keys.states, `strategy:${strategyId}`))!),
    ).toMatchObject({
      base: 'HALTED',
      temporary: null,
      reason: 'misbehaving',
      position: halted['position'],
    });

    const requestId = await approved(`${path}/reset-requests`, { to: 'REDUCING', reason: 'fixed' });
    const after = await get<{ states: Json[] }>(
      `/risk/states?scopeType=strategy&scopeId=${strategyId}`,
    );
    expect(after.states[0]).toMatchObject({
      state: 'REDUCING',
      base: 'REDUCING',
      requestId,
      reason: `reset by request ${requestId}`,
      changedBy: 'system:approval-flow',
    });
    expect(after.states[0]!['resetAt']).toEqual(expect.any(String));
    const states2 = (await snapshot())['states'] as Record<string, Json>;
    expect(states2[`strategy:${strategyId}`]).toMatchObject({
      base: 'REDUCING',
      temporary: null,
      resetAt: Date.parse(after.states[0]!['resetAt'] as string),
    });
    expect(
      JSON.parse((await redis.redis.hget(keys.states, `strategy:${strategyId}`))!),
    ).toMatchObject({ base: 'REDUCING', temporary: null });
  });

  it("keeps a person's halt when an engine event decided from an older copy follows it", async () => {
    const stream = tradingStateStream({ type: 'strategy', id: 'stale-copy' });
    const base = {
      scopeType: 'strategy',
      scopeId: 'stale-copy',
      triggerId: null,
      reason: 'x',
      time: D0,
    } as const;
    await runtime.eventStore.appendToStream(stream, [
      {
        type: 'TradingStateChanged',
        data: {
          ...base,
          from: 'ACTIVE',
          to: 'HALTED',
          base: 'HALTED',
          temporary: null,
          cause: 'manual',
          by: { id: 'apikey:risk', role: 'risk_officer' },
        },
        metadata: { actor: 'apikey:risk' },
      },
    ]);
    const { position } = await runtime.eventStore.appendToStream(stream, [
      {
        type: 'TradingStateChanged',
        data: {
          ...base,
          from: 'REDUCING',
          to: 'ACTIVE',
          base: 'ACTIVE',
          temporary: null,
          cause: 'cooldown',
          by: null,
        },
        metadata: { actor: ENGINE },
      },
    ]);
    const { states } = await get<{ states: Json[] }>(
      `/risk/states?scopeType=strategy&scopeId=stale-copy&minPosition=${position.toString()}`,
    );
    expect(states[0]).toMatchObject({ base: 'HALTED' });
    const folded = (await snapshot())['states'] as Record<string, Json>;
    expect(folded['strategy:stale-copy']).toMatchObject({ base: 'HALTED' });
  });

  it('lists the triggers the engine fired, filtered and paged', async () => {
    const fire = async (trigger: RiskTriggerFiredData): Promise<void> => {
      const scope = { type: trigger.scopeType, id: trigger.scopeId };
      const stream = tradingStateStream(scope);
      let state: ScopeTradingState = tradingStates.initialState();
      for (const e of await runtime.eventStore.readStream(stream))
        state = tradingStates.evolve(
          state,
          tradingStates.parseEvent({ type: e.type, data: e.data as JsonObject }),
        );
      const events = tradingStates.decide({ type: 'FireTrigger', trigger }, state);
      await runtime.eventStore.appendToStream(
        stream,
        events.map((e) => ({ type: e.type, data: e.data, metadata: { actor: ENGINE } })),
      );
    };
    const t1 = D0 + 2 * HOUR;
    await fire({
      triggerId: `price_breaker-symbol-BTCUSDT-${t1}`,
      rule: 'price_breaker',
      scopeType: 'symbol',
      scopeId: 'BTCUSDT',
      threshold: 0.1,
      observed: 0.125,
      reference: 64_000,
      value: 56_000,
      window: { from: t1 - HOUR, to: t1 },
      action: 'HALTED',
      until: t1 + HOUR,
      time: t1,
    });
    const t2 = D0 + 5 * HOUR;
    await fire({
      triggerId: `portfolio_drawdown-portfolio-paper-1h-${t2}`,
      rule: 'portfolio_drawdown',
      scopeType: 'portfolio',
      scopeId: 'paper-1h',
      threshold: 0.15,
      observed: 0.16,
      reference: 100_000,
      value: 84_000,
      window: { from: D0, to: t2 },
      action: 'FLATTEN',
      until: null,
      time: t2,
    });
    const head = await settled();

    const all = await get<{ triggers: Json[]; nextCursor: null }>(
      `/risk/triggers?minPosition=${head}`,
    );
    expect(all.nextCursor).toBeNull();
    expect(all.triggers).toEqual([
      expect.objectContaining({
        triggerId: `price_breaker-symbol-BTCUSDT-${t1}`,
        rule: 'price_breaker',
        scopeType: 'symbol',
        scopeId: 'BTCUSDT',
        threshold: 0.1,
        observed: 0.125,
        reference: 64_000,
        value: 56_000,
        window: { from: new Date(t1 - HOUR).toISOString(), to: new Date(t1).toISOString() },
        action: 'HALTED',
        until: new Date(t1 + HOUR).toISOString(),
        actor: ENGINE,
        firedAt: new Date(t1).toISOString(),
      }),
      expect.objectContaining({
        rule: 'portfolio_drawdown',
        scopeId: 'paper-1h',
        action: 'FLATTEN',
        until: null,
      }),
    ]);
    const rule = await get<{ triggers: Json[] }>('/risk/triggers?rule=portfolio_drawdown');
    expect(rule.triggers.map((t) => t['scopeId'])).toEqual(['paper-1h']);
    const scoped = await get<{ triggers: Json[] }>(
      '/risk/triggers?scopeType=symbol&scopeId=BTCUSDT',
    );
    expect(scoped.triggers.map((t) => t['rule'])).toEqual(['price_breaker']);
    const timed = await get<{ triggers: Json[] }>(
      `/risk/triggers?from=${new Date(t1 + 1).toISOString()}&to=${new Date(t2 + 1).toISOString()}`,
    );
    expect(timed.triggers.map((t) => t['rule'])).toEqual(['portfolio_drawdown']);
    const page1 = await get<{ triggers: Json[]; nextCursor: string }>('/risk/triggers?limit=1');
    expect(page1.triggers.map((t) => t['rule'])).toEqual(['price_breaker']);
    const page2 = await get<{ triggers: Json[]; nextCursor: null }>(
      `/risk/triggers?limit=1&after=${page1.nextCursor}`,
    );
    expect(page2.triggers.map((t) => t['rule'])).toEqual(['portfolio_drawdown']);
    expect(page2.nextCursor).toBeNull();
    problem(await call('viewer', 'GET', '/risk/triggers?rule=nope'), 400, 'VALIDATION_FAILED');
    problem(
      await call(
        'viewer',
        'GET',
        `/risk/triggers?from=${new Date(t2).toISOString()}&to=${new Date(t1).toISOString()}`,
      ),
      400,
      'VALIDATION_FAILED',
    );

    // The states the triggers left: the symbol's cooldown is long over, the portfolio is halted.
    const { states } = await get<{ states: Json[] }>('/risk/states?scopeType=symbol');
    expect(states[0]).toMatchObject({
      scopeId: 'BTCUSDT',
      state: 'ACTIVE',
      base: 'ACTIVE',
      temporary: {
        state: 'HALTED',
        until: new Date(t1 + HOUR).toISOString(),
        triggerId: `price_breaker-symbol-BTCUSDT-${t1}`,
      },
      changedBy: ENGINE,
    });
    const portfolio = await get<{ states: Json[] }>(
      '/risk/states?scopeType=portfolio&scopeId=paper-1h',
    );
    expect(portfolio.states[0]).toMatchObject({ state: 'HALTED', base: 'HALTED' });
    expect(portfolio.states[0]!['reason']).toMatch(/^PORTFOLIO_DRAWDOWN: observed=0.16/);
  });

  it('lists denied orders with their code, book, side and quantity', async () => {
    const submit = async (
      clientOrderId: string,
      order: { strategyId: string; symbol: string; side: 'buy' | 'sell'; quantity: number },
      time: number,
      outcome: { type: 'OrderDenied'; reason: string } | { type: 'OrderAccepted' },
    ) =>
      runtime.eventStore.appendToStream(orderStream(clientOrderId), [
        {
          type: 'OrderSubmitted',
          data: {
            clientOrderId,
            portfolioId: 'paper-1m',
            ...order,
            type: 'market',
            limitPrice: null,
            stopPrice: null,
            reduceOnly: false,
            time,
          },
          metadata: { actor: ENGINE },
        },
        outcome.type === 'OrderDenied'
          ? {
              type: 'OrderDenied',
              data: { clientOrderId, reason: outcome.reason, time },
              metadata: { actor: ENGINE },
            }
          : {
              type: 'OrderAccepted',
              data: {
                clientOrderId,
                venueOrderId: `v-${clientOrderId}`,
                quantity: order.quantity,
                limitPrice: null,
                stopPrice: null,
                time,
              },
              metadata: { actor: ENGINE },
            },
      ]);
    const halted = 'TRADING_HALTED: scope=symbol:BTCUSDT';
    const notional =
      'NOTIONAL_EXCEEDS_MAX_PER_ORDER: scope=portfolio:paper-1m, notional=60000, max=50000';
    await submit(
      's1-BTCUSDT-1',
      { strategyId: 's1', symbol: 'BTCUSDT', side: 'buy', quantity: 0.5 },
      D0 + HOUR,
      {
        type: 'OrderDenied',
        reason: halted,
      },
    );
    await submit(
      's1-BTCUSDT-2',
      { strategyId: 's1', symbol: 'BTCUSDT', side: 'buy', quantity: 0.1 },
      D0 + 2 * HOUR,
      {
        type: 'OrderAccepted',
      },
    );
    await submit(
      's2-ETHUSDT-1',
      { strategyId: 's2', symbol: 'ETHUSDT', side: 'sell', quantity: 20 },
      D0 + 3 * HOUR,
      {
        type: 'OrderDenied',
        reason: notional,
      },
    );
    const head = await settled();

    const all = await get<{ deniedOrders: Json[]; nextCursor: null }>(
      `/risk/denied-orders?minPosition=${head}`,
    );
    expect(all.deniedOrders).toEqual([
      expect.objectContaining({
        clientOrderId: 's1-BTCUSDT-1',
        portfolioId: 'paper-1m',
        strategyId: 's1',
        symbol: 'BTCUSDT',
        side: 'buy',
        quantity: 0.5,
        code: 'TRADING_HALTED',
        reason: halted,
        deniedAt: new Date(D0 + HOUR).toISOString(),
        actor: ENGINE,
      }),
      expect.objectContaining({
        clientOrderId: 's2-ETHUSDT-1',
        strategyId: 's2',
        symbol: 'ETHUSDT',
        side: 'sell',
        quantity: 20,
        code: 'NOTIONAL_EXCEEDS_MAX_PER_ORDER',
      }),
    ]);
    const ids = async (query: string) =>
      (await get<{ deniedOrders: Json[] }>(`/risk/denied-orders?${query}`)).deniedOrders.map(
        (o) => o['clientOrderId'],
      );
    expect(await ids('code=NOTIONAL_EXCEEDS_MAX_PER_ORDER')).toEqual(['s2-ETHUSDT-1']);
    expect(await ids('strategyId=s1')).toEqual(['s1-BTCUSDT-1']);
    expect(await ids('symbol=ETHUSDT')).toEqual(['s2-ETHUSDT-1']);
    expect(await ids(`from=${new Date(D0 + 2 * HOUR).toISOString()}`)).toEqual(['s2-ETHUSDT-1']);
    expect(await ids(`to=${new Date(D0 + 2 * HOUR).toISOString()}`)).toEqual(['s1-BTCUSDT-1']);
    const page = await get<{ deniedOrders: Json[]; nextCursor: string }>(
      '/risk/denied-orders?limit=1',
    );
    expect(page.nextCursor).toEqual(expect.any(String));
    expect(await ids(`limit=1&after=${page.nextCursor}`)).toEqual(['s2-ETHUSDT-1']);
    problem(
      await call('viewer', 'GET', '/risk/denied-orders?code=lower'),
      400,
      'VALIDATION_FAILED',
    );
    // In-flight order details are kept only until the order is accepted, rejected or denied.
    expect((await runtime.pool.query('SELECT * FROM qcat_read.risk_order_refs')).rows).toEqual([]);
  });

  it('computes exposure and the utilisation of each limit per portfolio', async () => {
    const portfolioId = 'paper-4h';
    ok(
      await call('risk_officer', 'PUT', `/risk/limits/portfolio/${portfolioId}`, {
        limits: { maxGrossExposure: 100_000 },
      }),
    );
    ok(
      await call('risk_officer', 'POST', '/risk/states/symbol/ETHUSDT', {
        state: 'HALTED',
        reason: 'x',
      }),
    );
    const position = (
      strategy: string,
      symbol: string,
      quantity: number,
      markPrice: number,
    ): PortfolioValuedData['positions'][number] => ({
      strategyId: strategy,
      symbol,
      quantity,
      averageEntryPrice: markPrice,
      markPrice,
      unrealizedPnl: 0,
      realizedPnl: 0,
      feesPaid: 0,
    });
    const valued = (time: number, equity: number, positions: PortfolioValuedData['positions']) => ({
      type: 'PortfolioValued',
      data: {
        portfolioId,
        currency: 'USDT',
        time,
        cycle: time / HOUR,
        cash: 50_000,
        equity,
        feesPaid: 0,
        realizedPnl: 0,
        unrealizedPnl: 0,
        positions,
      } satisfies PortfolioValuedData,
      metadata: { actor: ENGINE },
    });
    await runtime.eventStore.appendToStream(`position-${portfolioId}`, [
      valued(D0 + 10 * HOUR, 100_000, []),
      valued(D0 + 20 * HOUR, 104_000, []),
      valued(D0 + DAY + 4 * HOUR, 102_000, []),
      valued(D0 + DAY + 8 * HOUR, 98_800, [
        position('ov-s1', 'BTCUSDT', 0.5, 60_000),
        position('ov-s2', 'BTCUSDT', -0.2, 60_000),
        position('ov-s2', 'ETHUSDT', 4, 3_000),
      ]),
    ]);
    const head = await settled();

    const overview = await get<{ portfolios: Json[]; books: Json[]; states: Json[] }>(
      `/risk/overview?minPosition=${head}`,
    );
    const p = overview.portfolios.find((x) => x['portfolioId'] === portfolioId)!;
    const equity = 98_800;
    const gross = 0.5 * 60_000 + 0.2 * 60_000 + 4 * 3_000; // 54,000
    expect(p).toMatchObject({
      currency: 'USDT',
      equity,
      cash: 50_000,
      valuedAt: new Date(D0 + DAY + 8 * HOUR).toISOString(),
      state: 'ACTIVE',
      limits: { maxGrossExposure: 100_000, maxLeverage: 10 },
    });
    const exposure = p['exposure'] as Json;
    expect(exposure['grossExposure']).toBeCloseTo(gross, 6);
    expect(exposure['netExposure']).toBeCloseTo(30_000 - 12_000 + 12_000, 6);
    expect(exposure['leverage']).toBeCloseTo(gross / equity, 12);
    expect(exposure['largestPosition']).toEqual({
      symbol: 'BTCUSDT',
      notional: expect.closeTo(18_000, 6) as number,
      shareOfEquity: expect.closeTo(18_000 / equity, 12) as number,
    });
    // The day's opening equity is the last valuation of the day before; the mark is 104,000.
    expect(exposure['openingEquity']).toBe(104_000);
    expect(exposure['dailyLoss']).toBeCloseTo(0.05, 12);
    expect(exposure['highWaterMark']).toBe(104_000);
    expect(exposure['drawdown']).toBeCloseTo(0.05, 12);
    const utilisation: Record<string, Json> = Object.fromEntries(
      (p['utilisation'] as Json[]).map((u) => [u['limit'] as string, u]),
    );
    expect(utilisation['maxGrossExposure']).toMatchObject({ max: 100_000 });
    expect(utilisation['maxGrossExposure']!['utilisation']).toBeCloseTo(0.54, 12);
    expect(utilisation['maxLeverage']!['utilisation']).toBeCloseTo(gross / equity / 10, 12);
    expect(utilisation['maxPositionShareOfEquity']!['utilisation']).toBeCloseTo(
      18_000 / equity / 0.2,
      12,
    );
    expect(utilisation['dailyLossLimit']!['utilisation']).toBeCloseTo(1, 12);
    expect(utilisation['maxDrawdown']!['utilisation']).toBeCloseTo(0.05 / 0.15, 12);
    expect(utilisation['maxPositionNotional']).toMatchObject({ max: null, utilisation: null });

    const books = overview.books.filter((b) => b['portfolioId'] === portfolioId);
    expect(books.map((b) => [b['strategyId'], b['symbol'], b['state'], b['heldBy']])).toEqual([
      ['ov-s1', 'BTCUSDT', 'ACTIVE', null],
      ['ov-s2', 'BTCUSDT', 'ACTIVE', null],
      ['ov-s2', 'ETHUSDT', 'HALTED', 'symbol:ETHUSDT'],
    ]);
    expect(overview.states).toContainEqual(
      expect.objectContaining({ scopeType: 'portfolio', scopeId: 'paper-1h', state: 'HALTED' }),
    );
  });

  it("sets a book's exit rules and moves the levels of its open round trip", async () => {
    const book = `/risk/exits/paper-1m/${strategyId}/BTCUSDT`;
    const empty = await get(book);
    expect(empty).toMatchObject({ rules: null, levels: null, openTrip: null });
    problem(await call('viewer', 'PUT', book, { stopLoss: 0.05 }), 403, 'FORBIDDEN');
    problem(await call('trader', 'PUT', book, { stopLoss: 2 }), 400, 'VALIDATION_FAILED');
    problem(
      await call('trader', 'PUT', `/risk/exits/paper-1m/${strategyId}/ETHUSDT`, { stopLoss: 0.05 }),
      404,
      'BOOK_NOT_FOUND',
    );
    problem(
      await call('trader', 'PUT', `/risk/exits/paper-1h/${strategyId}/BTCUSDT`, { stopLoss: 0.05 }),
      404,
      'BOOK_NOT_FOUND',
    );
    problem(
      await call('trader', 'PUT', '/risk/exits/paper-1m/nobody/BTCUSDT', { stopLoss: 0.05 }),
      404,
      'STRATEGY_NOT_FOUND',
    );
    const set = ok(
      await call('trader', 'PUT', book, {
        stopLoss: 0.05,
        trailing: { activation: 0.02, distance: 0.01 },
      }),
    );
    expect(set['eventCount']).toBe(1);
    expect(
      ok(
        await call('trader', 'PUT', book, {
          stopLoss: 0.05,
          trailing: { activation: 0.02, distance: 0.01 },
        }),
      )['eventCount'],
    ).toBe(0);

    problem(
      await call('risk_officer', 'POST', `${book}/levels`, {
        stopPrice: 58_000,
        reason: 'tighter',
      }),
      409,
      'NO_OPEN_POSITION',
    );
    const openedAt = D0 + 3 * HOUR;
    await runtime.eventStore.appendToStream(positionStream('paper-1m', strategyId, 'BTCUSDT'), [
      {
        type: 'PositionChanged',
        data: {
          portfolioId: 'paper-1m',
          clientOrderId: 'o-1',
          fillId: 'f-1',
          time: openedAt,
          strategyId,
          symbol: 'BTCUSDT',
          fillPrice: 60_000,
          quantity: 0.3,
          averageEntryPrice: 60_000,
          realizedPnlChange: 0,
          realizedPnl: 0,
          feesPaid: 6,
        },
        metadata: { actor: ENGINE },
      },
    ]);
    problem(
      await call('risk_officer', 'POST', `${book}/levels`, { reason: 'nothing' }),
      400,
      'VALIDATION_FAILED',
    );
    const moved = ok(
      await call('risk_officer', 'POST', `${book}/levels`, {
        stopPrice: 58_000,
        reason: 'tighter',
      }),
    );
    const exits = await get(`${book}?minPosition=${moved['position'] as string}`);
    expect(exits).toEqual({
      portfolioId: 'paper-1m',
      strategyId,
      symbol: 'BTCUSDT',
      rules: {
        stopLoss: 0.05,
        takeProfit: null,
        trailing: { activation: 0.02, distance: 0.01 },
        atrStop: null,
      },
      levels: {
        openedAt: new Date(openedAt).toISOString(),
        stopPrice: 58_000,
        takeProfitPrice: null,
      },
      openTrip: { openedAt: new Date(openedAt).toISOString(), quantity: 0.3 },
    });
    const [event] = (
      await runtime.eventStore.readStream(`risk-exits-paper-1m-${strategyId}-BTCUSDT`)
    ).slice(-1);
    expect(event).toMatchObject({
      type: 'ExitLevelsMoved',
      data: {
        openedAt,
        stopPrice: 58_000,
        takeProfitPrice: null,
        reason: 'tighter',
        by: { role: 'risk_officer' },
      },
    });
  });

  it('documents every risk route in OpenAPI under the risk tag, and the audit API folds risk streams', async () => {
    const openapi = (await (await api.request('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { tags?: string[] }>>;
    };
    const risk = Object.entries(openapi.paths).filter(([path]) => path.startsWith('/api/v1/risk'));
    expect(risk.map(([path]) => path).sort()).toEqual([
      '/api/v1/risk/denied-orders',
      '/api/v1/risk/exits/{portfolioId}/{strategyId}/{symbol}',
      '/api/v1/risk/exits/{portfolioId}/{strategyId}/{symbol}/levels',
      '/api/v1/risk/kill-switch',
      '/api/v1/risk/kill-switch/release-requests',
      '/api/v1/risk/limits',
      '/api/v1/risk/limits/{scopeType}/{scopeId}',
      '/api/v1/risk/limits/{scopeType}/{scopeId}/change-requests',
      '/api/v1/risk/overview',
      '/api/v1/risk/states',
      '/api/v1/risk/states/{scopeType}/{scopeId}',
      '/api/v1/risk/states/{scopeType}/{scopeId}/reset-requests',
      '/api/v1/risk/triggers',
    ]);
    for (const [, methods] of risk)
      for (const operation of Object.values(methods)) expect(operation.tags).toEqual(['risk']);
    const folded = await call('auditor', 'GET', '/audit/streams/risk-killswitch-global/state');
    expect(folded.status, JSON.stringify(folded.body)).toBe(200);
    expect(JSON.stringify(folded.body)).toContain('"kind":"killswitch"');
  });

  it('rebuilds into a new generation with the very same rows and Redis view', async () => {
    await settled();
    const tables: [string, string][] = [
      ['risk_snapshot', 'id'],
      ['risk_states', 'scope_type, scope_id'],
      ['risk_limits', 'scope_type, scope_id'],
      ['risk_triggers', 'trigger_id'],
      ['risk_denied_orders', 'client_order_id'],
      ['risk_kill_switch', 'id'],
      ['risk_order_refs', 'client_order_id'],
    ];
    const checksums = async () =>
      Promise.all(
        tables.map(([table, orderBy]) =>
          tableChecksum(runtime.pool, `qcat_read.${table}`, orderBy),
        ),
      );
    const before = await checksums();
    expect(before.slice(0, 6).every((c) => c.rows > 0)).toBe(true);
    const rebuilt = await new PostgresTarget(runtime.pool, riskProjection).rebuild(
      runtime.eventStore,
    );
    expect(rebuilt.generation).toBe(2);
    expect(await checksums()).toEqual(before);

    const view = async () => {
      const keys = await liveKeys();
      return {
        states: await redis.redis.hgetall(keys.states),
        killSwitch: await redis.redis.hgetall(keys.killSwitch),
      };
    };
    const live = await view();
    expect(Object.keys(live.states).length).toBeGreaterThan(2);
    const connection = redis.redis.duplicate();
    try {
      const again = await new RedisTarget(connection, redis.prefix, liveRiskView).rebuild(
        runtime.eventStore,
      );
      expect(again.generation).toBe(2);
    } finally {
      connection.disconnect();
    }
    expect(await view()).toEqual(live);
  });

  it('answers the kill switch from the read-model cache, never stale after a change', async () => {
    const head = await settled();
    const read = async (path: string) => {
      const response = await api.request('GET', `/api/v1${path}`, { token: api.tokens.viewer });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      return {
        cache: response.headers.get('x-qcat-read-cache'),
        text,
        body: JSON.parse(text) as Json,
      };
    };
    // A hit with minPosition=head: the cache has heard of every change up to the head.
    const warm = await until(
      () => read(`/risk/kill-switch?minPosition=${head}`),
      (r) => r.cache === 'hit',
    );
    expect(warm.cache).toBe('hit');

    // The plain URL was cached by an earlier test, under a version long gone.
    const path = '/risk/kill-switch';
    const first = await read(path);
    expect(first.cache).toBe('miss');
    expect(first.body).toMatchObject({ engaged: false });
    const second = await read(path);
    expect(second.cache).toBe('hit');
    expect(second.text).toBe(first.text);

    const engaged = ok(
      await call('risk_officer', 'POST', '/risk/kill-switch', { reason: 'cache probe' }),
    );
    const position = engaged['position'] as string;
    // Reading one's own write: never the answer cached before it.
    const own = await read(`${path}?minPosition=${position}`);
    expect(own.cache).toBe('miss');
    expect(own.body).toMatchObject({ engaged: true, reason: 'cache probe', position });
    // The plain URL drops its cached answer once the change is projected, then caches the new one.
    const plain = await until(
      () => read(path),
      (r) => r.body['engaged'] === true && r.cache === 'hit',
    );
    expect(plain.body).toMatchObject({ engaged: true, reason: 'cache probe', position });
    expect(plain.cache).toBe('hit');
  });
});
