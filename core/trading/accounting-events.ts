import { z } from 'zod';
import { eventSchema } from '../eventstore/typed-events.js';

/**
 * The schemas of the accounting events (accounting.ts) and of the engine's PortfolioValued, as
 * they are read back (ADR 028): by the trading read models and by the process managers. They
 * check the fields readers use; the writers' types are in accounting.ts and engine.ts.
 */
const fillRef = {
  portfolioId: z.string(),
  clientOrderId: z.string(),
  fillId: z.string(),
  time: z.number(),
};
const positionChangedData = z.object({
  ...fillRef,
  strategyId: z.string(),
  symbol: z.string(),
  fillPrice: z.number(),
  quantity: z.number(),
  averageEntryPrice: z.number(),
  realizedPnlChange: z.number(),
  realizedPnl: z.number(),
  feesPaid: z.number(),
});
const positionClosedData = z.object({
  ...fillRef,
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['long', 'short']),
  openedAt: z.number(),
  closedAt: z.number(),
  quantity: z.number(),
  entryPrice: z.number(),
  exitPrice: z.number(),
  realizedPnl: z.number(),
  fees: z.number(),
  netPnl: z.number(),
});
const cashBalanceChangedData = z.object({
  ...fillRef,
  currency: z.string(),
  fee: z.number(),
  balance: z.number(),
});
const portfolioValuedData = z.object({
  portfolioId: z.string(),
  currency: z.string(),
  time: z.number(),
  cycle: z.number(),
  cash: z.number(),
  equity: z.number(),
  feesPaid: z.number(),
  realizedPnl: z.number(),
  unrealizedPnl: z.number(),
  positions: z.array(
    z.object({
      strategyId: z.string(),
      symbol: z.string(),
      quantity: z.number(),
      averageEntryPrice: z.number(),
      markPrice: z.number(),
      unrealizedPnl: z.number(),
      realizedPnl: z.number(),
      feesPaid: z.number(),
    }),
  ),
});

export const positionChangedEvent = eventSchema('PositionChanged', positionChangedData);
export const positionClosedEvent = eventSchema('PositionClosed', positionClosedData);
export const cashBalanceChangedEvent = eventSchema('CashBalanceChanged', cashBalanceChangedData);
/** The engine's valuation of a portfolio after a cycle (stream `position-<portfolioId>`). */
export const portfolioValuedEvent = eventSchema('PortfolioValued', portfolioValuedData);
export type PortfolioValuedData = z.infer<typeof portfolioValuedData>;
