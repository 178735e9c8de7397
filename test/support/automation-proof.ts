import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { expect } from 'vitest';
import { approvals, approvalStream, type Party } from '../../core/approvals/approval.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import { injectIntoCandles } from '../../core/hot-symbols/synthetic-derivatives.js';
import {
  hotSymbols,
  hotSymbolStream,
  recommendationExpiry,
} from '../../core/hot-symbols/tradable.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import type { Candle } from '../../core/market/types.js';
import type { EventStore } from '../../core/eventstore/event-store.js';
import { KILL_SWITCH_STREAM } from '../../core/risk/common.js';

/**
 * Helpers of the end-to-end proof of the automation capabilities (automation/proof.e2e.spec.ts):
 * a client of a running QCAT's API with one key, and the wait for a market step to be done.
 */

export interface Client {
  get<T = Record<string, unknown>>(path: string): Promise<T>;
  /** A command (POST/PUT) with its own Idempotency-Key; answers status and body. */
  send(
    method: 'POST' | 'PUT',
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
}

export function client(url: () => string, token: string): Client {
  const headers = { authorization: `Bearer ${token}` };
  return {
    get: async <T>(path: string): Promise<T> => {
      const response = await fetch(`${url()}/api/v1${path}`, { headers });
      const text = await response.text();
      if (!response.ok) throw new Error(`GET ${path}: ${String(response.status)} ${text}`);
      return JSON.parse(text) as T;
    },
    send: async (method, path, body) => {
      const response = await fetch(`${url()}/api/v1${path}`, {
        method,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
      };
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A market step is done when every process manager that ticks has ticked at the market's clock
 * (GET /api/v1/automation `clock.ticked`), every read model and process manager has read the
 * whole log, and no optimization is waiting or running, twice in a row (what one finishes, the
 * next reacts to). Answers how many polls it took.
 */
export async function settle(input: {
  pool: pg.Pool;
  api: Client;
  clock: number;
  ticking: readonly string[];
  timeoutMs?: number;
}): Promise<number> {
  const deadline = Date.now() + (input.timeoutMs ?? 60_000);
  let quiet = 0;
  let polls = 0;
  for (;;) {
    polls++;
    const { clock } = await input.api.get<{ clock: { ticked: Record<string, string> } }>(
      '/automation?decisions=0',
    );
    const behind = input.ticking.filter(
      (name) => Date.parse(clock.ticked[name] ?? '1970-01-01') < input.clock,
    );
    const { rows } = await input.pool.query<{ lagging: string; open: string }>(
      // One snapshot: when no read model lags, the optimizations read model is the log's truth
      // (a scan of the log for open optimizations, 40 times a second, was most of PostgreSQL's
      // work in this spec).
      `SELECT (SELECT count(*) FROM qcat_projections
                WHERE checkpoint < (SELECT position FROM qcat_log_head)) AS lagging,
              (SELECT count(*) FROM qcat_read.optimizations
                WHERE status NOT IN ('completed', 'failed', 'cancelled')) AS open`,
    );
    const done = behind.length === 0 && rows[0]?.lagging === '0' && rows[0].open === '0';
    quiet = done ? quiet + 1 : 0;
    if (quiet === 2) return polls;
    if (Date.now() > deadline)
      throw new Error(
        `the market step at ${new Date(input.clock).toISOString()} did not settle: behind ${behind.join(', ') || 'none'}, ${JSON.stringify(rows[0])}`,
      );
    await pause(25);
  }
}

/** The chain of causes of an event, read from the audit API's causation tree of its correlation. */
export async function causationChain(api: Client, event: RecordedEvent): Promise<string[]> {
  type Node = {
    eventId: string;
    type: string;
    actor: string;
    causationId: string | null;
    parentEventId: string | null;
  };
  const correlation = event.metadata.correlationId ?? event.eventId;
  const tree = await api.get<{ events: Node[] }>(
    `/audit/correlations/${encodeURIComponent(correlation)}?limit=1000`,
  );
  const byId = new Map(tree.events.map((e) => [e.eventId, e]));
  const links: string[] = [];
  let node = byId.get(event.eventId);
  let last: Node | undefined;
  while (node) {
    links.push(`${node.type} by ${node.actor.replace(/\(.*\)$/, '')}`);
    last = node;
    node = node.parentEventId ? byId.get(node.parentEventId) : undefined;
  }
  if (last?.causationId && !byId.has(last.causationId)) links.push(last.causationId);
  return links;
}

const DAY = 86_400_000;

/** The synthetic market of the proof: hourly bars by day, with a volume jump injected. */
export function proofMarket(input: {
  start: number;
  days: number;
  symbols: readonly string[];
  jump: { symbol: string; from: number };
}): Map<number, Candle[]> {
  const instruments = DEFAULT_INSTRUMENTS.filter((i) => input.symbols.includes(i.symbol));
  const generated = [
    ...generateCandles({
      seed: 19,
      from: input.start,
      to: input.start + input.days * DAY,
      timeframe: '1h',
      instruments,
    }),
  ];
  const candles = injectIntoCandles(generated, [{ kind: 'volume_jump', ...input.jump }]);
  const byDay = new Map<number, Candle[]>();
  for (const candle of candles) {
    const day = Math.floor((candle.openTime - input.start) / DAY);
    byDay.set(day, [...(byDay.get(day) ?? []), candle]);
  }
  return byDay;
}

/** The people of the proof: the risk officer (a key and its party) and an analyst's party. */
export interface People {
  commands: CommandHandler;
  risk: Client;
  riskParty: Party;
  analystParty: Party;
}

/**
 * The risk officer approves every pending request the role may approve: through the API with the
 * key; a request automation made on the market's clock (expired by the wall clock already)
 * through the command handler at the market's instant, as the same party (ADR 030).
 */
export async function approveAllPending(people: People, clock: number): Promise<number> {
  const { approvals: pending } = await people.risk.get<{
    approvals: { requestId: string; expiresAt: string; kind: string }[];
  }>('/approvals?status=pending&role=risk_officer&limit=100');
  // Releasing the kill switch is the proof's own step (a second risk officer approves it).
  const waiting = pending.filter((request) => request.kind !== 'risk_reset');
  for (const { requestId, expiresAt } of waiting) {
    if (Date.parse(expiresAt) > Date.now()) {
      const answer = await people.risk.send('POST', `/approvals/${requestId}/approve`, {
        comment: 'proof: approved',
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    } else
      await people.commands.handle(
        approvals,
        approvalStream(requestId),
        {
          type: 'GrantApproval',
          requestId,
          approver: people.riskParty,
          comment: 'proof: approved',
          now: new Date(clock).toISOString(),
        },
        { actor: people.riskParty.id },
      );
  }
  return waiting.length;
}

/**
 * The analyst proposes and the risk officer approves a recommended symbol onto the tradable list,
 * at the market's instant (the routes stamp the wall clock, which is past the recommendation's
 * 24 hours: ADR 030), for 30 days.
 */
export async function approveSymbol(
  people: People,
  ranked: RecordedEvent,
  symbol: string,
  at: number,
): Promise<void> {
  const rankedAt = (ranked.data as { at: number }).at;
  const base = { symbol, proposalId: `proof-${symbol}-${String(rankedAt)}` };
  await people.commands.handle(
    hotSymbols,
    hotSymbolStream(symbol),
    {
      type: 'ProposeHotSymbol',
      ...base,
      rankingPosition: ranked.position.toString(),
      rankedAt,
      score: null,
      recommendationExpiresAt: recommendationExpiry(rankedAt),
      reason: 'the volume jump the ranking found',
      proposedBy: people.analystParty,
      at,
    },
    { actor: people.analystParty.id },
  );
  await people.commands.handle(
    hotSymbols,
    hotSymbolStream(symbol),
    { type: 'ApproveHotSymbol', ...base, by: people.riskParty, comment: 'ok', expiryDays: 30, at },
    { actor: people.riskParty.id },
  );
}

/** What an action says about why it happened, for the proof's table. */
export function reasonOf(event: RecordedEvent): string {
  const d = event.data as Record<string, unknown>;
  const breaches = d['breaches'] as string[] | undefined;
  const config = d['config'] as { sizing?: unknown } | null | undefined;
  const text = [
    d['reason'],
    breaches?.[0],
    d['recommended'] && `recommended ${JSON.stringify(d['recommended'])}`,
    d['trigger'] && JSON.stringify(d['trigger']),
    d['description'],
    config?.sizing && `sizing ${JSON.stringify(config.sizing)}`,
  ].find((x): x is string => typeof x === 'string' && x.length > 0);
  return (text ?? '').slice(0, 100);
}

/**
 * The risk officer's policy for the proof, in the order the prerequisites need: all ten on.
 * `periodic` is capability 6's schedule.
 */
export function proofPolicy(periodic: string): [string, Record<string, unknown>][] {
  return [
    ['hot_symbols', { expiryDays: 30 }],
    // The adoption gate: any result with parameters passes (the gate's own specs test it).
    [
      'adopt_parameters',
      { minOutOfSampleSharpe: -10, minDeflatedSharpe: 0, maxOverfitProbability: 1, minTrades: 0 },
    ],
    // Two strategies, a week apart (the tradable list holds one symbol: two templates on it).
    ['new_strategies', { perWeek: 1, total: 2 }],
    // Small searches; 1 fires on any strategy with a week of paper PnL (Sharpe below 10), once
    // in 30 days; 6 fires once, on its dated schedule.
    ['periodic_optimization', { schedule: periodic, cooldownDays: 1, trials: 8, dataDays: 60 }],
    [
      'optimize_on_underperformance',
      { sharpeBelow: 10, cooldownDays: 30, trials: 8, dataDays: 60 },
    ],
    ['rebalance', {}],
    ['balance_sizing', {}],
    ['auto_exits', {}],
    ['dynamic_exits', {}],
    // Lenient until the proof tightens it: the strategies trade a while before they are judged.
    ['elimination', { sharpeBelow: -10, drawdownAbove: 1, losingWeeksInARow: 52, coolingDays: 2 }],
  ];
}

/** The strategies started in paper so far. */
export async function startedInPaper(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT data->>'strategyId' AS id FROM qcat_events WHERE type = 'StrategyPaperTradingStarted'`,
  );
  return rows.map((row) => row.id);
}

/** Capability 8's candidates whose optimization is requested and not finished. */
export async function openCandidateOptimizations(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM qcat_events r WHERE r.type = 'OptimizationRequested'
        AND r.data->'trigger'->>'type' = 'new_strategy' AND NOT EXISTS (SELECT 1 FROM qcat_events d
        WHERE d.stream_id = r.stream_id AND d.type = 'OptimizationCompleted')`,
  );
  return Number(rows[0]?.n);
}

/**
 * The risk officer adds a strategy to the portfolio (capability 3 proposes, 4 sizes) and sets its
 * exit rules on SOLUSDT: stop-loss 2% (capability 5), a trailing stop 1% behind the best price
 * once 1% up (capability 9).
 */
export async function joinWithExits(
  risk: Client,
  portfolioId: string,
  strategyId: string,
): Promise<void> {
  const added = await risk.send('POST', `/portfolios/${portfolioId}/members`, { strategyId });
  expect(added.status, JSON.stringify(added.body)).toBe(200);
  const rules = await risk.send('PUT', `/risk/exits/${portfolioId}/${strategyId}/SOLUSDT`, {
    stopLoss: 0.02,
    takeProfit: 2,
    trailing: { activation: 0.01, distance: 0.01 },
  });
  expect(rules.status, JSON.stringify(rules.body)).toBe(200);
}

/** Per capability: how often it acted, its first action, why, and that action's causes. */
export async function actionTable(
  auditor: Client,
  did: Record<1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10, RecordedEvent[]>,
): Promise<Record<string, string | number>[]> {
  const rows = [];
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] as const) {
    const first = did[n][0];
    rows.push({
      capability: n,
      actions: did[n].length,
      first: first ? `${first.type} ${first.streamId}` : 'none',
      why: first ? reasonOf(first) : '',
      chain:
        first && first.metadata.actor.startsWith('automation:')
          ? (await causationChain(auditor, first)).join(' <- ')
          : 'engine cycle',
    });
  }
  return rows;
}

/** The first risk officer asks to release the kill switch, a second approves (four eyes). */
export async function releaseKillSwitch(
  risk: Client,
  risk2: Client,
  store: EventStore,
): Promise<void> {
  const asked = await risk.send('POST', '/risk/kill-switch/release-requests', {
    reason: 'proof: the drill is over',
  });
  expect(asked.status, JSON.stringify(asked.body)).toBe(201);
  const requestId = String(asked.body['approvalRequestId']);
  const approved = await risk2.send('POST', `/approvals/${requestId}/approve`, {});
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  const released = async () =>
    (await store.readStream(KILL_SWITCH_STREAM)).at(-1)?.type === 'KillSwitchReleased';
  for (let wait = 0; !(await released()); wait++) {
    expect(wait, 'the approved release is applied').toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 20));
  }
}
