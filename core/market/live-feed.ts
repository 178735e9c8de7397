import type { Timeframe } from '../strategies/kinds.js';
import { CandleAggregator } from './aggregate.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from './synthetic.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from './types.js';

/** Far enough ahead that the feed never runs out (the generator is lazy). */
const HORIZON_MS = 20 * 365 * 86_400_000;
const MINUTE = 60_000;

export type SyntheticFeedOptions = {
  seed: number;
  /** Epoch ms of the first bar's open, on a minute boundary: the start of the one path. */
  origin: number;
  instruments?: readonly Instrument[];
  /** Longer timeframes to roll up and emit as soon as their last minute is out. */
  rollUps?: readonly Timeframe[];
};

/**
 * The synthetic market as a live feed: one continuous path from `origin` (core/market/synthetic.ts),
 * handed out bar by bar as a clock passes each bar's close. Every 1m bar of a minute comes for all
 * instruments together, followed by the longer bars that minute completes. Deterministic: the
 * same seed and origin give the same bars, so a restarted feed regenerates the path, skips what
 * was already stored (`advance` up to it, discarding the output) and carries on exactly.
 */
export class SyntheticFeed {
  private readonly minutes: Generator<Candle, void, undefined>;
  private readonly aggregators: CandleAggregator[];
  private pending: Candle | undefined;
  /** Close time of the last minute handed out. */
  private closedUntil: number;

  constructor(options: SyntheticFeedOptions) {
    this.minutes = generateCandles({
      seed: options.seed,
      from: options.origin,
      to: options.origin + HORIZON_MS,
      instruments: options.instruments ?? DEFAULT_INSTRUMENTS,
    });
    this.aggregators = (options.rollUps ?? [])
      .filter((timeframe) => timeframe !== '1m')
      .map((timeframe) => new CandleAggregator(timeframe, { complete: true }));
    this.closedUntil = options.origin;
  }

  /** Close time of the last bar handed out (the origin before the first). */
  get position(): number {
    return this.closedUntil;
  }

  /** Every bar that closes at or before `now` (epoch ms) and was not handed out yet, in order. */
  advance(now: number): Candle[] {
    const out: Candle[] = [];
    for (;;) {
      const candle = this.pending ?? this.nextMinute();
      this.pending = undefined;
      if (!candle) return out;
      if (candle.openTime + MINUTE > now) {
        this.pending = candle;
        return out;
      }
      out.push(candle);
      for (const aggregator of this.aggregators) aggregator.push(candle);
      this.closedUntil = candle.openTime + MINUTE;
      // All instruments of the minute are consecutive; the longer bars follow the last of them.
      const next = this.nextMinute();
      this.pending = next;
      if (!next || next.openTime !== candle.openTime) this.rollUp(out);
    }
  }

  private nextMinute(): Candle | undefined {
    const next = this.minutes.next();
    return next.done === true ? undefined : next.value;
  }

  /** Emits the longer bars whose last minute has just closed. */
  private rollUp(out: Candle[]): void {
    for (const aggregator of this.aggregators) {
      if (this.closedUntil % TIMEFRAME_MS[aggregator.timeframe] !== 0) continue;
      out.push(...aggregator.flush());
    }
  }
}
