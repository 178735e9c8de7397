import { z } from 'zod';
import { DEFAULT_CONSTRAINTS } from './constraints.js';
import { ALLOCATION_METHODS, KELLY_CAP } from './methods.js';

/**
 * A portfolio's allocation policy, set by risk officers and admins: the method and its settings,
 * the constraints, when to rebalance (capability 3) and whether the engine sizes positions from
 * the allocation (capability 4). Every field has a default; docs/portfolio.md explains each.
 */

const fraction = (what: string) =>
  z.number().min(0, `${what} must be ≥ 0`).max(1, `${what} must be ≤ 1`);
const DAY_MS = 86_400_000;

export const constraintsSchema = z.object({
  maxWeight: fraction('maxWeight')
    .positive('maxWeight must be > 0')
    .default(DEFAULT_CONSTRAINTS.maxWeight),
  minWeight: fraction('minWeight').default(DEFAULT_CONSTRAINTS.minWeight),
  cashBuffer: fraction('cashBuffer')
    .max(0.99, 'cashBuffer must leave something to invest')
    .default(DEFAULT_CONSTRAINTS.cashBuffer),
  maxLeverage: z
    .number()
    .positive('maxLeverage must be > 0')
    .max(10, 'maxLeverage must be ≤ 10 (the design maximum)')
    .default(DEFAULT_CONSTRAINTS.maxLeverage),
});

export const rebalanceSchema = z.object({
  /** Propose on a schedule, every this many ms (≥ 1 hour); null: no schedule. */
  everyMs: z
    .number()
    .int()
    .min(3_600_000, 'everyMs must be at least one hour')
    .max(365 * DAY_MS)
    .nullable()
    .default(7 * DAY_MS),
  /** Propose when a weight drifts more than this from its target (0.05 = 5 pp); null: off. */
  driftBand: fraction('driftBand').positive('driftBand must be > 0').nullable().default(0.05),
  /** Propose when equity moves more than this fraction since the last allocation; null: off. */
  equityMove: fraction('equityMove').positive('equityMove must be > 0').nullable().default(0.1),
  /** Propose when a strategy joins or leaves. */
  onMembershipChange: z.boolean().default(true),
  /** A proposal moving any weight by more than this needs a second person (four eyes). */
  approvalThreshold: fraction('approvalThreshold').default(0.05),
});

export const sizingSchema = z.object({
  /**
   * The engine sizes the members' orders from their allocated capital and the current equity,
   * and moves positions toward their targets when these change (capability 4).
   */
  enabled: z.boolean().default(true),
  /** A position is resized when it is off its target by more than this fraction of the target. */
  band: fraction('sizing.band').positive('band must be > 0').default(0.05),
});

export const policySchema = z
  .object({
    method: z.enum(ALLOCATION_METHODS).default('risk_parity'),
    /** Annualized portfolio volatility the `volatility_target` method aims at (0.15 = 15%). */
    targetVolatility: z
      .number()
      .positive('targetVolatility must be > 0')
      .max(2, 'targetVolatility must be ≤ 2 (200% a year)')
      .nullable()
      .default(0.15),
    /** The fraction of the Kelly bet (`kelly` method), at most a quarter Kelly. */
    kellyFraction: z
      .number()
      .positive('kellyFraction must be > 0')
      .max(KELLY_CAP, `kellyFraction must be ≤ ${KELLY_CAP} (a quarter Kelly)`)
      .default(KELLY_CAP),
    /** Days of daily returns the estimates use. */
    estimationDays: z.number().int().min(7).max(730).default(60),
    constraints: constraintsSchema.prefault({}),
    rebalance: rebalanceSchema.prefault({}),
    sizing: sizingSchema.prefault({}),
  })
  .superRefine((policy, context) => {
    if (policy.method === 'volatility_target' && policy.targetVolatility === null)
      context.addIssue({
        code: 'custom',
        path: ['targetVolatility'],
        message: 'the volatility_target method needs a targetVolatility > 0',
      });
    if (policy.constraints.minWeight > policy.constraints.maxWeight)
      context.addIssue({
        code: 'custom',
        path: ['constraints', 'minWeight'],
        message: 'minWeight must not exceed maxWeight',
      });
  });

export type AllocationPolicy = z.output<typeof policySchema>;
export type AllocationPolicyInput = z.input<typeof policySchema>;

export const defaultPolicy = (): AllocationPolicy => policySchema.parse({});
