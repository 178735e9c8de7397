import { z } from 'zod';
import type { JsonObject } from '../eventstore/event-store.js';
import { strategyKind } from '../strategies/kinds.js';
import { DEFAULT_MIN_TRADES } from './objectives.js';
import type { OptimizationRequestInput, OptimizationTrigger } from './request.js';
import type { ParameterRange, ParameterSpace } from './space.js';

/**
 * What an automatic optimization (capabilities 1 and 6) asks for: a Bayesian search of the live
 * parameters' neighbourhood over the recent candles, scored by Sharpe out-of-sample. Nobody picks
 * a space for it, so the space is each numeric parameter within ± `searchWidth` of its live
 * value, kept inside the kind's own bounds; other parameters stay as they are.
 */

const DAY = 86_400_000;

export interface AutomaticSearch {
  trials: number;
  dataDays: number;
  searchWidth: number;
}

/** The number schema under a kind's parameter (defaults and descriptions unwrapped). */
function numberSchema(kindName: string, name: string): z.ZodNumber | undefined {
  const kind = strategyKind(kindName);
  let schema: unknown = kind?.parameters.shape[name];
  while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional)
    schema = schema.unwrap();
  return schema instanceof z.ZodNumber ? schema : undefined;
}

/** The neighbourhood of `live` searched; a parameter whose range would be a point is left out. */
export function neighbourhood(kind: string, live: JsonObject, width: number): ParameterSpace {
  const space: ParameterSpace = {};
  for (const name of Object.keys(live).sort()) {
    const value = live[name];
    const schema = numberSchema(kind, name);
    if (typeof value !== 'number' || !schema) continue;
    const min = schema.minValue ?? -Infinity;
    const max = schema.maxValue ?? Infinity;
    const spread = Math.abs(value) * width;
    let range: Extract<ParameterRange, { low: number }>;
    if (schema.format === 'safeint' || schema.format === 'int32') {
      const low = Math.max(Math.ceil(min), Math.floor(value - spread));
      const high = Math.min(Math.floor(max), Math.ceil(value + spread));
      range = { type: 'int', low, high };
    } else {
      // A real bound may be exclusive (`gt(0)`): stay a hair inside it.
      const low = Math.max(min + 1e-9, value - spread);
      const high = Math.min(max, value + spread);
      range = { type: 'real', low: round(low), high: round(high) };
    }
    if (range.low < range.high) space[name] = range;
  }
  return space;
}

const round = (value: number): number => Math.round(value * 1e6) / 1e6;

/** A 31-bit seed from the run's id: the same cause always searches the same way. */
export function seedOf(id: string): number {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619);
  return (hash >>> 0) % 2 ** 31;
}

/** The strategy as an automatic request needs it. */
export interface LiveStrategy {
  strategyId: string;
  kind: string;
  symbols: readonly string[];
  timeframe: string;
  parameters: JsonObject;
  parameterVersion: number;
}

/**
 * The request of an automatic optimization of `strategy` at `now`: the `dataDays` UTC days up to
 * the start of today, its first symbol, the trigger with the figures that fired it.
 */
export function automaticRequest(
  strategy: LiveStrategy,
  search: AutomaticSearch,
  trigger: OptimizationTrigger,
  now: Date,
  candlesInWindow: number,
): Omit<OptimizationRequestInput, 'seed'> {
  const to = Math.floor(now.getTime() / DAY) * DAY;
  return {
    strategyId: strategy.strategyId,
    strategyParameterVersion: strategy.parameterVersion,
    kind: strategy.kind,
    baseParameters: strategy.parameters,
    symbol: strategy.symbols[0] ?? '',
    timeframe: strategy.timeframe,
    from: new Date(to - search.dataDays * DAY).toISOString(),
    to: new Date(to).toISOString(),
    space: neighbourhood(strategy.kind, strategy.parameters, search.searchWidth),
    method: 'bayesian',
    objective: { name: 'sharpe', minTrades: DEFAULT_MIN_TRADES },
    budget: { trials: search.trials },
    trigger,
    candlesInWindow,
  };
}
