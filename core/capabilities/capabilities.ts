import { z } from 'zod';

/**
 * The ten automation capabilities of the user's system (docs/automation.md), in its order. Each
 * has a switch and thresholds in the one automation policy; `requires` names the capabilities
 * that must be on for it to be switched on.
 */
const fraction = z.number().gt(0).lte(1);
const days = z.number().int().min(1).max(3650);
const cron = z
  .string()
  .min(9)
  .max(100)
  .regex(/^[\d*/,\- ]+$/, 'a five-field cron expression (UTC)');

/** How an automatic optimization searches (capabilities 1 and 6): the budget and the data. */
const automaticSearch = {
  /** Trials of the Bayesian search around the live parameters. */
  trials: z.number().int().min(8).max(1000).default(64),
  /** Days of candles before the trigger that the search and its walk-forward use. */
  dataDays: z.number().int().min(60).max(730).default(180),
  /** Each numeric parameter is searched within ± this share of its live value (kind bounds kept). */
  searchWidth: fraction.default(0.5),
};

const underperformance = z.strictObject({
  sharpeBelow: z.number().min(-10).max(10).default(0.5),
  drawdownAbove: fraction.default(0.1),
  windowDays: days.default(30),
  cooldownDays: days.default(7),
  ...automaticSearch,
});

export const CAPABILITIES = {
  optimize_on_underperformance: {
    number: 1,
    title: 'optimize when profit falls short',
    enabledByDefault: false,
    requires: [],
    thresholds: underperformance,
  },
  adopt_parameters: {
    number: 2,
    title: 'adopt the best parameters',
    enabledByDefault: false,
    requires: [],
    // The adoption gate: the one source of its thresholds (core/optimization/gate.ts reads them).
    thresholds: z.strictObject({
      minOutOfSampleSharpe: z.number().min(-10).max(10).default(0.5),
      minDeflatedSharpe: z.number().min(0).max(1).default(0.95),
      maxOverfitProbability: z.number().min(0).max(1).default(0.5),
      minTrades: z.number().int().min(0).max(100_000).default(30),
    }),
  },
  rebalance: {
    number: 3,
    title: 'optimize positions (rebalance allocations)',
    enabledByDefault: false,
    requires: [],
    thresholds: z.strictObject({
      driftBand: fraction.default(0.05),
      equityMove: fraction.default(0.1),
      schedule: cron.default('0 0 * * 1'),
    }),
  },
  balance_sizing: {
    number: 4,
    title: 'open, reduce and close positions driven by the balance',
    enabledByDefault: false,
    requires: [],
    thresholds: z.strictObject({ maxStepShareOfEquity: fraction.default(0.25) }),
  },
  auto_exits: {
    number: 5,
    title: 'automatic take-profit and stop-loss',
    enabledByDefault: true,
    requires: [],
    thresholds: z.strictObject({}),
  },
  periodic_optimization: {
    number: 6,
    title: 'periodic optimization',
    enabledByDefault: false,
    requires: [],
    thresholds: z.strictObject({
      schedule: cron.default('0 3 * * *'),
      cooldownDays: days.default(1),
      ...automaticSearch,
    }),
  },
  elimination: {
    number: 7,
    title: 'strategy elimination',
    enabledByDefault: false,
    requires: [],
    thresholds: z.strictObject({
      sharpeBelow: z.number().min(-10).max(10).default(0.5),
      drawdownAbove: fraction.default(0.1),
      losingWeeksInARow: z.number().int().min(1).max(52).default(4),
      windowDays: days.default(30),
      coolingDays: days.default(7),
    }),
  },
  new_strategies: {
    number: 8,
    title: 'add and enable new strategies',
    enabledByDefault: false,
    requires: ['hot_symbols', 'adopt_parameters'],
    thresholds: z.strictObject({
      perWeek: z.number().int().min(1).max(100).default(1),
      total: z.number().int().min(1).max(1000).default(5),
    }),
  },
  dynamic_exits: {
    number: 9,
    title: 'adjust take-profit and stop-loss levels',
    enabledByDefault: true,
    requires: ['auto_exits'],
    thresholds: z.strictObject({}),
  },
  hot_symbols: {
    number: 10,
    title: 'hot-symbol recommendation',
    enabledByDefault: false,
    requires: [],
    thresholds: z
      .strictObject({
        volumeJump: fraction.default(0.25),
        turnover: fraction.default(0.2),
        openInterest: fraction.default(0.2),
        funding: fraction.default(0.15),
        regime: fraction.default(0.2),
        topN: z.number().int().min(1).max(100).default(5),
        minScore: z.number().min(0).max(6).default(1),
        expiryDays: days.default(7),
      })
      .refine(
        (t) =>
          Math.abs(t.volumeJump + t.turnover + t.openInterest + t.funding + t.regime - 1) < 1e-9,
        { message: 'the five dimension weights must sum to 1', path: ['volumeJump'] },
      ),
  },
} as const;

export type Capability = keyof typeof CAPABILITIES;
export const CAPABILITY_NAMES = Object.keys(CAPABILITIES) as Capability[];
export const isCapability = (value: string): value is Capability =>
  Object.hasOwn(CAPABILITIES, value);

export type Thresholds = Record<string, number | string>;

/** A capability's thresholds as its schema reads them: defaults filled, or a zod error. */
export const parseThresholds = (capability: Capability, value: unknown): Thresholds =>
  CAPABILITIES[capability].thresholds.parse(value);
