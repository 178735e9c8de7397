import { z } from 'zod';
import { TIMEFRAMES, type Timeframe } from '../strategies/kinds.js';
import { CandleAggregator, type OpenBucket } from './aggregate.js';
import { pathInstruments } from './synthetic.js';
import { SyntheticPath, type SyntheticPathState } from './synthetic-path.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from './types.js';

const MINUTE = 60_000;

export type SyntheticFeedOptions = {
  seed: number;
  /** Epoch ms of the first bar's open, on a minute boundary: the start of the one path. */
  origin: number;
  instruments?: readonly Instrument[];
  /** Longer timeframes to roll up and emit as soon as their last minute is out. */
  rollUps?: readonly Timeframe[];
};

/** Where a feed is: its path and the longer bars it has begun. Plain JSON; see `parseFeedState`. */
export type SyntheticFeedState = {
  path: SyntheticPathState;
  rollUps: { timeframe: Timeframe; open: OpenBucket[] }[];
};

/**
 * The synthetic market as a live feed: one continuous path from `origin` (core/market/synthetic.ts),
 * handed out bar by bar as a clock passes each bar's close. Every 1m bar of a minute comes for all
 * instruments together, followed by the longer bars that minute completes. Deterministic: the
 * same seed and origin give the same bars. A feed saved with `state()` and `resume`d goes on with
 * exactly the bars the uninterrupted feed would have given, without regenerating the path before.
 */
export class SyntheticFeed {
  private readonly path: SyntheticPath;
  private readonly aggregators: CandleAggregator[];

  private constructor(path: SyntheticPath, rollUps: readonly Timeframe[]) {
    this.path = path;
    this.aggregators = rollUps
      .filter((timeframe) => timeframe !== '1m')
      .map((timeframe) => new CandleAggregator(timeframe, { complete: true }));
  }

  /** A feed at the start of its path. */
  static start(options: SyntheticFeedOptions): SyntheticFeed {
    const path = new SyntheticPath(options.seed, options.origin, pathInstruments(options));
    return new SyntheticFeed(path, options.rollUps ?? []);
  }

  /**
   * The feed where `state` left it, for the same instruments and roll-ups it was saved with;
   * throws when they differ (the caller then starts the path again).
   */
  static resume(
    state: SyntheticFeedState,
    options: Pick<SyntheticFeedOptions, 'instruments' | 'rollUps'> = {},
  ): SyntheticFeed {
    const path = SyntheticPath.resume(state.path, pathInstruments(options));
    const feed = new SyntheticFeed(path, options.rollUps ?? []);
    const saved = state.rollUps.map((rollUp) => rollUp.timeframe).join(',');
    const wanted = feed.aggregators.map((aggregator) => aggregator.timeframe).join(',');
    if (saved !== wanted) throw new Error(`the saved feed rolls up ${saved}, not ${wanted}`);
    feed.aggregators.forEach((aggregator, index) =>
      aggregator.resume(state.rollUps[index]?.open ?? []),
    );
    return feed;
  }

  /** Close time of the last bar handed out (the origin before the first). */
  get position(): number {
    return this.path.next;
  }

  /** Where the feed is; `SyntheticFeed.resume` of it goes on from here. */
  state(): SyntheticFeedState {
    return {
      path: this.path.state(),
      rollUps: this.aggregators.map((aggregator) => ({
        timeframe: aggregator.timeframe,
        open: aggregator.openBuckets(),
      })),
    };
  }

  /**
   * Every bar that closes at or before `now` (epoch ms) and was not handed out yet, in order; at
   * most `maxMinutes` minutes of them, so that a long catch-up can be taken in several steps.
   */
  advance(now: number, maxMinutes = Infinity): Candle[] {
    const out: Candle[] = [];
    for (let taken = 0; taken < maxMinutes && this.path.next + MINUTE <= now; taken++) {
      for (const candle of this.path.minute()) {
        out.push(candle);
        for (const aggregator of this.aggregators) aggregator.push(candle);
      }
      this.rollUp(out);
    }
    return out;
  }

  /** Emits the longer bars whose last minute has just closed. */
  private rollUp(out: Candle[]): void {
    for (const aggregator of this.aggregators) {
      if (this.position % TIMEFRAME_MS[aggregator.timeframe] !== 0) continue;
      out.push(...aggregator.flush());
    }
  }
}

const finite = z.number();
const randomState = z.object({
  words: z.tuple([finite, finite, finite, finite]),
  spare: finite.nullable(),
});
const timeframe = z.enum(TIMEFRAMES);
const feedStateSchema = z.object({
  path: z.object({
    seed: z.number().int(),
    next: z.number().int(),
    market: z.object({
      random: randomState,
      regime: z.number().int().min(0).max(2),
      trendSign: z.union([z.literal(1), z.literal(-1)]),
      variance: finite,
      lastZ: finite,
    }),
    symbols: z.array(
      z.object({
        symbol: z.string(),
        random: randomState,
        logPrice: finite,
        flashOffset: finite,
        flashDecay: finite,
        variance: finite,
        lastZ: finite,
        lastClose: finite,
      }),
    ),
  }),
  rollUps: z.array(
    z.object({
      timeframe,
      open: z.array(
        z.object({
          symbol: z.string(),
          source: timeframe,
          openTime: z.number().int(),
          lastSourceOpen: z.number().int(),
          open: finite,
          high: finite,
          low: finite,
          close: finite,
          volume: finite,
          bars: z.number().int(),
        }),
      ),
    }),
  ),
});

/** A saved feed state read back (from a database column), or undefined if it is not one. */
export function parseFeedState(value: unknown): SyntheticFeedState | undefined {
  const parsed = feedStateSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
