import { z } from 'zod';
import { ROLES } from '../access/roles.js';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { instantMs } from '../domain-bounds.js';
import { QcatError, ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import type { Candle, Instrument } from '../market/types.js';
import { TIMEFRAMES, validateParameters, type Timeframe } from '../strategies/kinds.js';
import type { ClosedTrade } from '../trading/accounting.js';
import { backtest, type DailyEquity } from '../trading/backtest.js';
import { reason } from '../trading/orders.js';
import type { Statistics } from '../trading/statistics.js';
import type { StepperConfig } from '../trading/stepper.js';
import { DEFAULT_VENUE_COSTS, type PaperVenueCosts } from '../trading/venue.js';

/**
 * A backtest run as an aggregate: requested (what to run, fully specified), then completed (the
 * summary) or failed (why). The runner (projections/backtests.ts) does the work between the two;
 * the trades and the daily equity curve go to result tables, not into events.
 */

export const BACKTEST_STATUSES = ['requested', 'completed', 'failed'] as const;
export type BacktestStatus = (typeof BACKTEST_STATUSES)[number];

/** Stream of one run: `backtest-<backtestId>`. */
export const backtestStream = (backtestId: string): string => `backtest-${backtestId}`;

const DAY_MS = 86_400_000;
/** The longest range one run may cover: two years (a leap day included). */
export const MAX_RANGE_DAYS = 731;
export const DEFAULT_INITIAL_CASH = 100_000;
export const MAX_INITIAL_CASH = 1e12;
/** Fees and slippage above this many basis points (10 %) are a typo, not a cost model. */
export const MAX_COST_BPS = 1000;

/** What one run trades: everything needed to repeat it, defaults filled in. */
export interface BacktestSpec extends JsonObject {
  /** The strategy the request was copied from, and its parameter version then; null otherwise. */
  strategyId: string | null;
  strategyParameterVersion: number | null;
  kind: string;
  parameters: JsonObject;
  symbol: string;
  timeframe: Timeframe;
  /** ISO instants: candles with from ≤ openTime < to. */
  from: string;
  to: string;
  initialCash: number;
  costs: PaperVenueCosts;
}

/** What a completed run reports (the statistics of core/trading/statistics.ts and a few counts). */
export interface BacktestSummary extends JsonObject {
  statistics: Statistics;
  /** Closed round trips (the rows of the trades table). */
  trades: number;
  finalEquity: number;
  /** Candles processed. */
  bars: number;
  /** Open time of the first and last candle processed (ISO). */
  firstBar: string | null;
  lastBar: string | null;
  /** Entries of the daily equity curve. */
  equityDays: number;
  /** Wall-clock time of the run; the only figure that differs between two runs of a request. */
  durationMs: number;
}

export type BacktestEvent =
  | DomainEvent<'BacktestRequested', BacktestSpec & { backtestId: string; requestedBy: Party }>
  | DomainEvent<'BacktestCompleted', BacktestSummary & { backtestId: string }>
  | DomainEvent<'BacktestFailed', { backtestId: string; reason: string }>;

export type BacktestCommand =
  | {
      type: 'RequestBacktest';
      backtestId: string;
      requestedBy: Party;
      strategyId?: string | null;
      strategyParameterVersion?: number | null;
      kind: string;
      parameters?: JsonObject;
      symbol: string;
      timeframe: string;
      from: string;
      to: string;
      initialCash?: number;
      /** Overrides of the paper venue's default costs. */
      costs?: { [K in keyof PaperVenueCosts]?: PaperVenueCosts[K] };
    }
  | { type: 'CompleteBacktest'; backtestId: string; summary: BacktestSummary }
  | { type: 'FailBacktest'; backtestId: string; reason: string };

export interface BacktestRun extends BacktestSpec {
  backtestId: string;
  status: BacktestStatus;
  requestedBy: Party;
  summary: BacktestSummary | null;
  failureReason: string | null;
}

export type BacktestState = { status: 'none' } | BacktestRun;

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const nullableNumber = z.number().nullable();
const costsSchema = z.object({
  slippageBps: z.number(),
  makerFeeBps: z.number(),
  takerFeeBps: z.number(),
  maxVolumeShare: nullableNumber,
});
const statisticsSchema = z.object({
  days: z.number(),
  initialEquity: z.number(),
  finalEquity: z.number(),
  totalReturn: z.number(),
  cagr: nullableNumber,
  sharpe: nullableNumber,
  sortino: nullableNumber,
  maxDrawdown: z.number(),
  calmar: nullableNumber,
  trades: z.number(),
  winRate: nullableNumber,
  profitFactor: nullableNumber,
  expectancy: nullableNumber,
  exposure: nullableNumber,
});
const backtestEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('BacktestRequested'),
    data: z.object({
      backtestId: z.string(),
      strategyId: z.string().nullable(),
      strategyParameterVersion: nullableNumber,
      kind: z.string(),
      parameters: z.record(z.string(), z.json()),
      symbol: z.string(),
      timeframe: z.enum(TIMEFRAMES),
      from: z.string(),
      to: z.string(),
      initialCash: z.number(),
      costs: costsSchema,
      requestedBy: party,
    }),
  }),
  z.object({
    type: z.literal('BacktestCompleted'),
    data: z.object({
      backtestId: z.string(),
      statistics: statisticsSchema,
      trades: z.number(),
      finalEquity: z.number(),
      bars: z.number(),
      firstBar: z.string().nullable(),
      lastBar: z.string().nullable(),
      equityDays: z.number(),
      durationMs: z.number(),
    }),
  }),
  z.object({
    type: z.literal('BacktestFailed'),
    data: z.object({ backtestId: z.string(), reason: z.string() }),
  }),
]);

/** One refused field, named as the API names it. */
const invalid = (code: string, path: string, message: string): never => {
  throw new ValidationError(code, `${path} ${message}`, { errors: [{ path, message }] });
};

/** Checks a request and fills in its defaults; throws a ValidationError naming the field. */
export function checkRequest(
  command: Extract<BacktestCommand, { type: 'RequestBacktest' }>,
): BacktestSpec {
  if (!/^[A-Z0-9]{2,20}$/.test(command.symbol))
    invalid('INVALID_SYMBOL', 'symbol', `'${command.symbol}' is not a symbol such as BTCUSDT`);
  if (!(TIMEFRAMES as readonly string[]).includes(command.timeframe))
    invalid(
      'INVALID_TIMEFRAME',
      'timeframe',
      `'${command.timeframe}' is not one of ${TIMEFRAMES.join(', ')}`,
    );
  const parameters = validateParameters(command.kind, command.parameters ?? {});
  // In the domain's range (ADR 011): year 0 was accepted once and stopped the read model.
  const from = instantMs('from', command.from, 'INVALID_RANGE');
  const to = instantMs('to', command.to, 'INVALID_RANGE');
  if (from >= to) invalid('INVALID_RANGE', 'to', 'must be after from');
  if (to - from > MAX_RANGE_DAYS * DAY_MS)
    invalid('RANGE_TOO_LONG', 'to', `must be at most ${MAX_RANGE_DAYS.toString()} days after from`);
  const initialCash = command.initialCash ?? DEFAULT_INITIAL_CASH;
  if (!(initialCash > 0 && initialCash <= MAX_INITIAL_CASH))
    invalid('INVALID_INITIAL_CASH', 'initialCash', `must be > 0 and ≤ ${MAX_INITIAL_CASH}`);
  const costs: PaperVenueCosts = { ...DEFAULT_VENUE_COSTS, ...command.costs };
  for (const key of ['slippageBps', 'makerFeeBps', 'takerFeeBps'] as const) {
    const value = costs[key];
    if (!(value >= 0 && value <= MAX_COST_BPS))
      invalid('INVALID_COSTS', `costs.${key}`, `must be between 0 and ${MAX_COST_BPS} bps`);
  }
  const share = costs.maxVolumeShare;
  if (share !== null && !(share > 0 && share <= 1))
    invalid('INVALID_COSTS', 'costs.maxVolumeShare', 'must be > 0 and ≤ 1, or null for no cap');
  return {
    strategyId: command.strategyId ?? null,
    strategyParameterVersion: command.strategyParameterVersion ?? null,
    kind: command.kind,
    parameters,
    symbol: command.symbol,
    timeframe: command.timeframe as Timeframe,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    initialCash,
    costs,
  };
}

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};

function existing(state: BacktestState, backtestId: string): BacktestRun {
  if (state.status === 'none')
    refuse('BACKTEST_NOT_FOUND', `backtest ${backtestId} does not exist`);
  return state as BacktestRun;
}

/** The run, if it still waits for its outcome; [] for the same outcome again; else a refusal. */
function pending(
  state: BacktestState,
  backtestId: string,
  outcome: 'completed' | 'failed',
): BacktestRun | null {
  const run = existing(state, backtestId);
  if (run.status === outcome) return null;
  if (run.status !== 'requested')
    refuse(
      'BACKTEST_NOT_PENDING',
      `backtest ${backtestId} is ${run.status} already; it cannot be ${outcome}`,
      { currentState: run.status },
    );
  return run;
}

export const backtests: Decider<BacktestState, BacktestCommand, BacktestEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'BacktestRequested':
        return { ...event.data, status: 'requested', summary: null, failureReason: null };
      case 'BacktestCompleted': {
        if (state.status === 'none') return state;
        const { backtestId: _id, ...summary } = event.data;
        return { ...state, status: 'completed', summary };
      }
      case 'BacktestFailed':
        if (state.status === 'none') return state;
        return { ...state, status: 'failed', failureReason: event.data.reason };
    }
  },

  decide: (command, state) => {
    const { backtestId } = command;
    switch (command.type) {
      case 'RequestBacktest':
        if (state.status !== 'none')
          refuse('BACKTEST_EXISTS', `backtest ${backtestId} was requested already`);
        return [
          {
            type: 'BacktestRequested',
            data: { backtestId, ...checkRequest(command), requestedBy: command.requestedBy },
          },
        ];
      case 'CompleteBacktest':
        if (!pending(state, backtestId, 'completed')) return [];
        return [{ type: 'BacktestCompleted', data: { backtestId, ...command.summary } }];
      case 'FailBacktest':
        if (!pending(state, backtestId, 'failed')) return [];
        return [{ type: 'BacktestFailed', data: { backtestId, reason: command.reason } }];
    }
  },

  parseEvent: (event) => backtestEvent.parse(event),
};

/** The step function's configuration for a run: one book trading all of the equity. */
export function backtestConfig(
  backtestId: string,
  spec: BacktestSpec,
  instrument: Instrument,
): StepperConfig {
  if (instrument.symbol !== spec.symbol)
    throw new Error(`instrument ${instrument.symbol} given for a run on ${spec.symbol}`);
  return {
    portfolioId: `backtest-${backtestId}`,
    currency: instrument.quote,
    initialCash: spec.initialCash,
    timeframe: spec.timeframe,
    instruments: [instrument],
    books: [
      {
        strategyId: spec.strategyId ?? backtestId,
        symbol: spec.symbol,
        kind: spec.kind,
        parameters: spec.parameters,
        allocation: 1,
      },
    ],
    venue: spec.costs,
  };
}

/** Why a run found nothing to trade. */
export const noMarketData = (spec: BacktestSpec): string =>
  reason('NO_MARKET_DATA', {
    symbol: spec.symbol,
    timeframe: spec.timeframe,
    from: spec.from,
    to: spec.to,
  });

/** A refusal met while running (an unknown instrument, a configuration the engine refuses). */
export const failureOf = (error: QcatError): string =>
  reason(error.code, { detail: error.message.replaceAll(',', ';') });

/** What a run produced: the summary for the event, the rows for the result tables. */
export interface BacktestOutput {
  summary: BacktestSummary;
  trades: ClosedTrade[];
  equity: DailyEquity[];
}

/**
 * Runs the request over the candles (ascending open time, the request's symbol and timeframe).
 * Pure: the same request and candles give the same output; `durationMs` is left 0 for the caller
 * (the runner) to fill in with the time the run took.
 */
export function runBacktest(
  backtestId: string,
  spec: BacktestSpec,
  instrument: Instrument,
  candles: readonly Candle[],
): BacktestOutput {
  const result = backtest(backtestConfig(backtestId, spec, instrument), candles, {
    from: Date.parse(spec.from),
    to: Date.parse(spec.to),
    keepEvents: false,
  });
  const iso = (ms: number | null): string | null =>
    ms === null ? null : new Date(ms).toISOString();
  return {
    summary: {
      statistics: result.statistics,
      trades: result.trades.length,
      finalEquity: result.statistics.finalEquity,
      bars: result.bars,
      firstBar: iso(result.firstBar),
      lastBar: iso(result.lastBar),
      equityDays: result.equity.length,
      durationMs: 0,
    },
    trades: result.trades,
    equity: result.equity,
  };
}
