import type { Party } from '../approvals/approval.js';
import { checkRequest } from '../backtests/backtest-run.js';
import { ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import type { Timeframe } from '../strategies/kinds.js';
import type { PaperVenueCosts } from '../trading/venue.js';
import {
  checkObjective,
  DEFAULT_MIN_TRADES,
  type Objective,
  type ObjectiveName,
} from './objectives.js';
import { METHODS, type Method } from './samplers.js';
import { checkSpace, gridSize, type ParameterSpace } from './space.js';
import { windowDays } from './trial.js';
import { DEFAULT_WALK_FORWARD, planFolds, type WalkForwardPlan } from './walk-forward.js';

/**
 * What an optimization request must say, checked and completed with defaults: the decider refuses
 * anything else before a single event is written (every refusal names the field).
 */

export const MAX_TRIALS = 10_000;
export const DEFAULT_WALL_SECONDS = 3600;
export const MAX_WALL_SECONDS = 86_400;
export const DEFAULT_BATCH_SIZE = 16;
export const MAX_BATCH_SIZE = 256;
export const DEFAULT_SEED = 1;

/** Why an optimization was asked for, with the figures that fired an automatic one. */
export type OptimizationTrigger =
  | { type: 'manual' }
  | { type: 'schedule'; schedule: string }
  /** A template tried on a hot symbol by automation capability 8 (automation/new-strategies). */
  | { type: 'new_strategy'; template: string; symbol: string }
  | {
      type: 'underperformance';
      /** The figures over the look-back that crossed a threshold, and the thresholds. */
      figures: Record<string, number>;
      thresholds: Record<string, number>;
    };

export interface Budget extends JsonObject {
  trials: number;
  wallSeconds: number;
}

export interface OptimizationSpec extends JsonObject {
  strategyId: string | null;
  strategyParameterVersion: number | null;
  kind: string;
  /** The parameters every trial starts from (the strategy's current ones); the point overrides. */
  baseParameters: JsonObject;
  symbol: string;
  timeframe: Timeframe;
  from: string;
  to: string;
  initialCash: number;
  costs: PaperVenueCosts;
  space: ParameterSpace;
  method: Method;
  objective: Objective & JsonObject;
  walkForward: WalkForwardPlan & JsonObject;
  budget: Budget;
  seed: number;
  batchSize: number;
  trigger: OptimizationTrigger & JsonObject;
}

export type OptimizationRequestInput = {
  strategyId?: string | null;
  strategyParameterVersion?: number | null;
  kind: string;
  baseParameters?: JsonObject;
  symbol: string;
  timeframe: string;
  from: string;
  to: string;
  initialCash?: number;
  costs?: Partial<PaperVenueCosts>;
  space: ParameterSpace;
  method: string;
  objective: { name: ObjectiveName; minTrades?: number };
  walkForward?: Partial<WalkForwardPlan>;
  budget: { trials: number; wallSeconds?: number };
  seed?: number;
  batchSize?: number;
  trigger?: OptimizationTrigger;
  /** Candles stored for the symbol, timeframe and window (the caller counts them). */
  candlesInWindow: number;
};

const fail = (code: string, path: string, message: string): never => {
  throw new ValidationError(code, `${path} ${message}`, { errors: [{ path, message }] });
};

const integerIn = (path: string, value: number, low: number, high: number): number => {
  if (!Number.isInteger(value) || value < low || value > high)
    fail('INVALID_BUDGET', path, `must be an integer from ${low} to ${high}`);
  return value;
};

export function checkOptimizationRequest(
  optimizationId: string,
  requestedBy: Party,
  input: OptimizationRequestInput,
): OptimizationSpec {
  const base = checkRequest({
    type: 'RequestBacktest',
    backtestId: optimizationId,
    requestedBy,
    kind: input.kind,
    parameters: input.baseParameters ?? {},
    symbol: input.symbol,
    timeframe: input.timeframe,
    from: input.from,
    to: input.to,
    ...(input.initialCash === undefined ? {} : { initialCash: input.initialCash }),
    ...(input.costs === undefined ? {} : { costs: input.costs }),
  });
  if (!(METHODS as readonly string[]).includes(input.method))
    fail('INVALID_METHOD', 'method', `'${input.method}' is not one of ${METHODS.join(', ')}`);
  const method = input.method as Method;
  checkSpace(base.kind, input.space);
  const objective = {
    name: input.objective.name,
    minTrades: input.objective.minTrades ?? DEFAULT_MIN_TRADES,
  };
  checkObjective(objective);
  const walkForward = { ...DEFAULT_WALK_FORWARD, ...input.walkForward };
  planFolds(walkForward, windowDays(Date.parse(base.from), Date.parse(base.to)));
  const budget = {
    trials: integerIn('budget.trials', input.budget.trials, 1, MAX_TRIALS),
    wallSeconds: integerIn(
      'budget.wallSeconds',
      input.budget.wallSeconds ?? DEFAULT_WALL_SECONDS,
      1,
      MAX_WALL_SECONDS,
    ),
  };
  if (method === 'grid') {
    const size = gridSize(input.space);
    if (size > budget.trials)
      fail(
        'GRID_LARGER_THAN_BUDGET',
        'budget.trials',
        `(${budget.trials}) is smaller than the grid (${Number.isFinite(size) ? size : 'over 100000'} points); raise it or coarsen the steps`,
      );
  }
  const seed = integerIn('seed', input.seed ?? DEFAULT_SEED, 0, 2 ** 31 - 1);
  const batchSize = integerIn(
    'batchSize',
    input.batchSize ?? DEFAULT_BATCH_SIZE,
    1,
    MAX_BATCH_SIZE,
  );
  if (input.candlesInWindow <= 0)
    fail(
      'NO_MARKET_DATA',
      'from',
      `no ${base.timeframe} candles of ${base.symbol} are stored between ${base.from} and ${base.to}`,
    );
  const { parameters, ...rest } = base;
  return {
    ...rest,
    strategyId: input.strategyId ?? null,
    strategyParameterVersion: input.strategyParameterVersion ?? null,
    baseParameters: parameters,
    space: input.space,
    method,
    objective,
    walkForward,
    budget,
    seed,
    batchSize,
    trigger: input.trigger ?? { type: 'manual' },
  };
}
