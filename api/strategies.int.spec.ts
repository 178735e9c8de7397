import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { strategies } from '../core/strategies/strategy.js';
import { expireDueApprovals } from '../automation/approval-flow/expiry.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { describeNeeding } from '../test/support/tools.js';

/**
 * The strategy lifecycle end to end over real HTTP, with a key per role: create, submit, four
 * eyes, paper, promotion with two approvers one of them a risk officer, a parameter change while
 * live that becomes version 2, the history with every actor, and a stale If-Match.
 */
describeNeeding(['redis'], 'strategies and approvals over HTTP', () => {
  let api: TestServer;
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await connectTestRedis('strategies');
    api = await startTestServer('strategies', {
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: redis.prefix,
    });
  });
  afterAll(async () => {
    await api.stop();
    await redis.cleanup();
  });

  type Json = Record<string, unknown>;
  const call = async (
    role: keyof TestServer['tokens'],
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
      headers,
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === '' ? {} : (JSON.parse(text) as Json),
      headers: response.headers,
    };
  };
  const ok = (answer: { status: number; body: Json }, status = 200): Json => {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return answer.body;
  };

  const definition = {
    name: 'BTC trend',
    kind: 'sma_crossover',
    symbols: ['BTCUSDT'],
    timeframe: '1h',
    parameters: { fastPeriod: 10, slowPeriod: 30 },
    capitalRequest: 25_000,
  };

  it('lists the strategy kinds with their parameter schemas', async () => {
    const kinds = (await call('viewer', 'GET', '/strategy-kinds')).body as unknown as {
      name: string;
      parameters: { properties: Record<string, { default?: unknown }> };
    }[];
    expect(kinds.map((k) => k.name)).toEqual([
      'sma_crossover',
      'rsi_mean_reversion',
      'donchian_breakout',
    ]);
    expect(kinds[0]?.parameters.properties['fastPeriod']?.default).toBe(20);
  });

  it('refuses parameters that do not fit the kind, listing every field, and writes nothing', async () => {
    const head = await api.server.runtime.eventStore.headPosition();
    const answer = await call('trader', 'POST', '/strategies', {
      ...definition,
      parameters: { fastPeriod: 0, slowPeriod: 'fast' },
    });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.body['code']).toBe('INVALID_PARAMETERS');
    const paths = (answer.body['errors'] as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['parameters.fastPeriod', 'parameters.slowPeriod']);
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('runs the whole lifecycle with four eyes, and records every step with its actor', async () => {
    // A viewer may read but not create.
    expect((await call('viewer', 'POST', '/strategies', definition)).status).toBe(403);

    const created = ok(await call('trader', 'POST', '/strategies', definition), 201);
    const id = created['strategyId'] as string;
    const detail = ok(
      await call('viewer', 'GET', `/strategies/${id}?minPosition=${String(created['position'])}`),
    );
    expect(detail).toMatchObject({
      status: 'draft',
      parameterVersion: 1,
      parameters: { fastPeriod: 10, slowPeriod: 30, positionFraction: 0.5 },
      allowedCommands: ['edit', 'submit', 'retire'],
    });

    // Not allowed in draft: the answer names the state and what is allowed.
    const early = await call('trader', 'POST', `/strategies/${id}/start-paper`);
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({
      code: 'STRATEGY_TRANSITION_NOT_ALLOWED',
      currentState: 'draft',
      allowedCommands: ['edit', 'submit', 'retire'],
    });

    // Submit: an activation request opens.
    const submitted = ok(await call('trader', 'POST', `/strategies/${id}/submit`));
    const activation = submitted['approvalRequestId'] as string;
    const queue = ok(await call('risk_officer', 'GET', '/approvals/queue'));
    expect((queue['approvals'] as Json[]).map((a) => a['requestId'])).toContain(activation);
    const traderQueue = ok(await call('trader', 'GET', '/approvals/queue'));
    expect((traderQueue['approvals'] as Json[]).map((a) => a['requestId'])).not.toContain(
      activation,
    );

    // Four eyes: the requester cannot approve their own request.
    const self = await call('trader', 'POST', `/approvals/${activation}/approve`);
    expect(self.status, JSON.stringify(self.body)).toBe(403);
    expect(self.body['code']).toBe('SELF_APPROVAL_FORBIDDEN');
    // A role the rule does not name cannot either.
    expect((await call('analyst', 'POST', `/approvals/${activation}/approve`)).body['code']).toBe(
      'APPROVER_ROLE_NOT_ELIGIBLE',
    );

    // Another eligible person approves: the flow approves the strategy.
    const approved = ok(
      await call('risk_officer', 'POST', `/approvals/${activation}/approve`, { comment: 'fine' }),
    );
    expect(approved['status']).toBe('approved');
    expect(approved['effect']).toMatchObject({ command: 'ApproveActivation', outcome: 'applied' });
    const effect = approved['effect'] as { position: string };
    expect(
      ok(await call('viewer', 'GET', `/strategies/${id}?minPosition=${effect.position}`))['status'],
    ).toBe('approved');

    // Paper.
    ok(await call('trader', 'POST', `/strategies/${id}/start-paper`));

    // Promotion to live needs two distinct approvers, one of them a risk officer.
    const promotion = ok(await call('trader', 'POST', `/strategies/${id}/request-live`))[
      'approvalRequestId'
    ] as string;
    expect((await call('trader', 'POST', `/approvals/${promotion}/approve`)).body['code']).toBe(
      'SELF_APPROVAL_FORBIDDEN',
    );
    const first = ok(await call('analyst', 'POST', `/approvals/${promotion}/approve`));
    expect(first).toMatchObject({ status: 'pending', effect: null });
    const pending = ok(
      await call(
        'viewer',
        'GET',
        `/approvals/${promotion}?minPosition=${String(first['position'])}`,
      ),
    );
    expect(pending['stillNeeds']).toEqual({ approvals: 1, roles: ['risk_officer'] });
    const notRisk = await call('admin', 'POST', `/approvals/${promotion}/approve`);
    expect(notRisk.status).toBe(403);
    expect(notRisk.body['code']).toBe('APPROVAL_NEEDS_ROLE');
    const second = ok(await call('risk_officer', 'POST', `/approvals/${promotion}/approve`));
    expect(second['effect']).toMatchObject({ command: 'PromoteToLive', outcome: 'applied' });
    const livePosition = (second['effect'] as { position: string }).position;
    expect(
      ok(await call('viewer', 'GET', `/strategies/${id}?minPosition=${livePosition}`))['status'],
    ).toBe('live');

    // A parameter change while live is a request; once approved it is version 2.
    const change = ok(
      await call('analyst', 'POST', `/strategies/${id}/parameters`, {
        parameters: { fastPeriod: 12, slowPeriod: 40 },
      }),
    )['approvalRequestId'] as string;
    const stillV1 = ok(await call('viewer', 'GET', `/strategies/${id}`));
    expect(stillV1['parameterVersion']).toBe(1);
    expect(stillV1['pending']).toMatchObject({ parameterChange: { requestId: change } });
    expect((await call('analyst', 'POST', `/approvals/${change}/approve`)).status).toBe(403);
    const changed = ok(await call('risk_officer', 'POST', `/approvals/${change}/approve`));
    const v2Position = (changed['effect'] as { position: string }).position;
    const v2 = ok(await call('viewer', 'GET', `/strategies/${id}?minPosition=${v2Position}`));
    expect(v2).toMatchObject({
      status: 'live',
      parameterVersion: 2,
      parameters: { fastPeriod: 12, slowPeriod: 40, positionFraction: 0.5 },
    });
    const versions = (await call('auditor', 'GET', `/strategies/${id}/parameter-versions`))
      .body as unknown as { version: number; approvers: { role: string }[] }[];
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    expect(versions[0]?.approvers.map((a) => a.role)).toEqual(['risk_officer']);
    expect(versions[1]?.approvers.map((a) => a.role)).toEqual(['risk_officer']);

    // The history: every step, in order, with who took it.
    const history = ok(
      await call('auditor', 'GET', `/strategies/${id}/history?minPosition=${v2Position}`),
    )['events'] as { type: string; actor: string }[];
    const trader = (actor: string): boolean => actor.includes('(test-trader)');
    const risk = (actor: string): boolean => actor.includes('(test-risk_officer)');
    const analyst = (actor: string): boolean => actor.includes('(test-analyst)');
    const flow = (actor: string): boolean => actor === 'system:approval-flow';
    const steps: [string, (actor: string) => boolean][] = [
      ['StrategyCreated', trader],
      ['StrategySubmittedForReview', trader],
      ['ApprovalRequested', flow],
      ['ApprovalGranted', risk],
      ['ApprovalApproved', risk],
      ['StrategyApproved', flow],
      ['StrategyPaperTradingStarted', trader],
      ['StrategyPromotionRequested', trader],
      ['ApprovalRequested', flow],
      ['ApprovalGranted', analyst],
      ['ApprovalGranted', risk],
      ['ApprovalApproved', risk],
      ['StrategyPromotedToLive', flow],
      ['StrategyParameterChangeRequested', analyst],
      ['ApprovalRequested', flow],
      ['ApprovalGranted', risk],
      ['ApprovalApproved', risk],
      ['StrategyParametersChanged', flow],
    ];
    expect(history.map((e) => e.type)).toEqual(steps.map(([type]) => type));
    for (const [index, [type, byWhom]] of steps.entries())
      expect(
        byWhom(history[index]?.actor ?? ''),
        `${type} by ${history[index]?.actor ?? '?'}`,
      ).toBe(true);

    // The approval that made it live carries the causation chain: the flow's event was caused by it.
    const audit = ok(
      await call(
        'auditor',
        'GET',
        `/audit/events?streamId=strategy-${id}&type=StrategyPromotedToLive`,
      ),
    )['events'] as { causationId: string; correlationId: string }[];
    const approvedEvent = ok(
      await call(
        'auditor',
        'GET',
        `/audit/events?streamId=approval-${promotion}&type=ApprovalApproved`,
      ),
    )['events'] as { eventId: string; correlationId: string }[];
    expect(audit[0]?.causationId).toBe(approvedEvent[0]?.eventId);
    expect(audit[0]?.correlationId).toBe(approvedEvent[0]?.correlationId);

    // The Redis view has it live.
    const live = ok(await call('viewer', 'GET', '/strategies/live-status'));
    expect(live[id]).toMatchObject({ status: 'live' });

    // Filters and pagination.
    const listed = ok(await call('viewer', 'GET', '/strategies?state=live&symbol=BTCUSDT'));
    expect((listed['strategies'] as Json[]).map((s) => s['strategyId'])).toContain(id);
    const none = ok(await call('viewer', 'GET', '/strategies?state=retired'));
    expect((none['strategies'] as Json[]).map((s) => s['strategyId'])).not.toContain(id);
  });

  it('refuses a concurrent edit with a stale If-Match (412) and keeps the first', async () => {
    const created = ok(await call('trader', 'POST', '/strategies', definition), 201);
    const id = created['strategyId'] as string;
    const read = await call(
      'trader',
      'GET',
      `/strategies/${id}?minPosition=${String(created['position'])}`,
    );
    const etag = read.headers.get('etag') ?? '';
    expect(etag).toBe('"0"');
    const edited = ok(
      await call('analyst', 'PATCH', `/strategies/${id}`, { name: 'First' }, { 'if-match': etag }),
    );
    const stale = await call(
      'trader',
      'PATCH',
      `/strategies/${id}`,
      { name: 'Second' },
      { 'if-match': etag },
    );
    expect(stale.status).toBe(412);
    expect(stale.body['code']).toBe('PRECONDITION_FAILED');
    const after = await call(
      'viewer',
      'GET',
      `/strategies/${id}?minPosition=${String(edited['position'])}`,
    );
    expect(after.body['name']).toBe('First');
    expect(after.headers.get('etag')).toBe('"1"');
  });

  it('an Idempotency-Key makes a retried create return the first answer and write nothing', async () => {
    const headers = { 'idempotency-key': 'create-once-1234' };
    const first = ok(await call('trader', 'POST', '/strategies', definition, headers), 201);
    const head = await api.server.runtime.eventStore.headPosition();
    const again = ok(await call('trader', 'POST', '/strategies', definition, headers), 201);
    expect(again['strategyId']).toBe(first['strategyId']);
    expect(again['position']).toBe(first['position']);
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('a rejected activation sends the strategy back to draft; retiring withdraws open requests', async () => {
    const id = ok(await call('trader', 'POST', '/strategies', definition), 201)[
      'strategyId'
    ] as string;
    const request = ok(await call('trader', 'POST', `/strategies/${id}/submit`))[
      'approvalRequestId'
    ] as string;
    const rejected = ok(
      await call('risk_officer', 'POST', `/approvals/${request}/reject`, { reason: 'too risky' }),
    );
    expect(rejected['status']).toBe('rejected');
    const position = (rejected['effect'] as { position: string }).position;
    expect(
      ok(await call('viewer', 'GET', `/strategies/${id}?minPosition=${position}`))['status'],
    ).toBe('draft');

    const again = ok(await call('trader', 'POST', `/strategies/${id}/submit`))[
      'approvalRequestId'
    ] as string;
    const retired = ok(
      await call('trader', 'POST', `/strategies/${id}/retire`, { reason: 'abandoned' }),
    );
    await api.server.runtime.automation.waitFor(
      'approval-flow',
      BigInt(retired['position'] as string),
      5000,
    );
    const { state } = await api.server.runtime.commands.load(
      (await import('../core/approvals/approval.js')).approvals,
      `approval-${again}`,
    );
    expect(state.status).toBe('withdrawn');
  });

  it('expires a request past its expiry and declines what it asked for', async () => {
    const id = ok(await call('trader', 'POST', '/strategies', definition), 201)[
      'strategyId'
    ] as string;
    const request = ok(await call('trader', 'POST', `/strategies/${id}/submit`))[
      'approvalRequestId'
    ] as string;
    const { runtime } = api.server;
    await runtime.projections.waitFor('approvals', await runtime.eventStore.headPosition(), 5000);
    // Nothing is due now; eight days on, it is.
    expect(await expireDueApprovals(runtime.pool, runtime.commands, new Date())).toBe(0);
    const later = new Date(Date.now() + 8 * 24 * 3600 * 1000);
    expect(await expireDueApprovals(runtime.pool, runtime.commands, later)).toBeGreaterThanOrEqual(
      1,
    );
    await runtime.automation.waitFor(
      'approval-flow',
      await runtime.eventStore.headPosition(),
      5000,
    );
    await runtime.projections.waitFor('strategies', await runtime.eventStore.headPosition(), 5000);
    expect(ok(await call('viewer', 'GET', `/approvals/${request}`))['status']).toBe('expired');
    expect(ok(await call('viewer', 'GET', `/strategies/${id}`))['status']).toBe('draft');
    const late = await call('risk_officer', 'POST', `/approvals/${request}/approve`);
    expect(late.status).toBe(409);
    expect(late.body['code']).toBe('APPROVAL_NOT_PENDING');
  });

  it('pushes strategy changes on the `strategies` WebSocket channel', async () => {
    const ws = new WebSocket(`${api.server.url.replace('http', 'ws')}/ws`, {
      headers: { authorization: `Bearer ${api.tokens.viewer}` },
    });
    const frames: Json[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (data: Buffer) => {
      frames.push(JSON.parse(data.toString('utf8')) as Json);
      wake?.();
    });
    const next = async (match: (frame: Json) => boolean): Promise<Json> => {
      for (;;) {
        const found = frames.find(match);
        if (found) return found;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            reject(new Error(`no matching frame; got ${JSON.stringify(frames)}`));
          }, 10_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'strategies' }));
    await next((f) => f['type'] === 'subscribed');
    const id = ok(await call('trader', 'POST', '/strategies', definition), 201)[
      'strategyId'
    ] as string;
    const event = await next((f) => f['type'] === 'event');
    expect(event).toMatchObject({ channel: 'strategies' });
    expect(JSON.stringify(event)).toContain(id);
    expect(JSON.stringify(event)).toContain('StrategyCreated');
    ws.close();
  });

  it('answers the strategy list from the read-model cache, never stale after a change', async () => {
    const { runtime } = api.server;
    // Quiet: the approval flow has done all it will, and the read model holds everything.
    let head = await runtime.eventStore.headPosition();
    expect(await runtime.automation.waitFor('approval-flow', head, 5000)).toBe(true);
    head = await runtime.eventStore.headPosition();
    expect(await runtime.projections.waitFor('strategies', head, 5000)).toBe(true);
    const read = async (path: string) => {
      const response = await api.request('GET', `/api/v1${path}`, { token: api.tokens.viewer });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const ids = (JSON.parse(text) as { strategies: Json[] }).strategies.map(
        (s) => s['strategyId'] as string,
      );
      return { cache: response.headers.get('x-qcat-read-cache'), text, ids };
    };
    // A hit with minPosition=head: the cache has heard of every change up to the head.
    const warm = await until(
      () => read(`/strategies?limit=1&minPosition=${head.toString()}`),
      (r) => r.cache === 'hit',
    );
    expect(warm.cache).toBe('hit');

    const path = '/strategies?kind=donchian_breakout&limit=500';
    const first = await read(path);
    expect(first.cache).toBe('miss');
    const second = await read(path);
    expect(second.cache).toBe('hit');
    expect(second.text).toBe(first.text);

    const created = ok(
      await call('trader', 'POST', '/strategies', {
        ...definition,
        name: 'cache probe',
        kind: 'donchian_breakout',
        parameters: { entryPeriod: 10, exitPeriod: 5 },
      }),
      201,
    );
    const id = created['strategyId'] as string;
    // Reading one's own write: never the answer cached before it.
    const own = await read(`${path}&minPosition=${String(created['position'])}`);
    expect(own.cache).toBe('miss');
    expect(own.ids).toEqual([...first.ids, id]);
    // The plain URL drops its cached answer once the change is projected, then caches the new one.
    const plain = await until(
      () => read(path),
      (r) => r.ids.includes(id) && r.cache === 'hit',
    );
    expect(plain.ids).toEqual([...first.ids, id]);
    expect(plain.cache).toBe('hit');
  });
  it('a strategy of automation capability 8 (auto-<kind>-<symbol>-<id>) can be paused through the API', async () => {
    const strategyId = 'auto-sma_crossover-btcusdt-0a1b2c3d';
    const stream = `strategy-${strategyId}`;
    const bot = { id: 'automation:new-strategies', role: 'analyst' } as const;
    const commands = api.server.runtime.commands;
    const as = { actor: bot.id };
    await commands.handle(
      strategies,
      stream,
      {
        type: 'CreateStrategy',
        strategyId,
        owner: bot,
        name: 'sma_crossover on BTCUSDT (automatic)',
        description: 'created by capability 8',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        parameters: { fastPeriod: 10, slowPeriod: 100, positionFraction: 0.5 },
        capitalRequest: 10_000,
      },
      as,
    );
    await commands.handle(
      strategies,
      stream,
      { type: 'SubmitForReview', strategyId, requestId: 'auto-review', by: bot },
      as,
    );
    await commands.handle(
      strategies,
      stream,
      {
        type: 'ApproveActivation',
        strategyId,
        requestId: 'auto-review',
        approvers: [{ id: 'apikey:risk', role: 'risk_officer' }],
      },
      as,
    );
    await commands.handle(strategies, stream, { type: 'StartPaperTrading', strategyId }, as);
    const paused = await call('trader', 'POST', `/strategies/${strategyId}/pause`, {
      reason: 'it loses money',
    });
    expect(paused.status).toBe(200);
    expect((await commands.load(strategies, stream)).state.status).toBe('paused');
    const bad = await call('trader', 'POST', '/strategies/not-a-strategy/pause', { reason: 'x' });
    expect(bad.status).toBe(400);
    expect(String(bad.body['detail'])).toMatch(/strategy id/);
  });
});
