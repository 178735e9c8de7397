import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { z } from 'zod';
import {
  approvalStream,
  approvals,
  type ApprovalKind,
  type Subject,
} from '../../core/approvals/approval.js';
import type { CommandResult } from '../../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../../core/decider.js';
import { portfolioOf } from '../../core/engine/desk.js';
import { QcatError } from '../../core/errors.js';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import {
  emptySnapshot,
  limitsIn,
  scopesOf,
  strictestState,
  type RiskSnapshot,
} from '../../core/risk/checks.js';
import {
  exitsStream,
  KILL_SWITCH_STREAM,
  KILL_SWITCH_SUBJECT,
  limitsStream,
  limitsSubject,
  RISK_SCOPE_TYPES,
  scopeKey,
  TRADING_STATES,
  tradingStateStream,
  tradingStateSubject,
  type RiskScope,
} from '../../core/risk/common.js';
import { exitRulesSchema, exits, exitsKey, type ExitRules } from '../../core/risk/exits.js';
import { killSwitch } from '../../core/risk/kill-switch.js';
import {
  DEFAULT_LIMITS,
  limits as limitsDecider,
  validateLimitChanges,
  type RiskLimits,
} from '../../core/risk/limits.js';
import {
  effectiveState,
  RISK_RULES,
  TRIGGER_ACTIONS,
  tradingStates,
  type Temporary,
} from '../../core/risk/trading-state.js';
import { TIMEFRAMES } from '../../core/strategies/kinds.js';
import { positionStream } from '../../core/trading/accounting.js';
import type { Runtime } from '../../ops/runtime.js';
import { HttpProblem } from '../problem.js';
import {
  addTimeRange,
  amount,
  awaitPosition,
  commandAnswer,
  commandResultSchema,
  cursorPage,
  instant,
  instantOf,
  isoOrNull,
  pageLimit,
  positionCursor,
  positionString,
  principalOf,
  SqlFilter,
  timeRange,
} from './conventions.js';
import { commandOf, commandRoute } from '../command-route.js';

const PROJECTION = 'risk';
const SYMBOL = /^[A-Z0-9]{2,20}$/;
const symbol = z.string().regex(SYMBOL, 'expected a symbol such as BTCUSDT');
const id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected letters, digits, ., _ or -');
const scopeType = z.enum(RISK_SCOPE_TYPES);
const scopeParams = z.object({ scopeType, scopeId: id });
const bookParams = z.object({ portfolioId: id, strategyId: id, symbol });
const reason = z.string().trim().min(1).max(500);
const limit = pageLimit(1000, 100);
const after = positionCursor;
const minPosition = positionString.optional();

const limitsOut = z.object({
  maxOrderNotional: z.number().nullable(),
  maxPositionNotional: z.number().nullable(),
  maxPositionShareOfEquity: z.number().nullable(),
  maxGrossExposure: z.number().nullable(),
  maxLeverage: z.number().nullable(),
  orderRate: z.object({ maxOrders: z.number(), windowMs: z.number() }).nullable(),
  dailyLossLimit: z.number().nullable(),
  maxDrawdown: z.number().nullable(),
  priceBreaker: z
    .object({ maxMove: z.number(), windowMs: z.number(), cooldownMs: z.number() })
    .nullable(),
});
const temporaryOut = z
  .object({ state: z.enum(TRADING_STATES), until: z.string(), triggerId: z.string() })
  .nullable();
const scopeState = z.object({
  scopeType,
  scopeId: z.string(),
  state: z.enum(TRADING_STATES).describe('in force now'),
  base: z.enum(TRADING_STATES),
  temporary: temporaryOut,
});
const stateRow = scopeState.extend({
  reason: z.string(),
  changedBy: z.string(),
  changedAt: z.string(),
  resetAt: z.string().nullable(),
  requestId: z.string().nullable(),
  position: z.string(),
});
const limitsRow = z.object({
  scopeType,
  scopeId: z.string(),
  limits: limitsOut,
  isDefault: z.boolean().describe('never set: the defaults of the scope type'),
  version: z.number().int().describe('0 for defaults; 1 once set, +1 per approved change'),
  requestId: z.string().nullable().describe('the approval request of the last change'),
  changedBy: z.string().nullable(),
  changedAt: z.string().nullable(),
  position: z.string().nullable(),
});
const killSwitchOut = z.object({
  engaged: z.boolean(),
  flatten: z.boolean(),
  since: z.string().nullable(),
  engagedBy: z.string().nullable(),
  reason: z.string(),
  releasedBy: z.string().nullable().describe('the approvers of the release'),
  releasedAt: z.string().nullable(),
  releaseRequestId: z.string().nullable(),
  position: z.string().nullable(),
});
const trigger = z.object({
  triggerId: z.string(),
  rule: z.enum(RISK_RULES),
  scopeType,
  scopeId: z.string(),
  threshold: z.number(),
  observed: z.number(),
  reference: z.number(),
  value: z.number(),
  window: z.object({ from: z.string(), to: z.string() }),
  action: z.enum(TRIGGER_ACTIONS),
  until: z.string().nullable(),
  actor: z.string(),
  firedAt: z.string(),
  position: z.string(),
});
const deniedOrder = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string().nullable(),
  strategyId: z.string().nullable(),
  symbol: z.string().nullable(),
  side: z.enum(['buy', 'sell']).nullable(),
  quantity: z.number().nullable(),
  code: z.string(),
  reason: z.string(),
  deniedAt: z.string(),
  actor: z.string(),
  position: z.string(),
});
const UTILISED = [
  'maxPositionNotional',
  'maxPositionShareOfEquity',
  'maxGrossExposure',
  'maxLeverage',
  'dailyLossLimit',
  'maxDrawdown',
] as const;
const portfolioRisk = z.object({
  portfolioId: z.string(),
  currency: z.string(),
  equity: z.number().nullable(),
  cash: z.number(),
  valuedAt: z.string().nullable(),
  state: z.enum(TRADING_STATES).describe('of the portfolio scope, in force now'),
  exposure: z.object({
    grossExposure: z.number().describe('Σ |quantity| × mark over the books'),
    netExposure: z.number().describe('Σ quantity × mark'),
    leverage: z.number().nullable().describe('gross exposure / equity'),
    largestPosition: z
      .object({ symbol: z.string(), notional: z.number(), shareOfEquity: z.number().nullable() })
      .nullable()
      .describe('the largest net position per symbol'),
    openingEquity: z.number().nullable().describe("the UTC day's opening equity"),
    dailyLoss: z.number().nullable().describe('(opening − equity) / opening; 0 on a gain'),
    highWaterMark: z.number().nullable().describe('since the last approved reset'),
    drawdown: z.number().nullable().describe('(high-water mark − equity) / high-water mark'),
  }),
  limits: limitsOut,
  utilisation: z.array(
    z.object({
      limit: z.enum(UTILISED),
      value: z.number().nullable(),
      max: z.number().nullable(),
      utilisation: z.number().nullable().describe('value / max; null without a limit'),
    }),
  ),
});
const exitsOut = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  rules: z
    .object({
      stopLoss: z.number().nullable(),
      takeProfit: z.number().nullable(),
      trailing: z.object({ activation: z.number(), distance: z.number() }).nullable(),
      atrStop: z.object({ period: z.number(), multiple: z.number() }).nullable(),
    })
    .nullable(),
  levels: z
    .object({
      openedAt: z.string(),
      stopPrice: z.number().nullable(),
      takeProfitPrice: z.number().nullable(),
    })
    .nullable()
    .describe('moved levels; they hold for the round trip that opened at openedAt only'),
  openTrip: z
    .object({ openedAt: z.string(), quantity: z.number() })
    .nullable()
    .describe("the book's open round trip"),
});
const requestAnswer = commandResultSchema.extend({
  approvalRequestId: z.string().describe('the approval request opened; see /approvals/{id}'),
});

const iso = (ms: number): string => new Date(ms).toISOString();
const temporaryOf = (t: Temporary | null): z.infer<typeof temporaryOut> =>
  t ? { state: t.state, until: iso(t.until), triggerId: t.triggerId } : null;

/** `<scopeType>:<id>` cursors of the lists ordered by scope. */
const scopeCursor = z
  .string()
  .regex(
    /^(portfolio|strategy|symbol):[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
    'expected <scopeType>:<id>',
  )
  .optional()
  .describe('cursor: nextCursor of the previous page');
/** The cursor after a row of a by-scope list: `<scopeType>:<id>`, as addScopeCursor reads it. */
const scopeCursorOf = (row: { scope_type: RiskScope['type']; scope_id: string }): string =>
  scopeKey({ type: row.scope_type, id: row.scope_id });
function addScopeCursor(filter: SqlFilter, cursor: string | undefined): void {
  if (!cursor) return;
  const colon = cursor.indexOf(':');
  filter.add(
    `(scope_type, scope_id) > (?, ${filter.param(cursor.slice(colon + 1))})`,
    cursor.slice(0, colon),
  );
}

interface StateRow {
  scope_type: RiskScope['type'];
  scope_id: string;
  state: (typeof TRADING_STATES)[number];
  temporary: Temporary | null;
  reason: string;
  changed_by: string;
  changed_at: Date;
  reset_at: Date | null;
  request_id: string | null;
  position: string;
}
interface LimitsRow {
  scope_type: RiskScope['type'];
  scope_id: string;
  limits: RiskLimits;
  version: number;
  request_id: string | null;
  changed_by: string;
  changed_at: Date;
  position: string;
}
const toLimits = (r: LimitsRow): z.infer<typeof limitsRow> => ({
  scopeType: r.scope_type,
  scopeId: r.scope_id,
  limits: r.limits,
  isDefault: false,
  version: r.version,
  requestId: r.request_id,
  changedBy: r.changed_by,
  changedAt: r.changed_at.toISOString(),
  position: r.position,
});

/** The snapshot the engine reads, and the position of the last risk event in it. */
async function snapshotOf(pool: pg.Pool): Promise<{ snapshot: RiskSnapshot; position: string }> {
  const { rows } = await pool.query<{ snapshot: RiskSnapshot; position: string }>(
    'SELECT snapshot, position FROM qcat_read.risk_snapshot WHERE id = 1',
  );
  return rows[0] ?? { snapshot: emptySnapshot(), position: '0' };
}

/** The round trip open in a book, from its position stream (PositionChanged carries the quantity). */
async function openTripOf(
  runtime: Runtime,
  portfolioId: string,
  strategyId: string,
  symbolName: string,
): Promise<{ openedAt: number; quantity: number } | null> {
  const events = await runtime.eventStore.readStream(
    positionStream(portfolioId, strategyId, symbolName),
  );
  let held = 0;
  let openedAt = 0;
  for (const event of events) {
    if (event.type !== 'PositionChanged') continue;
    const { quantity, time } = event.data as { quantity: number; time: number };
    // A round trip opens when the position leaves zero or flips (core/trading/accounting.ts).
    if (quantity !== 0 && (held === 0 || Math.sign(quantity) !== Math.sign(held))) openedAt = time;
    held = quantity;
  }
  return held === 0 ? null : { openedAt, quantity: held };
}

const utcDay = (ms: number): number => ms - (((ms % 86_400_000) + 86_400_000) % 86_400_000);

/** Exposure, drawdown, daily loss and the utilisation of each portfolio limit. */
async function portfolioRisks(
  pool: pg.Pool,
  snapshot: RiskSnapshot,
  now: number,
): Promise<z.infer<typeof portfolioRisk>[]> {
  const [portfolios, positions] = await Promise.all([
    pool.query<{
      portfolio_id: string;
      currency: string;
      cash: number;
      equity: number | null;
      valued_at: Date | null;
      high_water_mark: number | null;
    }>(
      `SELECT portfolio_id, currency, cash, equity, valued_at, high_water_mark
         FROM qcat_read.portfolios ORDER BY portfolio_id`,
    ),
    pool.query<{ portfolio_id: string; symbol: string; quantity: number; mark: number }>(
      `SELECT portfolio_id, symbol, quantity, COALESCE(mark_price, average_entry_price) AS mark
         FROM qcat_read.positions WHERE quantity <> 0`,
    ),
  ]);
  const equityAt = async (
    portfolioId: string,
    sql: string,
    value: Date,
  ): Promise<number | undefined> => {
    const { rows } = await pool.query<{ equity: number }>(
      `SELECT equity FROM qcat_read.portfolio_equity WHERE portfolio_id = $1 AND ${sql}`,
      [portfolioId, value],
    );
    return rows[0]?.equity;
  };
  const result: z.infer<typeof portfolioRisk>[] = [];
  for (const p of portfolios.rows) {
    const scope: RiskScope = { type: 'portfolio', id: p.portfolio_id };
    const limits = limitsIn(snapshot, scope);
    const resetAt = snapshot.states[scopeKey(scope)]?.resetAt ?? null;
    const books = positions.rows.filter((row) => row.portfolio_id === p.portfolio_id);
    const gross = books.reduce((sum, b) => sum + Math.abs(b.quantity) * b.mark, 0);
    const net = books.reduce((sum, b) => sum + b.quantity * b.mark, 0);
    const bySymbol = new Map<string, number>();
    for (const b of books)
      bySymbol.set(b.symbol, (bySymbol.get(b.symbol) ?? 0) + b.quantity * b.mark);
    let largest: { symbol: string; notional: number } | null = null;
    for (const [name, signed] of bySymbol)
      if (!largest || Math.abs(signed) > largest.notional)
        largest = { symbol: name, notional: Math.abs(signed) };
    const equity = p.equity;
    const share = (value: number): number | null =>
      equity === null ? null : equity > 0 ? value / equity : Infinity;

    // The breakers' measures (docs/risk.md), from the valuations: the day is the last valuation's
    // UTC day; an approved reset restarts the high-water mark and the day's opening equity.
    let openingEquity: number | null = null;
    let highWaterMark = p.high_water_mark;
    if (p.valued_at && equity !== null) {
      const dayStart = new Date(utcDay(p.valued_at.getTime()));
      const reset = resetAt !== null ? new Date(resetAt) : null;
      if (reset && reset >= dayStart)
        openingEquity =
          (await equityAt(p.portfolio_id, 'time <= $2 ORDER BY time DESC LIMIT 1', reset)) ??
          (await equityAt(p.portfolio_id, 'time >= $2 ORDER BY time LIMIT 1', reset)) ??
          null;
      else
        openingEquity =
          (await equityAt(p.portfolio_id, 'time < $2 ORDER BY time DESC LIMIT 1', dayStart)) ??
          (await equityAt(p.portfolio_id, 'time >= $2 ORDER BY time LIMIT 1', dayStart)) ??
          null;
      if (reset) {
        const atReset = await equityAt(
          p.portfolio_id,
          'time <= $2 ORDER BY time DESC LIMIT 1',
          reset,
        );
        const since = await pool.query<{ high: number | null }>(
          `SELECT max(equity) AS high FROM qcat_read.portfolio_equity
            WHERE portfolio_id = $1 AND time > $2`,
          [p.portfolio_id, reset],
        );
        highWaterMark = Math.max(atReset ?? -Infinity, since.rows[0]?.high ?? -Infinity, equity);
      }
    }
    const dailyLoss =
      openingEquity !== null && equity !== null && openingEquity > 0
        ? Math.max(0, (openingEquity - equity) / openingEquity)
        : null;
    const drawdown =
      highWaterMark !== null && equity !== null && highWaterMark > 0
        ? Math.max(0, (highWaterMark - equity) / highWaterMark)
        : null;
    const leverage = share(gross);
    const largestShare = largest ? share(largest.notional) : null;
    const values: Record<(typeof UTILISED)[number], number | null> = {
      maxPositionNotional: largest?.notional ?? 0,
      maxPositionShareOfEquity: largest ? largestShare : 0,
      maxGrossExposure: gross,
      maxLeverage: leverage,
      dailyLossLimit: dailyLoss,
      maxDrawdown: drawdown,
    };
    result.push({
      portfolioId: p.portfolio_id,
      currency: p.currency,
      equity,
      cash: p.cash,
      valuedAt: isoOrNull(p.valued_at),
      state: strictestState(snapshot, [scope], now).state,
      exposure: {
        grossExposure: gross,
        netExposure: net,
        leverage,
        largestPosition: largest ? { ...largest, shareOfEquity: largestShare } : null,
        openingEquity,
        dailyLoss,
        highWaterMark,
        drawdown,
      },
      limits,
      utilisation: UTILISED.map((name) => {
        const max = limits[name];
        const value = values[name];
        return {
          limit: name,
          value,
          max,
          utilisation: max !== null && value !== null && max > 0 ? value / max : null,
        };
      }),
    });
  }
  return result;
}

/** Risk control: limits, trading states, kill switch, triggers, denials, exits (docs/risk.md). */
export const riskRoutes: FastifyPluginAsyncZod<{ runtime: Runtime }> = async (
  fastify,
  { runtime },
) => {
  const { pool } = runtime;
  const handle = async (
    request: FastifyRequest,
    decider: Decider<unknown, JsonObject, DomainEvent>,
    streamId: string,
    command: JsonObject,
  ): Promise<CommandResult> =>
    commandOf(request, runtime.commands).handle(decider, streamId, command);
  const as = <S, C, E extends DomainEvent>(decider: Decider<S, C, E>) =>
    decider as unknown as Decider<unknown, JsonObject, DomainEvent>;

  /** A scope that can carry risk: a known strategy, a paper portfolio, a symbol. */
  const checkScope = async (scope: RiskScope): Promise<void> => {
    if (scope.type === 'symbol' && !SYMBOL.test(scope.id))
      throw new HttpProblem(
        400,
        'VALIDATION_FAILED',
        `params.scopeId: expected a symbol such as BTCUSDT, not ${scope.id}`,
      );
    if (scope.type === 'strategy') {
      const { rowCount } = await pool.query(
        'SELECT 1 FROM qcat_read.strategies WHERE strategy_id = $1',
        [scope.id],
      );
      if (!rowCount)
        throw new HttpProblem(404, 'STRATEGY_NOT_FOUND', `strategy ${scope.id} does not exist`);
    }
    if (scope.type === 'portfolio' && !TIMEFRAMES.some((tf) => portfolioOf(tf) === scope.id)) {
      const { rowCount } = await pool.query(
        'SELECT 1 FROM qcat_read.portfolios WHERE portfolio_id = $1',
        [scope.id],
      );
      if (!rowCount)
        throw new HttpProblem(
          404,
          'PORTFOLIO_NOT_FOUND',
          `portfolio ${scope.id} does not exist (paper portfolios are paper-<timeframe>)`,
        );
    }
  };

  /** A book: a strategy trading the symbol in the portfolio of its timeframe. */
  const checkBook = async (portfolioId: string, strategyId: string, name: string) => {
    const { rows } = await pool.query<{ symbols: string[]; timeframe: string }>(
      'SELECT symbols, timeframe FROM qcat_read.strategies WHERE strategy_id = $1',
      [strategyId],
    );
    const strategy = rows[0];
    if (!strategy)
      throw new HttpProblem(404, 'STRATEGY_NOT_FOUND', `strategy ${strategyId} does not exist`);
    if (!strategy.symbols.includes(name) || portfolioOf(strategy.timeframe) !== portfolioId)
      throw new HttpProblem(
        404,
        'BOOK_NOT_FOUND',
        `strategy ${strategyId} trades ${strategy.symbols.join(', ')} in ${portfolioOf(strategy.timeframe)}, not ${name} in ${portfolioId}`,
      );
  };

  /**
   * Opens an approval request (four eyes: a risk officer other than the requester approves; the
   * approval flow then applies it). With an Idempotency-Key the request id is derived from it, so
   * a retry opens nothing new. One pending request per kind and subject.
   */
  const openRequest = async (
    request: FastifyRequest,
    reply: FastifyReply,
    purpose: string,
    kind: ApprovalKind,
    subject: Subject,
    payload: JsonObject,
    why: string,
  ) => {
    const command = commandOf(request, runtime.commands);
    const { party } = command;
    const requestId = command.newId(purpose);
    const { rows } = await pool.query<{ request_id: string }>(
      `SELECT request_id FROM qcat_read.approvals
        WHERE status = 'pending' AND kind = $1 AND subject_type = $2 AND subject_id = $3
          AND request_id <> $4
        ORDER BY requested_position LIMIT 1`,
      [kind, subject.type, subject.id, requestId],
    );
    const open = rows[0];
    if (open)
      throw new QcatError(
        'REQUEST_ALREADY_OPEN',
        `a ${kind} request for ${subject.type} ${subject.id} is already pending: ${open.request_id}`,
        { openRequestId: open.request_id },
      );
    const result = await command.handle(approvals, approvalStream(requestId), {
      type: 'RequestApproval',
      requestId,
      kind,
      subject,
      requester: party,
      payload,
      reason: why,
      now: new Date().toISOString(),
    });
    await runtime.projections.waitFor('approvals', result.position, 2000);
    void reply.header('location', `/api/v1/approvals/${requestId}`);
    return reply.code(201).send({ ...commandAnswer(reply, result), approvalRequestId: requestId });
  };

  fastify.get(
    '/risk/overview',
    {
      // Not cached (readModel): depends on the clock and on the trading read model.
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary:
          'Kill switch, trading states in force, the state each open book trades under, and per portfolio its exposure and the utilisation of each limit',
        querystring: z.object({ minPosition }).strict(),
        response: {
          200: z.object({
            asOf: z.string(),
            position: z.string().describe('of the last risk event in the read model'),
            killSwitch: z.object({
              engaged: z.boolean(),
              flatten: z.boolean(),
              since: z.string().nullable(),
            }),
            states: z.array(scopeState).describe('every scope whose state ever changed'),
            books: z.array(
              z.object({
                portfolioId: z.string(),
                strategyId: z.string(),
                symbol: z.string(),
                quantity: z.number(),
                state: z.enum(TRADING_STATES),
                heldBy: z
                  .string()
                  .nullable()
                  .describe('the scope holding the strictest state, <scopeType>:<id>'),
              }),
            ),
            portfolios: z.array(portfolioRisk),
          }),
        },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const now = Date.now();
      const { snapshot, position } = await snapshotOf(pool);
      const { rows } = await pool.query<{
        portfolio_id: string;
        strategy_id: string;
        symbol: string;
        quantity: number;
      }>(
        `SELECT portfolio_id, strategy_id, symbol, quantity FROM qcat_read.positions
          WHERE quantity <> 0 ORDER BY portfolio_id, strategy_id, symbol`,
      );
      const ks = snapshot.killSwitch;
      return {
        asOf: iso(now),
        position,
        killSwitch: {
          engaged: ks.engaged,
          flatten: ks.flatten,
          since: ks.since === null ? null : iso(ks.since),
        },
        states: Object.entries(snapshot.states)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([key, s]) => {
            const colon = key.indexOf(':');
            return {
              scopeType: key.slice(0, colon) as RiskScope['type'],
              scopeId: key.slice(colon + 1),
              state: effectiveState(s, now),
              base: s.base,
              temporary: temporaryOf(s.temporary),
            };
          }),
        books: rows.map((b) => {
          const strictest = strictestState(
            snapshot,
            scopesOf(b.portfolio_id, b.strategy_id, b.symbol),
            now,
          );
          return {
            portfolioId: b.portfolio_id,
            strategyId: b.strategy_id,
            symbol: b.symbol,
            quantity: b.quantity,
            state: strictest.state,
            heldBy: strictest.scope ? scopeKey(strictest.scope) : null,
          };
        }),
        portfolios: await portfolioRisks(pool, snapshot, now),
      };
    },
  );

  fastify.get(
    '/risk/limits',
    {
      // Not cached (readModel): with a scope, checkScope reads the strategies or trading read model.
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary:
          'Limits of every scope that has some, by scope; with scopeType and scopeId, that scope (its defaults when never set)',
        querystring: z
          .object({
            scopeType: scopeType.optional(),
            scopeId: id.optional(),
            after: scopeCursor,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ limits: z.array(limitsRow), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      if (q.scopeId !== undefined && q.scopeType === undefined)
        throw new HttpProblem(400, 'VALIDATION_FAILED', 'querystring.scopeId needs scopeType');
      const filter = new SqlFilter();
      if (q.scopeType) filter.add('scope_type = ?', q.scopeType);
      if (q.scopeId) filter.add('scope_id = ?', q.scopeId);
      addScopeCursor(filter, q.after);
      const { rows } = await pool.query<LimitsRow>(
        `SELECT * FROM qcat_read.risk_limits ${filter.where}
          ORDER BY scope_type, scope_id LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      if (q.scopeType && q.scopeId) {
        const scope = { type: q.scopeType, id: q.scopeId };
        await checkScope(scope);
        const row = rows[0];
        return {
          limits: [
            row
              ? toLimits(row)
              : {
                  scopeType: scope.type,
                  scopeId: scope.id,
                  limits: { ...DEFAULT_LIMITS[scope.type] },
                  isDefault: true,
                  version: 0,
                  requestId: null,
                  changedBy: null,
                  changedAt: null,
                  position: null,
                },
          ],
          nextCursor: null,
        };
      }
      const { page, nextCursor } = cursorPage(rows, q.limit, scopeCursorOf);
      return { limits: page.map(toLimits), nextCursor };
    },
  );

  fastify.put(
    '/risk/limits/:scopeType/:scopeId',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        "Set a scope's limits the first time, each at least as strict as its default (omitted: the defaults); later changes are change requests",
      params: scopeParams,
      body: z
        .strictObject({
          limits: z
            .record(z.string(), z.unknown())
            .optional()
            .describe('limits to set instead of the defaults (docs/risk.md); null: no limit'),
        })
        .nullish()
        .describe('optional'),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const given = request.body?.limits;
      const result = await handle(request, as(limitsDecider), limitsStream(scope), {
        type: 'SetLimits',
        scope,
        ...(given === undefined ? {} : { limits: given as JsonObject }),
        by: principalOf(request).party,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/risk/limits/:scopeType/:scopeId/change-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to change limits: a risk_limit_change approval request (a risk officer other than you approves; then the limits change)',
      params: scopeParams,
      body: z.strictObject({
        changes: z
          .record(z.string(), z.unknown())
          .describe('limit → new value (null: no limit), checked as docs/risk.md says'),
        reason,
      }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      const changes = validateLimitChanges(scope.type, request.body.changes);
      await checkScope(scope);
      return openRequest(
        request,
        reply,
        'risk-limit-change',
        'risk_limit_change',
        limitsSubject(scope),
        { changes },
        request.body.reason,
      );
    },
  );

  fastify.get(
    '/risk/states',
    {
      // Not cached (readModel): the effective state depends on the clock (temporary states end).
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary:
          'Trading states of every scope whose state ever changed (others are ACTIVE), by scope',
        querystring: z
          .object({
            scopeType: scopeType.optional(),
            scopeId: id.optional(),
            after: scopeCursor,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ states: z.array(stateRow), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      if (q.scopeType) filter.add('scope_type = ?', q.scopeType);
      if (q.scopeId) filter.add('scope_id = ?', q.scopeId);
      addScopeCursor(filter, q.after);
      const { rows } = await pool.query<StateRow>(
        `SELECT * FROM qcat_read.risk_states ${filter.where}
          ORDER BY scope_type, scope_id LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const now = Date.now();
      const { page, nextCursor } = cursorPage(rows, q.limit, scopeCursorOf);
      return {
        states: page.map((r) => ({
          scopeType: r.scope_type,
          scopeId: r.scope_id,
          state: effectiveState({ base: r.state, temporary: r.temporary }, now),
          base: r.state,
          temporary: temporaryOf(r.temporary),
          reason: r.reason,
          changedBy: r.changed_by,
          changedAt: r.changed_at.toISOString(),
          resetAt: isoOrNull(r.reset_at),
          requestId: r.request_id,
          position: r.position,
        })),
        nextCursor,
      };
    },
  );

  fastify.post(
    '/risk/states/:scopeType/:scopeId',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Make a scope stricter at once (HALTED or REDUCING); loosening it is a reset request',
      params: scopeParams,
      body: z.strictObject({ state: z.enum(['HALTED', 'REDUCING']), reason }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const result = await handle(request, as(tradingStates), tradingStateStream(scope), {
        type: 'MoveTradingState',
        scope,
        to: request.body.state,
        by: principalOf(request).party,
        reason: request.body.reason,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/risk/states/:scopeType/:scopeId/reset-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to reset a scope to ACTIVE (or REDUCING): a risk_reset approval request; the reset also re-arms its breakers',
      params: scopeParams,
      body: z.strictObject({ to: z.enum(['ACTIVE', 'REDUCING']).default('ACTIVE'), reason }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const scope = { type: request.params.scopeType, id: request.params.scopeId };
      await checkScope(scope);
      const { to } = request.body;
      const { state } = await runtime.commands.load(tradingStates, tradingStateStream(scope));
      const now = Date.now();
      if (state.base === to && effectiveState(state, now) === to)
        throw new HttpProblem(
          409,
          'NOTHING_TO_RESET',
          `${scope.type} ${scope.id} is ${to} already`,
        );
      return openRequest(
        request,
        reply,
        'risk-reset',
        'risk_reset',
        tradingStateSubject(scope),
        { to },
        request.body.reason,
      );
    },
  );

  const killSwitchAnswer = async (): Promise<z.infer<typeof killSwitchOut>> => {
    const { rows } = await pool.query<{
      engaged: boolean;
      flatten: boolean;
      since: Date | null;
      engaged_by: string | null;
      reason: string;
      released_by: string | null;
      released_at: Date | null;
      release_request_id: string | null;
      position: string;
    }>('SELECT * FROM qcat_read.risk_kill_switch WHERE id = 1');
    const r = rows[0];
    if (!r)
      return {
        engaged: false,
        flatten: false,
        since: null,
        engagedBy: null,
        reason: '',
        releasedBy: null,
        releasedAt: null,
        releaseRequestId: null,
        position: null,
      };
    return {
      engaged: r.engaged,
      flatten: r.flatten,
      since: isoOrNull(r.since),
      engagedBy: r.engaged_by,
      reason: r.reason,
      releasedBy: r.released_by,
      releasedAt: isoOrNull(r.released_at),
      releaseRequestId: r.release_request_id,
      position: r.position,
    };
  };

  fastify.get(
    '/risk/kill-switch',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary: 'The kill switch: engaged since when, by whom, why; the last release',
        querystring: z.object({ minPosition }).strict(),
        response: { 200: killSwitchOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      return killSwitchAnswer();
    },
  );

  fastify.post(
    '/risk/kill-switch',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Engage the kill switch: every order but reduce-only exits is denied; with flatten, the engine closes every position. Released only by an approved reset',
      body: z.strictObject({ reason, flatten: z.boolean().default(false) }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const result = await handle(request, as(killSwitch), KILL_SWITCH_STREAM, {
        type: 'EngageKillSwitch',
        by: principalOf(request).party,
        reason: request.body.reason,
        flatten: request.body.flatten,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/risk/kill-switch/release-requests',
    commandRoute('risk:operate', {
      tags: ['risk'],
      summary:
        'Ask to release the kill switch: a risk_reset approval request (a risk officer other than you approves)',
      body: z.strictObject({ reason }),
      response: { 201: requestAnswer },
    }),
    async (request, reply) => {
      const { state } = await runtime.commands.load(killSwitch, KILL_SWITCH_STREAM);
      if (!state.engaged)
        throw new HttpProblem(409, 'KILL_SWITCH_NOT_ENGAGED', 'the kill switch is not engaged');
      return openRequest(
        request,
        reply,
        'risk-kill-switch-release',
        'risk_reset',
        { ...KILL_SWITCH_SUBJECT },
        {},
        request.body.reason,
      );
    },
  );

  fastify.get(
    '/risk/triggers',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary: 'Circuit breaker triggers, oldest first, filtered; cursor-paginated',
        querystring: z
          .object({
            rule: z.enum(RISK_RULES).optional(),
            scopeType: scopeType.optional(),
            scopeId: id.optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ triggers: z.array(trigger), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      if (q.rule) filter.add('rule = ?', q.rule);
      if (q.scopeType) filter.add('scope_type = ?', q.scopeType);
      if (q.scopeId) filter.add('scope_id = ?', q.scopeId);
      addTimeRange(filter, 'fired_at', q);
      if (q.after) filter.add('position > ?', q.after);
      const { rows } = await pool.query<{
        trigger_id: string;
        rule: (typeof RISK_RULES)[number];
        scope_type: RiskScope['type'];
        scope_id: string;
        threshold: number;
        observed: number;
        reference: number;
        value: number;
        window_from: Date;
        window_to: Date;
        action: (typeof TRIGGER_ACTIONS)[number];
        until: Date | null;
        actor: string;
        fired_at: Date;
        position: string;
      }>(
        `SELECT * FROM qcat_read.risk_triggers ${filter.where}
          ORDER BY position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => r.position);
      return {
        triggers: page.map((r) => ({
          triggerId: r.trigger_id,
          rule: r.rule,
          scopeType: r.scope_type,
          scopeId: r.scope_id,
          threshold: r.threshold,
          observed: r.observed,
          reference: r.reference,
          value: r.value,
          window: { from: r.window_from.toISOString(), to: r.window_to.toISOString() },
          action: r.action,
          until: isoOrNull(r.until),
          actor: r.actor,
          firedAt: r.fired_at.toISOString(),
          position: r.position,
        })),
        nextCursor,
      };
    },
  );

  fastify.get(
    '/risk/denied-orders',
    {
      config: { permission: 'risk:read', readModel: PROJECTION },
      schema: {
        tags: ['risk'],
        summary:
          'Orders the pre-trade check denied, oldest first, with their code; cursor-paginated',
        querystring: z
          .object({
            code: z
              .string()
              .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'expected a code such as TRADING_HALTED')
              .optional(),
            portfolioId: id.optional(),
            strategyId: id.optional(),
            symbol: symbol.optional(),
            ...timeRange,
            after,
            limit,
            minPosition,
          })
          .strict(),
        response: {
          200: z.object({ deniedOrders: z.array(deniedOrder), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      await awaitPosition(runtime.projections, PROJECTION, q.minPosition, reply);
      const filter = new SqlFilter();
      if (q.code) filter.add('code = ?', q.code);
      if (q.portfolioId) filter.add('portfolio_id = ?', q.portfolioId);
      if (q.strategyId) filter.add('strategy_id = ?', q.strategyId);
      if (q.symbol) filter.add('symbol = ?', q.symbol);
      addTimeRange(filter, 'denied_at', q);
      if (q.after) filter.add('position > ?', q.after);
      const { rows } = await pool.query<{
        client_order_id: string;
        portfolio_id: string | null;
        strategy_id: string | null;
        symbol: string | null;
        side: 'buy' | 'sell' | null;
        quantity: number | null;
        code: string;
        reason: string;
        denied_at: Date;
        actor: string;
        position: string;
      }>(
        `SELECT * FROM qcat_read.risk_denied_orders ${filter.where}
          ORDER BY position LIMIT ${filter.param(q.limit + 1)}`,
        filter.values,
      );
      const { page, nextCursor } = cursorPage(rows, q.limit, (r) => r.position);
      return {
        deniedOrders: page.map((r) => ({
          clientOrderId: r.client_order_id,
          portfolioId: r.portfolio_id,
          strategyId: r.strategy_id,
          symbol: r.symbol,
          side: r.side,
          quantity: r.quantity,
          code: r.code,
          reason: r.reason,
          deniedAt: r.denied_at.toISOString(),
          actor: r.actor,
          position: r.position,
        })),
        nextCursor,
      };
    },
  );

  fastify.get(
    '/risk/exits/:portfolioId/:strategyId/:symbol',
    {
      // Not cached (readModel): reads the event store and the strategies read model.
      config: { permission: 'risk:read' },
      schema: {
        tags: ['risk'],
        summary: "A book's take-profit / stop-loss rules, its moved levels and its open round trip",
        params: bookParams,
        querystring: z.object({ minPosition }).strict(),
        response: { 200: exitsOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const { portfolioId, strategyId, symbol: name } = request.params;
      await checkBook(portfolioId, strategyId, name);
      const { snapshot } = await snapshotOf(pool);
      const settings = snapshot.exits[exitsKey(portfolioId, strategyId, name)];
      const trip = await openTripOf(runtime, portfolioId, strategyId, name);
      const levels = settings?.levels ?? null;
      return {
        portfolioId,
        strategyId,
        symbol: name,
        rules: settings?.rules ?? null,
        levels: levels && { ...levels, openedAt: iso(levels.openedAt) },
        openTrip: trip && { openedAt: iso(trip.openedAt), quantity: trip.quantity },
      };
    },
  );

  fastify.put(
    '/risk/exits/:portfolioId/:strategyId/:symbol',
    commandRoute('risk:exits', {
      tags: ['risk'],
      summary:
        "Set a book's take-profit / stop-loss rules (omitted or null: none); evaluated on each bar",
      params: bookParams,
      body: exitRulesSchema.partial(),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { portfolioId, strategyId, symbol: name } = request.params;
      await checkBook(portfolioId, strategyId, name);
      const b = request.body;
      const rules: ExitRules = {
        stopLoss: b.stopLoss ?? null,
        takeProfit: b.takeProfit ?? null,
        trailing: b.trailing ?? null,
        atrStop: b.atrStop ?? null,
      };
      const result = await handle(request, as(exits), exitsStream(portfolioId, strategyId, name), {
        type: 'SetExitRules',
        portfolioId,
        strategyId,
        symbol: name,
        rules,
        by: principalOf(request).party,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );

  fastify.post(
    '/risk/exits/:portfolioId/:strategyId/:symbol/levels',
    commandRoute('risk:exits', {
      tags: ['risk'],
      summary:
        'Move the stop and/or take-profit price of the open round trip (null: back to the rules)',
      params: bookParams,
      body: z.strictObject({
        openedAt: instant
          .optional()
          .describe('the round trip the levels are for; default the open one'),
        stopPrice: amount.nullable().optional(),
        takeProfitPrice: amount.nullable().optional(),
        reason,
      }),
      response: { 200: commandResultSchema },
    }),
    async (request, reply) => {
      const { portfolioId, strategyId, symbol: name } = request.params;
      const b = request.body;
      if (b.stopPrice === undefined && b.takeProfitPrice === undefined)
        throw new HttpProblem(
          400,
          'VALIDATION_FAILED',
          'body: move stopPrice, takeProfitPrice or both',
        );
      await checkBook(portfolioId, strategyId, name);
      let openedAt = instantOf('openedAt', b.openedAt)?.getTime();
      if (openedAt === undefined) {
        const trip = await openTripOf(runtime, portfolioId, strategyId, name);
        if (!trip)
          throw new HttpProblem(
            409,
            'NO_OPEN_POSITION',
            `${strategyId} has no open position in ${name}: give openedAt for another round trip`,
          );
        openedAt = trip.openedAt;
      }
      const result = await handle(request, as(exits), exitsStream(portfolioId, strategyId, name), {
        type: 'MoveExitLevels',
        portfolioId,
        strategyId,
        symbol: name,
        openedAt,
        ...(b.stopPrice === undefined ? {} : { stopPrice: b.stopPrice }),
        ...(b.takeProfitPrice === undefined ? {} : { takeProfitPrice: b.takeProfitPrice }),
        by: principalOf(request).party,
        reason: b.reason,
        time: Date.now(),
      });
      return commandAnswer(reply, result);
    },
  );
};
