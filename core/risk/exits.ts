// Under 400 lines without comments (what the max-lines rule counts): the exit-rules decider and the
// level arithmetic it folds (stop-loss, take-profit, trailing), which read best together; the ATR
// the stop is set from is in atr.ts.
import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { ValidationError } from '../errors.js';
import type { Candle } from '../market/types.js';
import { closingOrder, reason, type OrderRequest } from '../trading/orders.js';
import { intrabarPath } from '../trading/venue.js';
import { initialAtr, updateAtr, type AtrState } from './atr.js';
import { num, partySchema, refuse } from './common.js';

/**
 * Take-profit and stop-loss per position (one book: portfolio × strategy × symbol). Rules are set
 * per book on `risk-exits-<portfolioId>-<strategyId>-<symbol>`; the levels of the open round trip
 * can be moved by a command (the automation adjusts them). `evaluateExit` runs after every bar and
 * answers with a reduce-only market order for the whole position when a level was reached within
 * the bar (on its high/low, in the venue's intrabar path order). Rules: docs/risk.md.
 */

// The ATR moved to atr.ts; its users import it from here too.
export { initialAtr, updateAtr, type AtrState };

export const EXIT_KINDS = ['STOP_LOSS', 'TAKE_PROFIT', 'TRAILING_STOP'] as const;
export type ExitKind = (typeof EXIT_KINDS)[number];

export type ExitRules = {
  /** Fraction of the entry price: a long stops at entry × (1 − stopLoss). */
  stopLoss: number | null;
  /** Fraction of the entry price: a long takes profit at entry × (1 + takeProfit). */
  takeProfit: number | null;
  /** Active once the best price reached entry × (1 + activation); stops at best × (1 − distance). */
  trailing: { activation: number; distance: number } | null;
  /** Stop at entry − multiple × ATR(period) (Wilder), with the ATR of the bar before the entry. */
  atrStop: { period: number; multiple: number } | null;
};

/** Levels moved by a command, for the round trip that opened at `openedAt` only. */
export type MovedLevels = {
  openedAt: number;
  /** null: as the rules say. */
  stopPrice: number | null;
  takeProfitPrice: number | null;
};

/** What the risk streams hold for one book (RiskSnapshot.exits). */
export type ExitSettings = { rules: ExitRules | null; levels: MovedLevels | null };

export const exitsKey = (portfolioId: string, strategyId: string, symbol: string): string =>
  `${portfolioId}:${strategyId}:${symbol}`;

// ---------------------------------------------------------------------------------------------
// The evaluator.

/** Per book, carried from bar to bar by the engine (plain JSON). */
export type ExitTracker = {
  atr: AtrState | null;
  /** The open round trip; null while flat. */
  trip: {
    openedAt: number;
    side: 'long' | 'short';
    /** Best price since the entry: the highest high of a long, the lowest low of a short. */
    best: number;
    /** Set once, from the ATR before the entry (or the first ATR after it). */
    atrStop: number | null;
  } | null;
};

export type ExitPosition = {
  portfolioId: string;
  strategyId: string;
  symbol: string;
  /** Signed. */
  quantity: number;
  averageEntryPrice: number;
  /** Start of the round trip (Position.trip.openedAt); null while flat. */
  openedAt: number | null;
};

/** The levels in force for a bar (prices; null: none). */
export type ExitLevels = {
  stopPrice: number | null;
  takeProfitPrice: number | null;
  trailingPrice: number | null;
};

export type ExitSignal = {
  kind: ExitKind;
  /** A reduce-only market order for the whole position. */
  order: OrderRequest;
  /** `STOP_LOSS: level=…, entry=…, low=…` and so on. */
  reason: string;
  level: number;
  openedAt: number;
  /** The bar's close time: when the order is placed. */
  time: number;
};

export type ExitInput = {
  position: ExitPosition;
  /** The bar that just closed. */
  candle: Candle;
  barMs: number;
  settings: ExitSettings | undefined;
  /** An exit order of this position is still open: no new one. */
  exitPending: boolean;
};

/** Client order id of an exit: `<strategyId>-<symbol>-exit-<bar openTime>`. */
export const exitOrderId = (strategyId: string, symbol: string, barOpenTime: number): string =>
  `${strategyId}-${symbol}-exit-${barOpenTime}`;

/** Distance along the bar's path at which it first reaches `level` going down (or up); -1: never. */
function reach(path: readonly number[], level: number, down: boolean): number {
  let travelled = 0;
  let previous = path[0] ?? NaN;
  if (down ? previous <= level : previous >= level) return 0;
  for (let i = 1; i < path.length; i++) {
    const point = path[i] ?? NaN;
    if (down ? point <= level : point >= level) return travelled + Math.abs(previous - level);
    travelled += Math.abs(point - previous);
    previous = point;
  }
  return -1;
}

/** The levels of a round trip before a bar (from the rules, the moved levels and the tracker). */
export function exitLevels(
  position: ExitPosition,
  trip: NonNullable<ExitTracker['trip']>,
  settings: ExitSettings | undefined,
): ExitLevels {
  const rules = settings?.rules ?? null;
  const long = trip.side === 'long';
  const dir = long ? 1 : -1;
  const entry = position.averageEntryPrice;
  const tighter = (a: number | null, b: number | null): number | null =>
    a === null ? b : b === null ? a : long ? Math.max(a, b) : Math.min(a, b);
  let stopPrice = tighter(
    rules?.stopLoss != null ? entry * (1 - dir * rules.stopLoss) : null,
    trip.atrStop,
  );
  let takeProfitPrice = rules?.takeProfit != null ? entry * (1 + dir * rules.takeProfit) : null;
  const moved = settings?.levels;
  if (moved && moved.openedAt === trip.openedAt) {
    if (moved.stopPrice !== null) stopPrice = moved.stopPrice;
    if (moved.takeProfitPrice !== null) takeProfitPrice = moved.takeProfitPrice;
  }
  let trailingPrice: number | null = null;
  const trailing = rules?.trailing;
  if (trailing && dir * (trip.best - entry * (1 + dir * trailing.activation)) >= 0)
    trailingPrice = trip.best * (1 - dir * trailing.distance);
  // 10 significant digits: 100 × 1.1 is 110, so a bar touching 110 reaches it.
  const round = (price: number | null): number | null => (price === null ? null : num(price));
  return {
    stopPrice: round(stopPrice),
    takeProfitPrice: round(takeProfitPrice),
    trailingPrice: round(trailingPrice),
  };
}

/** The level a bar reached first, with the figures its reason states. */
type ExitHit = { kind: ExitKind; level: number; fields: Record<string, number> };

/** The reduce-only market order closing the whole position, placed at the bar's close. */
function exitSignal(
  position: ExitPosition,
  openedAt: number,
  hit: ExitHit,
  time: number,
  barOpenTime: number,
): ExitSignal {
  return {
    kind: hit.kind,
    order: closingOrder(exitOrderId(position.strategyId, position.symbol, barOpenTime), position),
    reason: reason(hit.kind, hit.fields),
    level: num(hit.level),
    openedAt,
    time,
  };
}

/**
 * One bar for one book. Levels come from the state before the bar (the best price and the ATR of
 * earlier bars); the bar's path (open → nearer extreme → other extreme → close) decides which level
 * was reached first; a stop and a take-profit reached at the same point: the stop. Then the best
 * price and the ATR take the bar in. A hit answers with a reduce-only market order for the whole
 * position, placed at the bar's close (it fills at the next open).
 */
export function evaluateExit(
  tracker: ExitTracker | undefined,
  input: ExitInput,
): { tracker: ExitTracker; exit: ExitSignal | null; levels: ExitLevels | null } {
  const { position, candle, barMs, settings, exitPending } = input;
  const atrRule = settings?.rules?.atrStop ?? null;
  let atr = tracker?.atr ?? null;
  if (atrRule && atr?.period !== atrRule.period) atr = initialAtr(atrRule.period);
  if (!atrRule) atr = null;
  const nextAtr = atr ? updateAtr(atr, candle) : null;

  const { quantity, openedAt } = position;
  if (quantity === 0 || openedAt === null)
    return { tracker: { atr: nextAtr, trip: null }, exit: null, levels: null };

  const side = quantity > 0 ? 'long' : 'short';
  const long = side === 'long';
  const entry = position.averageEntryPrice;
  let trip = tracker?.trip ?? null;
  if (!trip || trip.openedAt !== openedAt || trip.side !== side)
    trip = { openedAt, side, best: entry, atrStop: null };
  if (trip.atrStop === null && atrRule && atr?.atr != null)
    trip = { ...trip, atrStop: entry - (long ? 1 : -1) * atrRule.multiple * atr.atr };

  const levels = exitLevels(position, trip, settings);
  let exit: ExitSignal | null = null;
  if (!exitPending) {
    const path = intrabarPath(candle);
    const protective =
      levels.trailingPrice !== null &&
      (levels.stopPrice === null ||
        (long ? levels.trailingPrice > levels.stopPrice : levels.trailingPrice < levels.stopPrice))
        ? { kind: 'TRAILING_STOP' as const, level: levels.trailingPrice }
        : levels.stopPrice !== null
          ? { kind: 'STOP_LOSS' as const, level: levels.stopPrice }
          : null;
    const stopAt = protective ? reach(path, protective.level, long) : -1;
    const profitAt =
      levels.takeProfitPrice !== null ? reach(path, levels.takeProfitPrice, !long) : -1;
    const extreme: Record<string, number> = long ? { low: candle.low } : { high: candle.high };
    const favourable: Record<string, number> = long ? { high: candle.high } : { low: candle.low };
    let hit: ExitHit | null = null;
    if (protective && stopAt >= 0 && (profitAt < 0 || stopAt <= profitAt)) {
      hit =
        protective.kind === 'TRAILING_STOP'
          ? {
              ...protective,
              fields: {
                level: num(protective.level),
                peak: trip.best,
                distance: settings?.rules?.trailing?.distance ?? 0,
                ...extreme,
              },
            }
          : {
              ...protective,
              fields: { level: num(protective.level), entry: num(entry), ...extreme },
            };
    } else if (levels.takeProfitPrice !== null && profitAt >= 0) {
      const level = levels.takeProfitPrice;
      hit = {
        kind: 'TAKE_PROFIT',
        level,
        fields: { level: num(level), entry: num(entry), ...favourable },
      };
    }
    if (hit) exit = exitSignal(position, openedAt, hit, candle.openTime + barMs, candle.openTime);
  }
  const best = long ? Math.max(trip.best, candle.high) : Math.min(trip.best, candle.low);
  return { tracker: { atr: nextAtr, trip: { ...trip, best } }, exit, levels };
}

// ---------------------------------------------------------------------------------------------
// The decider: rules, moved levels and the exits that fired, per book.

type BookRef = { portfolioId: string; strategyId: string; symbol: string };

export type ExitsEvent =
  | DomainEvent<'ExitRulesSet', BookRef & { rules: ExitRules; by: Party; time: number }>
  | DomainEvent<
      'ExitLevelsMoved',
      BookRef & MovedLevels & { by: Party; reason: string; time: number }
    >
  | DomainEvent<
      'ExitTriggered',
      BookRef & {
        kind: ExitKind;
        clientOrderId: string;
        quantity: number;
        level: number;
        reason: string;
        openedAt: number;
        time: number;
      }
    >;

export type ExitsCommand =
  | (BookRef & { type: 'SetExitRules'; rules: ExitRules; by: Party; time: number })
  | (BookRef & {
      type: 'MoveExitLevels';
      /** The round trip the levels are for (Position.trip.openedAt). */
      openedAt: number;
      /** Omitted: unchanged; null: back to what the rules say. */
      stopPrice?: number | null;
      takeProfitPrice?: number | null;
      by: Party;
      reason: string;
      time: number;
    })
  | { type: 'RecordExit'; exit: ExitSignal };

export type ExitsState = ExitSettings & { lastExit: string | null };

const fraction = z.number().positive().max(1);
/** Gains and multiples beyond this (+10,000 %, 100 ATRs) are typos, and overflow the levels. */
const MAX_MULTIPLE = 100;
/** Exit rules, with gains and multiples checked by `multiple`. */
const exitRulesShape = (multiple: z.ZodNumber) =>
  z.strictObject({
    stopLoss: fraction.nullable(),
    takeProfit: multiple.positive().nullable(),
    trailing: z.strictObject({ activation: multiple.min(0), distance: fraction }).nullable(),
    atrStop: z
      .strictObject({ period: z.number().int().min(1).max(500), multiple: multiple.positive() })
      .nullable(),
  });
/** New rules: in the domain's sane range (ADR 011). */
export const exitRulesSchema = exitRulesShape(z.number().max(MAX_MULTIPLE));
/** Recorded rules are read as they were accepted then, so an older event always folds. */
const recordedExitRules = exitRulesShape(z.number());

/** Checks exit rules; throws ValidationError `INVALID_EXIT_RULES`. */
export function validateExitRules(rules: unknown): ExitRules {
  const parsed = exitRulesSchema.safeParse(rules);
  if (!parsed.success)
    throw new ValidationError(
      'INVALID_EXIT_RULES',
      parsed.error.issues.map((i) => `${i.path.join('.') || 'rules'}: ${i.message}`).join('; '),
    );
  return parsed.data;
}

const bookRef = { portfolioId: z.string(), strategyId: z.string(), symbol: z.string() };
export const exitsEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ExitRulesSet'),
    data: z.object({ ...bookRef, rules: recordedExitRules, by: partySchema, time: z.number() }),
  }),
  z.object({
    type: z.literal('ExitLevelsMoved'),
    data: z.object({
      ...bookRef,
      openedAt: z.number(),
      stopPrice: z.number().nullable(),
      takeProfitPrice: z.number().nullable(),
      by: partySchema,
      reason: z.string(),
      time: z.number(),
    }),
  }),
  z.object({
    type: z.literal('ExitTriggered'),
    data: z.object({
      ...bookRef,
      kind: z.enum(EXIT_KINDS),
      clientOrderId: z.string(),
      quantity: z.number(),
      level: z.number(),
      reason: z.string(),
      openedAt: z.number(),
      time: z.number(),
    }),
  }),
]);

const price = (value: number | null | undefined, name: string): void => {
  if (value !== undefined && value !== null && !(value > 0 && Number.isFinite(value)))
    refuse('INVALID_EXIT_LEVEL', `${name} must be a price > 0 or null`);
};

export const exits: Decider<ExitsState, ExitsCommand, ExitsEvent> = {
  initialState: () => ({ rules: null, levels: null, lastExit: null }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'ExitRulesSet':
        return { ...state, rules: event.data.rules };
      case 'ExitLevelsMoved': {
        const { openedAt, stopPrice, takeProfitPrice } = event.data;
        return { ...state, levels: { openedAt, stopPrice, takeProfitPrice } };
      }
      case 'ExitTriggered':
        return { ...state, lastExit: event.data.clientOrderId };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'SetExitRules': {
        const { portfolioId, strategyId, symbol, by, time } = command;
        const rules = validateExitRules(command.rules);
        if (JSON.stringify(rules) === JSON.stringify(state.rules)) return [];
        return [
          { type: 'ExitRulesSet', data: { portfolioId, strategyId, symbol, rules, by, time } },
        ];
      }
      case 'MoveExitLevels': {
        const { portfolioId, strategyId, symbol, openedAt, by, time } = command;
        price(command.stopPrice, 'stopPrice');
        price(command.takeProfitPrice, 'takeProfitPrice');
        if (command.stopPrice === undefined && command.takeProfitPrice === undefined)
          refuse('INVALID_EXIT_LEVEL', 'move stopPrice, takeProfitPrice or both');
        const same = state.levels?.openedAt === openedAt ? state.levels : null;
        const stopPrice =
          command.stopPrice === undefined ? (same?.stopPrice ?? null) : command.stopPrice;
        const takeProfitPrice =
          command.takeProfitPrice === undefined
            ? (same?.takeProfitPrice ?? null)
            : command.takeProfitPrice;
        if (same && same.stopPrice === stopPrice && same.takeProfitPrice === takeProfitPrice)
          return [];
        return [
          {
            type: 'ExitLevelsMoved',
            data: {
              portfolioId,
              strategyId,
              symbol,
              openedAt,
              stopPrice,
              takeProfitPrice,
              by,
              reason: command.reason,
              time,
            },
          },
        ];
      }
      case 'RecordExit': {
        const { exit } = command;
        if (state.lastExit === exit.order.clientOrderId) return [];
        return [
          {
            type: 'ExitTriggered',
            data: {
              portfolioId: exit.order.portfolioId,
              strategyId: exit.order.strategyId,
              symbol: exit.order.symbol,
              kind: exit.kind,
              clientOrderId: exit.order.clientOrderId,
              quantity: exit.order.quantity,
              level: exit.level,
              reason: exit.reason,
              openedAt: exit.openedAt,
              time: exit.time,
            },
          },
        ];
      }
    }
  },

  parseEvent: (event) => exitsEventSchema.parse(event),
};
