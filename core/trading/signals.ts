import type { z } from 'zod';
import type { JsonObject } from '../eventstore/event-store.js';
import type { Candle } from '../market/types.js';
import { STRATEGY_KINDS, validateParameters, type StrategyKindName } from '../strategies/kinds.js';

/**
 * The strategy kinds as incremental signals: each bar, `update(state, candle, parameters)` moves
 * the kind's state on by one bar in O(1) and returns the target position as a signed fraction of
 * the capital allocated to the strategy (0 = flat, 0.5 = long half of it). The three kinds here are
 * long-only: their targets are 0 or `positionFraction`.
 *
 * The state is plain JSON (ring buffers are number arrays), so it survives a JSON round trip and a
 * restarted engine continues exactly where it stopped. For speed `update` changes the state it is
 * given and returns only the target: the state belongs to whoever calls it (the step function),
 * like the engine state as a whole.
 */

const [smaKind, rsiKind, donchianKind] = STRATEGY_KINDS;
// Fails to compile if core/strategies/kinds.ts reorders its kinds.
const _order: ['sma_crossover', 'rsi_mean_reversion', 'donchian_breakout'] = [
  smaKind.name,
  rsiKind.name,
  donchianKind.name,
];

export type SmaCrossoverParameters = z.output<typeof smaKind.parameters>;
export type RsiMeanReversionParameters = z.output<typeof rsiKind.parameters>;
export type DonchianBreakoutParameters = z.output<typeof donchianKind.parameters>;

// ---------------------------------------------------------------------------------------------
// Building blocks.

/** The last `values.length` values and their running sum, re-summed exactly at every wrap. */
export type Window = { values: number[]; next: number; count: number; sum: number };

export const newWindow = (length: number): Window => ({
  values: new Array<number>(length).fill(0),
  next: 0,
  count: 0,
  sum: 0,
});

/** Adds a value (dropping the oldest once full). O(1) amortized: a full re-sum every `length` pushes. */
export function pushWindow(window: Window, value: number): void {
  const { values } = window;
  const length = values.length;
  if (window.count < length) {
    window.count++;
    window.sum += value;
  } else {
    window.sum += value - (values[window.next] ?? 0);
  }
  values[window.next] = value;
  if (++window.next === length) {
    window.next = 0;
    // Running sums drift; a fresh sum once per cycle keeps the mean exact to the last bits.
    let sum = 0;
    for (let i = 0; i < length; i++) sum += values[i] ?? 0;
    window.sum = sum;
  }
}

/** The mean of a full window; null until it has `length` values. */
export const windowMean = (window: Window): number | null =>
  window.count < window.values.length ? null : window.sum / window.values.length;

/**
 * Monotonic deque of (bar number, value) over a sliding window of `length` bars: the front is the
 * window's maximum (`max`) or minimum. A ring of `length + 1` slots.
 */
export type Deque = { bars: number[]; values: number[]; head: number; size: number };

export const newDeque = (length: number): Deque => ({
  bars: new Array<number>(length + 1).fill(0),
  values: new Array<number>(length + 1).fill(0),
  head: 0,
  size: 0,
});

/** Drops entries of bars before `firstBar`. */
function expire(deque: Deque, firstBar: number): void {
  const capacity = deque.bars.length;
  while (deque.size > 0 && (deque.bars[deque.head] ?? Infinity) < firstBar) {
    deque.head = deque.head + 1 === capacity ? 0 : deque.head + 1;
    deque.size--;
  }
}

/** Appends bar `bar`'s value, first dropping the entries it dominates. */
function pushDeque(deque: Deque, bar: number, value: number, max: boolean): void {
  const capacity = deque.bars.length;
  while (deque.size > 0) {
    const last = (deque.head + deque.size - 1) % capacity;
    const kept = deque.values[last] ?? 0;
    if (max ? kept > value : kept < value) break;
    deque.size--;
  }
  const slot = (deque.head + deque.size) % capacity;
  deque.bars[slot] = bar;
  deque.values[slot] = value;
  deque.size++;
}

const front = (deque: Deque): number => deque.values[deque.head] ?? NaN;

// ---------------------------------------------------------------------------------------------
// SMA crossover: long while the fast mean of closes is above the slow one.

export type SmaCrossoverState = { kind: 'sma_crossover'; fast: Window; slow: Window };

export const smaCrossover = {
  name: 'sma_crossover',
  initialState: (p: SmaCrossoverParameters): SmaCrossoverState => ({
    kind: 'sma_crossover',
    fast: newWindow(p.fastPeriod),
    slow: newWindow(p.slowPeriod),
  }),
  /** positionFraction while SMA(fast) > SMA(slow) (strictly), else 0; 0 until the slow one is full. */
  update(state: SmaCrossoverState, candle: Candle, p: SmaCrossoverParameters): number {
    const { fast, slow } = state;
    pushWindow(fast, candle.close);
    pushWindow(slow, candle.close);
    if (slow.count < p.slowPeriod) return 0;
    return fast.sum / p.fastPeriod > slow.sum / p.slowPeriod ? p.positionFraction : 0;
  },
} as const;

// ---------------------------------------------------------------------------------------------
// RSI mean reversion (Wilder): buy at RSI ≤ oversold, exit at RSI ≥ overbought.

export type RsiMeanReversionState = {
  kind: 'rsi_mean_reversion';
  previousClose: number | null;
  /** Close-to-close changes seen, counted up to `period`. */
  changes: number;
  /** Sums of gains and losses while seeding, Wilder's averages after. */
  averageGain: number;
  averageLoss: number;
  /** The latest RSI; null until `period` changes were seen. */
  rsi: number | null;
  long: boolean;
};

/** RSI from average gain and loss: 100 with no losses, 50 when nothing moved. */
export const rsiOf = (averageGain: number, averageLoss: number): number =>
  averageLoss === 0 ? (averageGain === 0 ? 50 : 100) : 100 - 100 / (1 + averageGain / averageLoss);

export const rsiMeanReversion = {
  name: 'rsi_mean_reversion',
  initialState: (_: RsiMeanReversionParameters): RsiMeanReversionState => ({
    kind: 'rsi_mean_reversion',
    previousClose: null,
    changes: 0,
    averageGain: 0,
    averageLoss: 0,
    rsi: null,
    long: false,
  }),
  /**
   * The first RSI uses the simple means of the first `period` gains and losses; after that
   * avg = (avg × (period − 1) + new) / period. Flat → long when RSI ≤ oversold; long → flat when
   * RSI ≥ overbought; otherwise the position is held.
   */
  update(state: RsiMeanReversionState, candle: Candle, p: RsiMeanReversionParameters): number {
    const close = candle.close;
    const previous = state.previousClose;
    state.previousClose = close;
    if (previous !== null) {
      const change = close - previous;
      const gain = change > 0 ? change : 0;
      const loss = change < 0 ? -change : 0;
      if (state.changes < p.period) {
        state.averageGain += gain;
        state.averageLoss += loss;
        if (++state.changes === p.period) {
          state.averageGain /= p.period;
          state.averageLoss /= p.period;
        }
      } else {
        state.averageGain = (state.averageGain * (p.period - 1) + gain) / p.period;
        state.averageLoss = (state.averageLoss * (p.period - 1) + loss) / p.period;
      }
      if (state.changes === p.period) {
        const rsi = rsiOf(state.averageGain, state.averageLoss);
        state.rsi = rsi;
        if (!state.long && rsi <= p.oversold) state.long = true;
        else if (state.long && rsi >= p.overbought) state.long = false;
      }
    }
    return state.long ? p.positionFraction : 0;
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Donchian breakout: buy when the close breaks the highest high of the previous `entryPeriod`
// bars, exit when it breaks the lowest low of the previous `exitPeriod` bars.

export type DonchianBreakoutState = {
  kind: 'donchian_breakout';
  /** Bars seen. */
  bars: number;
  highs: Deque;
  lows: Deque;
  /** The channel the last bar was compared with (previous bars only); null while too short. */
  upper: number | null;
  lower: number | null;
  long: boolean;
};

export const donchianBreakout = {
  name: 'donchian_breakout',
  initialState: (p: DonchianBreakoutParameters): DonchianBreakoutState => ({
    kind: 'donchian_breakout',
    bars: 0,
    highs: newDeque(p.entryPeriod),
    lows: newDeque(p.exitPeriod),
    upper: null,
    lower: null,
    long: false,
  }),
  /** Flat → long when close > upper (strictly); long → flat when close < lower (strictly). */
  update(state: DonchianBreakoutState, candle: Candle, p: DonchianBreakoutParameters): number {
    const bar = state.bars;
    expire(state.highs, bar - p.entryPeriod);
    expire(state.lows, bar - p.exitPeriod);
    const upper = bar >= p.entryPeriod ? front(state.highs) : null;
    const lower = bar >= p.exitPeriod ? front(state.lows) : null;
    state.upper = upper;
    state.lower = lower;
    if (!state.long && upper !== null && candle.close > upper) state.long = true;
    else if (state.long && lower !== null && candle.close < lower) state.long = false;
    pushDeque(state.highs, bar, candle.high, true);
    pushDeque(state.lows, bar, candle.low, false);
    state.bars = bar + 1;
    return state.long ? p.positionFraction : 0;
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Registry.

export type SignalState = SmaCrossoverState | RsiMeanReversionState | DonchianBreakoutState;

/** A kind bound to its parameters (validated, defaults filled in). */
export interface Signal {
  kind: StrategyKindName;
  parameters: JsonObject;
  initialState(): SignalState;
  /** Moves `state` on by one bar (in place) and returns the target fraction. */
  update(state: SignalState, candle: Candle): number;
}

const wrongState = (kind: string, state: SignalState): never => {
  throw new TypeError(`a ${kind} signal was given the state of ${state.kind}`);
};

/** Each kind by name: its parameter schema (from core/strategies/kinds.ts) and its signal. */
export const SIGNALS: { [K in StrategyKindName]: (parameters: JsonObject) => Signal } = {
  sma_crossover: (raw) => {
    const p = smaKind.parameters.parse(raw);
    return {
      kind: 'sma_crossover',
      parameters: raw,
      initialState: () => smaCrossover.initialState(p),
      update: (state, candle) =>
        state.kind === 'sma_crossover'
          ? smaCrossover.update(state, candle, p)
          : wrongState('sma_crossover', state),
    };
  },
  rsi_mean_reversion: (raw) => {
    const p = rsiKind.parameters.parse(raw);
    return {
      kind: 'rsi_mean_reversion',
      parameters: raw,
      initialState: () => rsiMeanReversion.initialState(p),
      update: (state, candle) =>
        state.kind === 'rsi_mean_reversion'
          ? rsiMeanReversion.update(state, candle, p)
          : wrongState('rsi_mean_reversion', state),
    };
  },
  donchian_breakout: (raw) => {
    const p = donchianKind.parameters.parse(raw);
    return {
      kind: 'donchian_breakout',
      parameters: raw,
      initialState: () => donchianBreakout.initialState(p),
      update: (state, candle) =>
        state.kind === 'donchian_breakout'
          ? donchianBreakout.update(state, candle, p)
          : wrongState('donchian_breakout', state),
    };
  },
};

const isSignalKind = (kind: string): kind is StrategyKindName => Object.hasOwn(SIGNALS, kind);

/**
 * The signal of `kind` with `parameters` checked against the kind's schema (defaults filled in).
 * Throws the ValidationError of `validateParameters` (UNKNOWN_STRATEGY_KIND, INVALID_PARAMETERS).
 */
export function createSignal(kind: string, parameters: unknown): Signal {
  const valid = validateParameters(kind, parameters);
  if (!isSignalKind(kind)) throw new TypeError(`no signal for strategy kind ${kind}`);
  return SIGNALS[kind](valid);
}
