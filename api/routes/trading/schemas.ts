import { z } from 'zod';
import { QcatError } from '../../../core/errors.js';
import type { TIMEFRAMES } from '../../../core/strategies/kinds.js';
import { ORDER_STATUSES } from '../../../core/trading/orders.js';
import { isoOrNull, pageLimit, positionCursor, positionString } from '../conventions.js';
import type {
  OrderRow,
  FillRow,
  PortfolioRow,
  StrategyPnlRow,
} from '../../../projections/trading-queries.js';
import { drawdownOf } from '../../../core/risk/measures.js';
export const PROJECTION = 'trading';
export const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');
export const id = z.string().min(1).max(200);
export const limit = pageLimit(1000, 100);
export const after = positionCursor;
export const minPosition = positionString.optional();
export const book = {
  portfolioId: id.optional(),
  strategyId: id.optional(),
  symbol: symbol.optional(),
};

export const order = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  type: z.enum(['market', 'limit', 'stop']),
  quantity: z.number(),
  limitPrice: z.number().nullable(),
  stopPrice: z.number().nullable(),
  reduceOnly: z.boolean(),
  status: z.enum(ORDER_STATUSES),
  filledQuantity: z.number(),
  averagePrice: z.number().nullable(),
  reason: z.string().nullable(),
  source: z.enum(['strategy', 'manual']),
  actor: z.string(),
  submittedAt: z.string(),
  updatedAt: z.string(),
  position: z.string(),
});
export const fill = z.object({
  fillId: z.string(),
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  price: z.number(),
  quantity: z.number(),
  notional: z.number(),
  fee: z.number(),
  feeCurrency: z.string(),
  liquidity: z.enum(['maker', 'taker']),
  slippage: z.number(),
  time: z.string(),
  position: z.string(),
});
export const trade = z.object({
  fillId: z.string().describe('the fill that ended the round trip'),
  clientOrderId: z.string(),
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  side: z.enum(['long', 'short']),
  openedAt: z.string(),
  closedAt: z.string(),
  quantity: z.number().describe('total quantity entered'),
  entryPrice: z.number(),
  exitPrice: z.number(),
  realizedPnl: z.number().describe('before fees'),
  fees: z.number(),
  netPnl: z.number(),
  position: z.string(),
});
export const position = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  quantity: z.number(),
  averageEntryPrice: z.number(),
  markPrice: z.number().nullable(),
  unrealizedPnl: z.number(),
  realizedPnl: z.number(),
  feesPaid: z.number(),
  updatedAt: z.string(),
});
export const pnl = {
  realizedPnl: z.number().describe('before fees'),
  unrealizedPnl: z.number(),
  feesPaid: z.number(),
  netPnl: z.number().describe('realized + unrealized − fees'),
};
export const portfolio = z.object({
  portfolioId: z.string(),
  currency: z.string(),
  cash: z.number(),
  equity: z.number().nullable().describe('as of valuedAt; null before the first valuation'),
  highWaterMark: z.number().nullable(),
  drawdown: z.number().nullable().describe('(highWaterMark − equity) / highWaterMark'),
  valuedAt: z.string().nullable(),
  ...pnl,
});
export const strategyPnl = z.object({
  portfolioId: z.string(),
  strategyId: z.string(),
  ...pnl,
  openPositions: z.number().int(),
  trades: z.number().int(),
});
export const requestedAnswer = z.object({
  clientOrderId: z.string(),
  portfolioId: z.string(),
  status: z.enum(['requested', 'cancel_requested']),
  streamId: z.string(),
  revision: z.string(),
  position: z.string().describe('the desk event; the order events follow at the next engine cycle'),
});

export const iso = (date: Date): string => date.toISOString();
export const toOrder = (r: OrderRow): z.infer<typeof order> => ({
  clientOrderId: r.client_order_id,
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  symbol: r.symbol,
  side: r.side,
  type: r.type,
  quantity: r.quantity,
  limitPrice: r.limit_price,
  stopPrice: r.stop_price,
  reduceOnly: r.reduce_only,
  status: r.status,
  filledQuantity: r.filled_quantity,
  averagePrice: r.average_price,
  reason: r.reason,
  source: r.source,
  actor: r.actor,
  submittedAt: iso(r.submitted_at),
  updatedAt: iso(r.updated_at),
  position: r.position,
});

export const toFill = (r: FillRow): z.infer<typeof fill> => ({
  fillId: r.fill_id,
  clientOrderId: r.client_order_id,
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  symbol: r.symbol,
  side: r.side,
  price: r.price,
  quantity: r.quantity,
  notional: r.notional,
  fee: r.fee,
  feeCurrency: r.fee_currency,
  liquidity: r.liquidity,
  slippage: r.slippage,
  time: iso(r.time),
  position: r.position,
});

export const toPortfolio = (r: PortfolioRow): z.infer<typeof portfolio> => ({
  portfolioId: r.portfolio_id,
  currency: r.currency,
  cash: r.cash,
  equity: r.equity,
  highWaterMark: r.high_water_mark,
  drawdown: drawdownOf(r.high_water_mark, r.equity),
  valuedAt: isoOrNull(r.valued_at),
  realizedPnl: r.realized_pnl,
  unrealizedPnl: r.unrealized_pnl,
  feesPaid: r.fees_paid,
  netPnl: r.realized_pnl + r.unrealized_pnl - r.fees_paid,
});

export const toStrategyPnl = (r: StrategyPnlRow): z.infer<typeof strategyPnl> => ({
  portfolioId: r.portfolio_id,
  strategyId: r.strategy_id,
  realizedPnl: r.realized_pnl,
  unrealizedPnl: r.unrealized_pnl,
  feesPaid: r.fees_paid,
  netPnl: r.realized_pnl + r.unrealized_pnl - r.fees_paid,
  openPositions: r.open_positions,
  trades: r.trades,
});
/** PostgreSQL intervals of the downsampling choices. */
export const INTERVALS: Readonly<Record<(typeof TIMEFRAMES)[number], string>> = {
  '1m': '1 minute',
  '5m': '5 minutes',
  '15m': '15 minutes',
  '1h': '1 hour',
  '4h': '4 hours',
  '1d': '1 day',
};
/** A refused order field: 422 naming it. */
export const invalidOrder = (path: string, message: string): QcatError =>
  new QcatError('INVALID_ORDER', `${path}: ${message}`, {
    errors: [{ path: `body.${path}`, message }],
  });
