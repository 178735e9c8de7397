/**
 * What one paper engine cycle (engine.ts) appends, event by event: the streams its trading events
 * go to, the desk's manual orders and cancels, the holds of switched-off capabilities, the
 * portfolio's valuation, and the ids derived from (portfolio, cycle, index) that make a replayed
 * cycle append nothing twice.
 */
import { v5 as uuidv5 } from 'uuid';
import type { Capability } from '../capabilities/capabilities.js';
import { decisionStream } from '../capabilities/decisions.js';
import { ENGINE_MANAGERS, automationActorOf } from '../capabilities/engine.js';
import type { EventMetadata, JsonObject, NewEvent } from '../eventstore/event-store.js';
import { accountStream, positionStream, unrealizedPnl } from '../trading/accounting.js';
import { orderStream, reason, submitted, type OrderRequest } from '../trading/orders.js';
import type { EngineState, Stepper, TradingEvent } from '../trading/stepper.js';
import type { CycleRecord } from './cycle-record.js';
import type { DeskEvent } from './desk.js';

const NAMESPACE = '0b6f6a44-65c2-4a3e-9f1b-6d7f2f3c8a51';

/** A cycle's output: an event with the metadata it is appended with. */
export type Output = { streamId: string; event: NewEvent };

export function streamOf(portfolioId: string, event: TradingEvent): string {
  switch (event.type) {
    case 'PositionChanged':
    case 'PositionClosed':
      return positionStream(portfolioId, event.data.strategyId, event.data.symbol);
    case 'CashBalanceChanged':
      return accountStream(portfolioId);
    default:
      return orderStream(event.data.clientOrderId);
  }
}

/** A manual order or cancel from the desk: submitted, or rejected when its book is unknown. */
export function takeDesk(
  portfolioId: string,
  stepper: Stepper,
  state: EngineState,
  desk: DeskEvent,
  time: number,
): readonly TradingEvent[] {
  if (desk.type === 'ManualCancelRequested')
    return stepper.cancel(state, desk.data.clientOrderId, desk.data.reason, time).events;
  const order: OrderRequest = { ...desk.data.order, portfolioId };
  const known = state.books.some(
    (book) => book.strategyId === order.strategyId && book.symbol === order.symbol,
  );
  if (known) return stepper.submit(state, order, time).events;
  return [
    { type: 'OrderSubmitted', data: submitted(order, time) },
    {
      type: 'OrderRejected',
      data: {
        clientOrderId: order.clientOrderId,
        reason: reason('UNKNOWN_BOOK', {
          portfolioId,
          strategyId: order.strategyId,
          symbol: order.symbol,
        }),
        time,
      },
    },
  ];
}

/** What a capability the policy switched off would have done, recorded as its hold. */
export function heldOutput(
  hold: { capability: Capability; streamId: string; command: string; reason: string },
  cause: string,
  system: EventMetadata,
): Output {
  const manager = ENGINE_MANAGERS[hold.capability] ?? hold.capability;
  const { streamId, command, reason: why } = hold;
  return {
    streamId: decisionStream(manager),
    event: {
      type: 'AutomationActionHeld',
      data: { manager, cause, streamId, command, reason: why },
      metadata: { ...system, actor: automationActorOf(manager) },
    },
  };
}

/** The data of PortfolioValued after a cycle: cash, equity, PnL and every position at its mark. */
export function valuationOf(
  portfolioId: string,
  barMs: number,
  stepper: Stepper,
  state: EngineState,
  record: CycleRecord,
): JsonObject {
  let realized = 0;
  let unrealized = 0;
  const positions = state.account.positions.map((position) => {
    const mark = state.marks[position.symbol] ?? position.averageEntryPrice;
    const open = unrealizedPnl(position, mark);
    realized += position.realizedPnl;
    unrealized += open;
    return {
      strategyId: position.strategyId,
      symbol: position.symbol,
      quantity: position.quantity,
      averageEntryPrice: position.averageEntryPrice,
      markPrice: mark,
      unrealizedPnl: open,
      realizedPnl: position.realizedPnl,
      feesPaid: position.feesPaid,
    };
  });
  return {
    portfolioId,
    currency: state.account.currency,
    // The close of the last bar taken (a desk-only cycle revalues at the same instant).
    time: record.barTime + barMs,
    cycle: record.cycle,
    cash: state.account.cash,
    equity: stepper.equity(state),
    feesPaid: state.account.feesPaid,
    realizedPnl: realized,
    unrealizedPnl: unrealized,
    positions,
  };
}

/** Ids from (portfolio, cycle, index): a replayed cycle re-appends the same events, a no-op. */
export function numberOutputs(
  outputs: readonly Output[],
  portfolioId: string,
  cycle: number,
): void {
  outputs.forEach((output, index) => {
    output.event.eventId = uuidv5(`${portfolioId}:${cycle}:${index}`, NAMESPACE);
  });
}

/** The outputs grouped by stream, in order: each stream's events are appended in one append. */
export function byStream(outputs: readonly Output[]): Map<string, NewEvent[]> {
  const streams = new Map<string, NewEvent[]>();
  for (const { streamId, event } of outputs) {
    const events = streams.get(streamId);
    if (events) events.push(event);
    else streams.set(streamId, [event]);
  }
  return streams;
}
