import { z } from 'zod';

/** Schemas of the stored order events (core/trading/orders.ts). */

const side = z.enum(['buy', 'sell']);
const at = { clientOrderId: z.string(), time: z.number() };
export const orderRequestSchema = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side,
  type: z.enum(['market', 'limit', 'stop']),
  quantity: z.number(),
  limitPrice: z.number().nullable(),
  stopPrice: z.number().nullable(),
  reduceOnly: z.boolean(),
});
export const fillSchema = z.object({
  fillId: z.string(),
  price: z.number(),
  quantity: z.number(),
  fee: z.number(),
  feeCurrency: z.string(),
  liquidity: z.enum(['maker', 'taker']),
  slippage: z.number(),
});
const fillData = z.object({
  ...at,
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side,
  fill: fillSchema,
  filledQuantity: z.number(),
  remainingQuantity: z.number(),
  averagePrice: z.number(),
});
const reasonData = z.object({ ...at, reason: z.string() });

export const orderEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('OrderSubmitted'),
    data: orderRequestSchema.extend({ time: z.number() }),
  }),
  z.object({
    type: z.literal('OrderAccepted'),
    data: z.object({
      ...at,
      venueOrderId: z.string(),
      quantity: z.number(),
      limitPrice: z.number().nullable(),
      stopPrice: z.number().nullable(),
    }),
  }),
  z.object({ type: z.literal('OrderRejected'), data: reasonData }),
  z.object({ type: z.literal('OrderDenied'), data: reasonData }),
  z.object({ type: z.literal('OrderPartiallyFilled'), data: fillData }),
  z.object({ type: z.literal('OrderFilled'), data: fillData }),
  z.object({
    type: z.literal('OrderCancelled'),
    data: z.object({
      ...at,
      reason: z.string(),
      filledQuantity: z.number(),
      remainingQuantity: z.number(),
    }),
  }),
]);
