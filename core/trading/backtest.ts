import { ValidationError } from '../errors.js';
import type { Candle } from '../market/types.js';
import { tradeOf, type ClosedTrade, type Position } from './accounting.js';
import { computeStatistics, type Statistics } from './statistics.js';
import { Stepper, type EngineState, type StepperConfig, type TradingEvent } from './stepper.js';

/**
 * A backtest is the step function run over a range of candles: nothing else decides, fills or
 * books. Around it, this file only watches: the events, the round trips, the equity at the end of
 * each UTC day and how many bars ended in a position.
 */

const DAY_MS = 86_400_000;

export type DailyEquity = {
  /** The UTC day, `YYYY-MM-DD`. */
  date: string;
  /** Mark-to-market equity after the last bar that opened that day. */
  equity: number;
};

export type BacktestOptions = {
  /** Only candles with from ≤ openTime < to. */
  from?: number;
  to?: number;
  /** Keep every event in the result (default true; trades and equity are kept regardless). */
  keepEvents?: boolean;
  /** Continue from this state instead of the stepper's initial state (it is updated in place). */
  state?: EngineState;
};

export type BacktestResult = {
  /** Candles the step function processed. */
  bars: number;
  /** openTime of the first and last candle in the range; null when it was empty. */
  firstBar: number | null;
  lastBar: number | null;
  events: TradingEvent[];
  trades: ClosedTrade[];
  /** One entry per UTC day from the first candle's day to the last one's (gaps carry the equity). */
  equity: DailyEquity[];
  statistics: Statistics;
  state: EngineState;
};

const isoDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** Days `from` up to (not including) `through` all ended at `value` (no bars in the later ones). */
function closeDays(into: DailyEquity[], from: number, through: number, value: number): void {
  for (let day = from; day < through; day++) into.push({ date: isoDay(day), equity: value });
}

/**
 * Runs the candles (ascending openTime; candles of several symbols interleaved by time) through
 * `step`. The statistics start from the initial cash (E_0), then one equity per UTC day.
 */
export function backtest(
  stepperOrConfig: Stepper | StepperConfig,
  candles: readonly Candle[],
  options: BacktestOptions = {},
): BacktestResult {
  const stepper =
    stepperOrConfig instanceof Stepper ? stepperOrConfig : new Stepper(stepperOrConfig);
  const { from = -Infinity, to = Infinity, keepEvents = true } = options;
  let state = options.state ?? stepper.initialState();
  const startEquity = options.state ? stepper.equity(state) : stepper.config.initialCash;

  const events: TradingEvent[] = [];
  const trades: ClosedTrade[] = [];
  const equity: DailyEquity[] = [];
  let day: number | null = null;
  let previous = -Infinity;
  let firstBar: number | null = null;
  let lastBar: number | null = null;
  let bars = 0;
  let barsInPosition = 0;

  for (const candle of candles) {
    const time = candle.openTime;
    if (time < previous)
      throw new ValidationError(
        'CANDLES_NOT_SORTED',
        `candles must be in ascending openTime order: ${time} after ${previous}`,
      );
    previous = time;
    if (time < from || time >= to) continue;
    const today = Math.floor(time / DAY_MS);
    if (today !== day) {
      if (day !== null) closeDays(equity, day, today, stepper.equity(state));
      day = today;
    }
    const processed = state.bars;
    const result = stepper.step(state, candle);
    state = result.state;
    if (state.bars === processed) continue;
    bars++;
    firstBar ??= time;
    lastBar = time;
    const stepEvents = result.events;
    for (let i = 0; i < stepEvents.length; i++) {
      const event = stepEvents[i] as TradingEvent;
      if (keepEvents) events.push(event);
      if (event.type === 'PositionClosed') trades.push(tradeOf(event.data));
    }
    const positions = state.account.positions;
    for (let i = 0; i < positions.length; i++) {
      if ((positions[i] as Position).quantity !== 0) {
        barsInPosition++;
        break;
      }
    }
  }
  if (day !== null) closeDays(equity, day, day + 1, stepper.equity(state));

  const statistics = computeStatistics({
    equity: [startEquity, ...equity.map((entry) => entry.equity)],
    tradePnl: trades.map((trade) => trade.netPnl),
    bars,
    barsInPosition,
  });
  return { bars, firstBar, lastBar, events, trades, equity, statistics, state };
}
