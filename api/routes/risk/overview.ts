import { z } from 'zod';
import { scopesOf, strictestState, type RiskSnapshot } from '../../../core/risk/checks.js';
import { scopeKey, TRADING_STATES, type RiskScope } from '../../../core/risk/common.js';
import { effectiveState } from '../../../core/risk/trading-state.js';
import type { PortfolioMeasuresRow } from '../../../projections/risk-queries.js';
import type { PortfolioRow } from '../../../projections/trading-queries.js';
import { awaitPosition, isoOrNull } from '../conventions.js';
import { portfolioExposure } from '../../../core/risk/exposure.js';
import type { RiskContext, ZodFastify } from './context.js';
import { PROJECTION, minPosition, scopeState, portfolioRisk, iso, temporaryOf } from './schemas.js';

const overviewOut = z.object({
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
});

type Overview = z.infer<typeof overviewOut>;

/** GET /risk/overview: the kill switch, states, books and per-portfolio exposure. */
export function overviewRoutes(fastify: ZodFastify, ctx: RiskContext): void {
  const { runtime, queries } = ctx;
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
        response: { 200: overviewOut },
      },
    },
    async (request, reply) => {
      await awaitPosition(runtime.projections, PROJECTION, request.query.minPosition, reply);
      const now = Date.now();
      // One query at a time: this answer holds one pooled connection, as it always did.
      const { snapshot, position } = await queries.risk.snapshot();
      const rows = await queries.trading.openBooks();
      const portfolios = await queries.trading.portfolios();
      const marks = await queries.trading.openBookMarks();
      const measures = await queries.risk.portfolioMeasures();
      const ks = snapshot.killSwitch;
      return {
        asOf: iso(now),
        position,
        killSwitch: {
          engaged: ks.engaged,
          flatten: ks.flatten,
          since: ks.since === null ? null : iso(ks.since),
        },
        states: statesOf(snapshot, now),
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
        portfolios: portfolios.map((p) => portfolioRiskOf(p, measures, marks, snapshot, now)),
      };
    },
  );
}

/** Every scope whose state ever changed, by key, with the state in force now. */
function statesOf(snapshot: RiskSnapshot, now: number): Overview['states'] {
  return Object.entries(snapshot.states)
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
    });
}

/** A portfolio's equity and its exposure against its limits, from its open books' marks. */
function portfolioRiskOf(
  p: PortfolioRow,
  measures: readonly PortfolioMeasuresRow[],
  marks: readonly { portfolio_id: string; symbol: string; quantity: number; mark: number }[],
  snapshot: RiskSnapshot,
  now: number,
): Overview['portfolios'][number] {
  const m = measures.find((row) => row.portfolio_id === p.portfolio_id);
  return {
    portfolioId: p.portfolio_id,
    currency: p.currency,
    equity: p.equity,
    cash: p.cash,
    valuedAt: isoOrNull(p.valued_at),
    ...portfolioExposure(
      p.portfolio_id,
      {
        equity: p.equity,
        openingEquity: m?.opening_equity ?? null,
        highWaterMark: m ? m.high_water_mark : p.high_water_mark,
      },
      marks.filter((row) => row.portfolio_id === p.portfolio_id),
      snapshot,
      now,
    ),
  };
}
