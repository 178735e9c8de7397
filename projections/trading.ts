import { domainEventOf } from '../core/eventstore/typed-events.js';
import type pg from 'pg';

import { isManualOrder } from '../core/engine/desk.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { ORDER_EVENT_TYPES, orderEvent } from '../core/trading/orders.js';
import {
  cashBalanceChangedEvent,
  portfolioValuedEvent,
  positionChangedEvent,
  positionClosedEvent,
} from '../core/trading/accounting-events.js';
import type { PostgresProjection } from './projection.js';
import { bookTables, orderTables } from './trading-tables.js';

/**
 * The trading read side: orders, fills, round trips, positions and portfolios from the order
 * events (`order-*`), the accounting events (`position-*`, `account-*`) and the engine's
 * PortfolioValued (`position-<portfolioId>`); see docs/trading.md, "Read models and API".
 */

export type { PortfolioValuedData } from '../core/trading/accounting-events.js';

export const TRADING_CATEGORIES = new Set(['order', 'position', 'account']);
export const at = (ms: number): Date => new Date(ms);
async function upsertPosition(
  client: pg.ClientBase,
  schema: string,
  portfolioId: string,
  p: {
    strategyId: string;
    symbol: string;
    quantity: number;
    averageEntryPrice: number;
    realizedPnl: number;
    feesPaid: number;
    markPrice: number;
    unrealizedPnl: number;
  },
  time: number,
  position: bigint,
): Promise<void> {
  await client.query(
    `INSERT INTO ${schema}.positions (portfolio_id, strategy_id, symbol, quantity, average_entry_price,
                                      realized_pnl, fees_paid, mark_price, unrealized_pnl, updated_at, position)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (portfolio_id, strategy_id, symbol) DO UPDATE SET
       quantity = $4, average_entry_price = $5, realized_pnl = $6, fees_paid = $7, mark_price = $8,
       unrealized_pnl = $9, updated_at = $10, position = $11`,
    [
      portfolioId,
      p.strategyId,
      p.symbol,
      p.quantity,
      p.averageEntryPrice,
      p.realizedPnl,
      p.feesPaid,
      p.markPrice,
      p.unrealizedPnl,
      at(time),
      position,
    ],
  );
}

// eslint-disable-next-line max-lines-per-function -- one switch over the order event types
async function applyOrderEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  const parsed = orderEvent.parse(domainEventOf(event));
  const { clientOrderId, time } = parsed.data;
  switch (parsed.type) {
    case 'OrderSubmitted': {
      const o = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.orders (client_order_id, portfolio_id, strategy_id, symbol, side, type,
                                       quantity, limit_price, stop_price, reduce_only, status,
                                       filled_quantity, average_price, reason, source, actor,
                                       submitted_at, updated_at, submitted_position, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'submitted', 0, NULL, NULL, $11, $12,
                 $13, $13, $14, $14)
         ON CONFLICT (client_order_id) DO NOTHING`,
        [
          clientOrderId,
          o.portfolioId,
          o.strategyId,
          o.symbol,
          o.side,
          o.type,
          o.quantity,
          o.limitPrice,
          o.stopPrice,
          o.reduceOnly,
          isManualOrder(clientOrderId) ? 'manual' : 'strategy',
          event.metadata.actor,
          at(time),
          event.position,
        ],
      );
      return;
    }
    case 'OrderAccepted': {
      // The venue's lot and tick rounding replaces the quantity and prices asked for.
      const { quantity, limitPrice, stopPrice } = parsed.data;
      await client.query(
        `UPDATE ${schema}.orders SET status = 'accepted', quantity = $2, limit_price = $3,
                stop_price = $4, updated_at = $5, position = $6
          WHERE client_order_id = $1`,
        [clientOrderId, quantity, limitPrice, stopPrice, at(time), event.position],
      );
      return;
    }
    case 'OrderRejected':
    case 'OrderDenied':
      await client.query(
        `UPDATE ${schema}.orders SET status = $2, reason = $3, updated_at = $4, position = $5
          WHERE client_order_id = $1`,
        [
          clientOrderId,
          parsed.type === 'OrderRejected' ? 'rejected' : 'denied',
          parsed.data.reason,
          at(time),
          event.position,
        ],
      );
      return;
    case 'OrderCancelled':
      await client.query(
        `UPDATE ${schema}.orders SET status = 'cancelled', reason = $2, updated_at = $3, position = $4
          WHERE client_order_id = $1`,
        [clientOrderId, parsed.data.reason, at(time), event.position],
      );
      return;
    case 'OrderPartiallyFilled':
    case 'OrderFilled': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.orders SET status = $2, filled_quantity = $3, average_price = $4,
                updated_at = $5, position = $6
          WHERE client_order_id = $1`,
        [
          clientOrderId,
          parsed.type === 'OrderFilled' ? 'filled' : 'partially_filled',
          d.filledQuantity,
          d.averagePrice,
          at(time),
          event.position,
        ],
      );
      const f = d.fill;
      await client.query(
        `INSERT INTO ${schema}.fills (fill_id, client_order_id, portfolio_id, strategy_id, symbol, side,
                                      price, quantity, notional, fee, fee_currency, liquidity,
                                      slippage, time, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (fill_id) DO NOTHING`,
        [
          f.fillId,
          clientOrderId,
          d.portfolioId,
          d.strategyId,
          d.symbol,
          d.side,
          f.price,
          f.quantity,
          f.price * f.quantity,
          f.fee,
          f.feeCurrency,
          f.liquidity,
          f.slippage,
          at(time),
          event.position,
        ],
      );
      return;
    }
  }
}

/** Positions, closed trades and cash of the accounting streams (position-*, account-*). */
async function applyAccountEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  switch (event.type) {
    case 'PositionChanged': {
      const d = positionChangedEvent.parse(event);
      await upsertPosition(
        client,
        schema,
        d.portfolioId,
        {
          ...d,
          markPrice: d.fillPrice,
          unrealizedPnl: (d.fillPrice - d.averageEntryPrice) * d.quantity,
        },
        d.time,
        event.position,
      );
      await client.query(
        `UPDATE ${schema}.portfolios SET realized_pnl = realized_pnl + $2, position = $3
          WHERE portfolio_id = $1`,
        [d.portfolioId, d.realizedPnlChange, event.position],
      );
      break;
    }
    case 'PositionClosed': {
      const d = positionClosedEvent.parse(event);
      await client.query(
        `INSERT INTO ${schema}.trades (fill_id, client_order_id, portfolio_id, strategy_id, symbol,
                                       side, opened_at, closed_at, quantity, entry_price,
                                       exit_price, pnl, fees, net_pnl, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (fill_id) DO NOTHING`,
        [
          d.fillId,
          d.clientOrderId,
          d.portfolioId,
          d.strategyId,
          d.symbol,
          d.side,
          at(d.openedAt),
          at(d.closedAt),
          d.quantity,
          d.entryPrice,
          d.exitPrice,
          d.realizedPnl,
          d.fees,
          d.netPnl,
          event.position,
        ],
      );
      break;
    }
    case 'CashBalanceChanged': {
      const d = cashBalanceChangedEvent.parse(event);
      await client.query(
        `INSERT INTO ${schema}.portfolios AS p (portfolio_id, currency, cash, realized_pnl,
                                                unrealized_pnl, fees_paid, position)
         VALUES ($1, $2, $3, 0, 0, $4, $5)
         ON CONFLICT (portfolio_id) DO UPDATE SET
           currency = $2, cash = $3, fees_paid = p.fees_paid + $4, position = $5`,
        [d.portfolioId, d.currency, d.balance, d.fee, event.position],
      );
      break;
    }
    case 'PortfolioValued':
      await applyValuation(client, schema, event);
      break;
    default:
      break;
  }
}

/** A portfolio's valuation: its figures, a point of its equity curve, its positions' marks. */
async function applyValuation(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  const d = portfolioValuedEvent.parse(event);
  await client.query(
    `INSERT INTO ${schema}.portfolios AS p (portfolio_id, currency, cash, equity,
                                            realized_pnl, unrealized_pnl, fees_paid,
                                            valued_at, high_water_mark, position)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $4, $9)
     ON CONFLICT (portfolio_id) DO UPDATE SET
       currency = $2, cash = $3, equity = $4, realized_pnl = $5, unrealized_pnl = $6,
       fees_paid = $7, valued_at = $8,
       high_water_mark = GREATEST(p.high_water_mark, $4), position = $9`,
    [
      d.portfolioId,
      d.currency,
      d.cash,
      d.equity,
      d.realizedPnl,
      d.unrealizedPnl,
      d.feesPaid,
      at(d.time),
      event.position,
    ],
  );
  await client.query(
    `INSERT INTO ${schema}.portfolio_equity (portfolio_id, time, equity, cash, position)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (portfolio_id, time) DO UPDATE SET equity = $3, cash = $4, position = $5`,
    [d.portfolioId, at(d.time), d.equity, d.cash, event.position],
  );
  for (const p of d.positions)
    await upsertPosition(client, schema, d.portfolioId, p, d.time, event.position);
}

/**
 * `qcat_read.orders`, `fills`, `positions`, `trades`, `portfolios` and `portfolio_equity`.
 * Marks: a position is marked at its fill price when it trades and at the bar close when the
 * engine values the portfolio (PortfolioValued). A portfolio's cash, fees and realized PnL follow
 * every fill; its equity and unrealized PnL are those of the last valuation (`valued_at`).
 */
export const tradingProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'trading',
  version: 1,
  tables: ['orders', 'fills', 'positions', 'trades', 'portfolios', 'portfolio_equity'],
  // What apply acts on (ADR 027): other events move the checkpoint and keep the cached answers.
  handles: [
    ...ORDER_EVENT_TYPES,
    'PositionChanged',
    'PositionClosed',
    'CashBalanceChanged',
    'PortfolioValued',
  ],

  async setup(client, schema) {
    await client.query(orderTables(schema));
    await client.query(bookTables(schema));
  },

  async apply(client, schema, events) {
    for (const event of events) {
      const category = categoryOf(event.streamId);
      if (!TRADING_CATEGORIES.has(category)) continue;
      if (category === 'order') {
        // Other event types on order streams (none today) are not this read model's business.
        if (ORDER_EVENT_TYPES.has(event.type)) await applyOrderEvent(client, schema, event);
        continue;
      }
      await applyAccountEvent(client, schema, event);
    }
  },
};
