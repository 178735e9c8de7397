import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';

/**
 * The strategy kinds QCAT knows: a name, what it does, and the zod schema of its parameters with
 * bounds and defaults. The trading engine implements each kind; the lifecycle only needs the
 * schema to refuse a parameter set that no engine could run.
 */
export interface StrategyKind {
  name: string;
  title: string;
  description: string;
  parameters: z.ZodObject;
}

const period = (label: string, min: number, max: number, fallback: number) =>
  z.number().int().min(min).max(max).default(fallback).describe(label);

const smaCrossover = z
  .strictObject({
    fastPeriod: period('bars in the fast moving average', 2, 500, 20),
    slowPeriod: period('bars in the slow moving average', 3, 2000, 50),
    positionFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('share of the allocated capital held while the signal is long'),
  })
  .refine((p) => p.fastPeriod < p.slowPeriod, {
    message: 'fastPeriod must be smaller than slowPeriod',
    path: ['fastPeriod'],
  });

const rsiMeanReversion = z
  .strictObject({
    period: period('bars in the RSI', 2, 200, 14),
    oversold: z.number().min(1).max(49).default(30).describe('RSI at or below which to buy'),
    overbought: z.number().min(51).max(99).default(70).describe('RSI at or above which to exit'),
    positionFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('share of the allocated capital held while long'),
  })
  .refine((p) => p.oversold < p.overbought, {
    message: 'oversold must be below overbought',
    path: ['oversold'],
  });

const donchianBreakout = z
  .strictObject({
    entryPeriod: period('bars whose highest high an entry must break', 2, 500, 20),
    exitPeriod: period('bars whose lowest low an exit breaks', 2, 500, 10),
    positionFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('share of the allocated capital held while long'),
  })
  .refine((p) => p.exitPeriod <= p.entryPeriod, {
    message: 'exitPeriod must not exceed entryPeriod',
    path: ['exitPeriod'],
  });

export const STRATEGY_KINDS = [
  {
    name: 'sma_crossover',
    title: 'SMA crossover',
    description:
      'Long while the fast simple moving average of closes is above the slow one, flat otherwise.',
    parameters: smaCrossover,
  },
  {
    name: 'rsi_mean_reversion',
    title: 'RSI mean reversion',
    description:
      'Buys when the relative strength index falls to the oversold level, exits when it reaches the overbought level.',
    parameters: rsiMeanReversion,
  },
  {
    name: 'donchian_breakout',
    title: 'Donchian breakout',
    description:
      'Buys when the close breaks the highest high of the entry window, exits when it breaks the lowest low of the exit window.',
    parameters: donchianBreakout,
  },
] as const satisfies readonly StrategyKind[];

export type StrategyKindName = (typeof STRATEGY_KINDS)[number]['name'];
export const STRATEGY_KIND_NAMES = STRATEGY_KINDS.map((kind) => kind.name) as [
  StrategyKindName,
  ...StrategyKindName[],
];

export const strategyKind = (name: string): StrategyKind | undefined =>
  STRATEGY_KINDS.find((kind) => kind.name === name);

/** Timeframes a strategy may run on (candle lengths). */
export const TIMEFRAMES = ['1m', '5m', '15m', '1h', '4h', '1d'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

/**
 * The parameters checked against the kind's schema, defaults filled in. Throws a
 * ValidationError that names every failing field.
 */
export function validateParameters(kindName: string, parameters: unknown): JsonObject {
  const kind = strategyKind(kindName);
  if (!kind) {
    throw new ValidationError(
      'UNKNOWN_STRATEGY_KIND',
      `unknown strategy kind '${kindName}'; known: ${STRATEGY_KIND_NAMES.join(', ')}`,
    );
  }
  const parsed = kind.parameters.safeParse(parameters);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({
      path: ['parameters', ...issue.path.map(String)].join('.'),
      message: issue.message,
    }));
    throw new ValidationError(
      'INVALID_PARAMETERS',
      `parameters do not fit ${kind.name}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      { errors: issues },
    );
  }
  return parsed.data as JsonObject;
}
