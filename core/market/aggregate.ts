import { ValidationError } from '../errors.js';
import type { Timeframe } from '../strategies/kinds.js';
import { TIMEFRAME_MS, type Candle } from './types.js';

export interface AggregateOptions {
  /**
   * Drop buckets that lack some of their source bars (the first and last of a range that does
   * not start or end on a bucket boundary, or any bucket with a gap). Default false: every bucket
   * with at least one source bar is emitted.
   */
  complete?: boolean;
}

/** A bucket still open: part of an aggregator's saved state. */
export interface OpenBucket {
  symbol: string;
  source: Timeframe;
  openTime: number;
  lastSourceOpen: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  bars: number;
}

/**
 * Volume sums rounded to 8 decimals (the finest quantity step exchanges use), so that adding
 * 0.1 and 0.2 gives 0.3 rather than 0.30000000000000004.
 */
const roundVolume = (volume: number): number => Math.round(volume * 1e8) / 1e8;

/**
 * Rolls candles of a shorter timeframe into `timeframe` buckets aligned to UTC (a bucket starts
 * where `openTime % TIMEFRAME_MS[timeframe] === 0`: 1d bars at 00:00 UTC, 4h at 00, 04, 08 …).
 * Push candles in time order per symbol; symbols may be interleaved. A bucket is finished when a
 * candle of the same symbol arrives in a later bucket, or at `flush()`.
 */
export class CandleAggregator {
  private readonly buckets = new Map<string, Omit<OpenBucket, 'symbol'>>();
  private readonly targetMs: number;
  private readonly complete: boolean;

  constructor(
    readonly timeframe: Timeframe,
    options: AggregateOptions = {},
  ) {
    this.targetMs = TIMEFRAME_MS[timeframe];
    this.complete = options.complete ?? false;
  }

  /** The buckets still open, in the order their symbols were first pushed. */
  openBuckets(): OpenBucket[] {
    return [...this.buckets].map(([symbol, bucket]) => ({ symbol, ...bucket }));
  }

  /** Goes on from saved `openBuckets()` (an aggregator of the same timeframe and options). */
  resume(buckets: readonly OpenBucket[]): this {
    this.buckets.clear();
    for (const { symbol, ...bucket } of buckets) this.buckets.set(symbol, bucket);
    return this;
  }

  /** Adds a candle; answers the bucket of its symbol that it finished, if any. */
  push(candle: Candle): Candle | undefined {
    const sourceMs = TIMEFRAME_MS[candle.timeframe];
    if (sourceMs > this.targetMs || this.targetMs % sourceMs !== 0) {
      throw new ValidationError(
        'INVALID_TIMEFRAME',
        `cannot aggregate ${candle.timeframe} candles into ${this.timeframe}: the target must be a whole multiple of the source`,
        { source: candle.timeframe, target: this.timeframe },
      );
    }
    const openTime =
      candle.openTime - (((candle.openTime % this.targetMs) + this.targetMs) % this.targetMs);
    const current = this.buckets.get(candle.symbol);
    if (current) {
      if (current.source !== candle.timeframe) {
        throw new ValidationError(
          'MIXED_TIMEFRAMES',
          `${candle.symbol}: ${candle.timeframe} candle among ${current.source} candles`,
          { symbol: candle.symbol },
        );
      }
      if (candle.openTime <= current.lastSourceOpen) {
        throw new ValidationError(
          'CANDLES_OUT_OF_ORDER',
          `${candle.symbol}: candle at ${new Date(candle.openTime).toISOString()} is not after the previous one at ${new Date(current.lastSourceOpen).toISOString()}`,
          { symbol: candle.symbol },
        );
      }
      if (current.openTime === openTime) {
        if (candle.high > current.high) current.high = candle.high;
        if (candle.low < current.low) current.low = candle.low;
        current.close = candle.close;
        current.volume += candle.volume;
        current.bars++;
        current.lastSourceOpen = candle.openTime;
        return undefined;
      }
    }
    this.buckets.set(candle.symbol, {
      source: candle.timeframe,
      openTime,
      lastSourceOpen: candle.openTime,
      open: candle.open,
      high: candle.high,
      low: candle.low,
      close: candle.close,
      volume: candle.volume,
      bars: 1,
    });
    return current ? this.finish(candle.symbol, current) : undefined;
  }

  /** Finishes every open bucket, in the order their symbols were first pushed. */
  flush(): Candle[] {
    const finished: Candle[] = [];
    for (const [symbol, bucket] of this.buckets) {
      const candle = this.finish(symbol, bucket);
      if (candle) finished.push(candle);
    }
    this.buckets.clear();
    return finished;
  }

  private finish(symbol: string, bucket: Omit<OpenBucket, 'symbol'>): Candle | undefined {
    if (this.complete && bucket.bars * TIMEFRAME_MS[bucket.source] < this.targetMs)
      return undefined;
    return {
      symbol,
      timeframe: this.timeframe,
      openTime: bucket.openTime,
      open: bucket.open,
      high: bucket.high,
      low: bucket.low,
      close: bucket.close,
      volume: roundVolume(bucket.volume),
    };
  }
}

/**
 * Candles rolled up into `timeframe` (5m, 15m, 1h, 4h, 1d …), UTC aligned; see CandleAggregator.
 * Input in time order per symbol (symbols may be interleaved); output in the order buckets finish.
 */
export function* aggregateCandles(
  candles: Iterable<Candle>,
  timeframe: Timeframe,
  options: AggregateOptions = {},
): Generator<Candle, void, undefined> {
  const aggregator = new CandleAggregator(timeframe, options);
  for (const candle of candles) {
    const finished = aggregator.push(candle);
    if (finished) yield finished;
  }
  yield* aggregator.flush();
}
