import { categoryOf } from '../core/eventstore/append-validation.js';
import { portfolioValuedEvent, positionChangedEvent } from '../core/trading/accounting-events.js';
import type { AccountingEvent } from '../core/trading/accounting.js';
import type { RedisProjection } from './projection.js';
import { at } from './trading.js';

/** One position in the Redis view (`positions:<portfolioId>`, field `<strategyId>|<symbol>`). */
export interface LivePosition {
  strategyId: string;
  symbol: string;
  quantity: number;
  averageEntryPrice: number;
  markPrice: number;
  unrealizedPnl: number;
  realizedPnl: number;
  feesPaid: number;
  /** ISO instant of the fill or valuation it comes from. */
  updatedAt: string;
}

/** The portfolio in the Redis view (`portfolio:<portfolioId>`, a hash of these fields). */
export interface LivePortfolio {
  currency: string;
  equity: string;
  cash: string;
  realizedPnl: string;
  unrealizedPnl: string;
  feesPaid: string;
  /** realized + unrealized − fees */
  pnl: string;
  valuedAt: string;
  cycle: string;
}

export const livePositionField = (strategyId: string, symbol: string): string =>
  `${strategyId}|${symbol}`;

/**
 * Live positions and portfolio values in Redis, for dashboards: per portfolio a hash
 * `<view prefix>positions:<portfolioId>` (one field per book) and a hash
 * `<view prefix>portfolio:<portfolioId>`. Written from PositionChanged (marked at the fill price)
 * and PortfolioValued (marked at the bar close); a PositionClosed is always followed by the
 * PositionChanged that carries the flat position, so it needs no write of its own.
 */
export const livePositionsView: RedisProjection = {
  kind: 'redis',
  name: 'live_positions',
  version: 1,
  handles: ['PositionChanged', 'PortfolioValued'] satisfies (
    AccountingEvent['type'] | 'PortfolioValued'
  )[],
  apply(multi, keyPrefix, events) {
    // The last value of each field in this batch; MULTI then writes each once.
    const positions = new Map<string, Map<string, string>>();
    const portfolios = new Map<string, Record<string, string>>();
    const put = (portfolioId: string, p: LivePosition): void => {
      const key = `${keyPrefix}positions:${portfolioId}`;
      const fields = positions.get(key) ?? new Map<string, string>();
      fields.set(livePositionField(p.strategyId, p.symbol), JSON.stringify(p));
      positions.set(key, fields);
    };
    for (const event of events) {
      if (categoryOf(event.streamId) !== 'position') continue;
      if (event.type === 'PositionChanged') {
        const d = positionChangedEvent.parse(event);
        put(d.portfolioId, {
          strategyId: d.strategyId,
          symbol: d.symbol,
          quantity: d.quantity,
          averageEntryPrice: d.averageEntryPrice,
          markPrice: d.fillPrice,
          unrealizedPnl: (d.fillPrice - d.averageEntryPrice) * d.quantity,
          realizedPnl: d.realizedPnl,
          feesPaid: d.feesPaid,
          updatedAt: at(d.time).toISOString(),
        });
      } else if (event.type === 'PortfolioValued') {
        const d = portfolioValuedEvent.parse(event);
        const valuedAt = at(d.time).toISOString();
        for (const p of d.positions) put(d.portfolioId, { ...p, updatedAt: valuedAt });
        portfolios.set(`${keyPrefix}portfolio:${d.portfolioId}`, {
          currency: d.currency,
          equity: String(d.equity),
          cash: String(d.cash),
          realizedPnl: String(d.realizedPnl),
          unrealizedPnl: String(d.unrealizedPnl),
          feesPaid: String(d.feesPaid),
          pnl: String(d.realizedPnl + d.unrealizedPnl - d.feesPaid),
          valuedAt,
          cycle: String(d.cycle),
        } satisfies LivePortfolio);
      }
    }
    for (const [key, fields] of positions) multi.hset(key, Object.fromEntries(fields));
    for (const [key, fields] of portfolios) multi.hset(key, fields);
  },
};
