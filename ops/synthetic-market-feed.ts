/**
 * The synthetic market written live (`MARKET_FEED=synthetic`): the bars of the synthetic path
 * (core/market/live-feed.ts) as the market clock passes their close, with where the path stands
 * saved beside them, so a restart or a new leader goes on from there. Run only by the process that
 * leads the feed (ops/paper-trading.ts holds the lock).
 */
import type { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { toError } from '../core/errors.js';
import { parseFeedState, SyntheticFeed } from '../core/market/live-feed.js';
import { DEFAULT_INSTRUMENTS } from '../core/market/synthetic.js';
import { TIMEFRAMES } from '../core/strategies/kinds.js';
import type { Config } from './config.js';
import type { Logger } from './runtime.js';

export const FEED_NAME = 'synthetic';
const MINUTE = 60_000;
/** At most this many minutes of bars per round (a day: 12 × 1,440 1m bars and their roll-ups). */
export const CATCH_UP_MINUTES = 1_440;
const ROLL_UPS = TIMEFRAMES.filter((timeframe) => timeframe !== '1m');

export type SyntheticMarketFeedOptions = {
  market: MarketDataStore;
  config: Pick<Config, 'MARKET_FEED_SPEED' | 'MARKET_FEED_SEED' | 'MARKET_FEED_HISTORY_HOURS'>;
  log: Logger;
  /** Wall clock (epoch ms). */
  now: () => number;
};

/** The feed and the market clock's anchor: market time `market` at wall time `wall`. */
type Clock = { feed: SyntheticFeed; market: number; wall: number };

export class SyntheticMarketFeed {
  private clock: Clock | undefined;

  constructor(private readonly options: SyntheticMarketFeedOptions) {}

  /** Forgets the feed held in memory (leadership lost): the next round reads it back. */
  reset(): void {
    this.clock = undefined;
  }

  /**
   * Writes the bars that closed since the last round, with the feed's state in the same
   * transaction; answers how many. The market clock never passes the wall clock: at speed 1 it is
   * the wall clock (bars missed while no one led are caught up); at speed N > 1 it runs N times
   * faster from where the stored bars end until it reaches now, then in real time.
   */
  async round(): Promise<number> {
    const clock = this.clock ?? (this.clock = await this.open());
    const speed = this.options.config.MARKET_FEED_SPEED;
    const wall = this.options.now();
    const marketNow =
      speed === 1 ? wall : Math.min(wall, clock.market + (wall - clock.wall) * speed);
    // A long catch-up is taken a day per round: the event loop is never blocked for long.
    const candles = clock.feed.advance(marketNow, CATCH_UP_MINUTES);
    if (candles.length === 0) return 0;
    try {
      await this.options.market.transaction(async (store) => {
        await store.insertCandles(candles);
        await store.saveFeedState(FEED_NAME, clock.feed.state());
      });
    } catch (error) {
      this.reset(); // the feed in memory is ahead of what was stored: read it back next round
      throw error;
    }
    return candles.length;
  }

  /**
   * The feed where its saved state left it; without a usable one (saved by an earlier version,
   * other instruments), its path from the recorded origin, fast-forwarded past what is stored.
   */
  private async open(): Promise<Clock> {
    const { market, config, log } = this.options;
    const wall = this.options.now();
    const minute = Math.floor(wall / MINUTE) * MINUTE;
    await market.upsertInstruments(DEFAULT_INSTRUMENTS);
    const recorded = await market.feed(FEED_NAME, {
      seed: config.MARKET_FEED_SEED,
      origin: minute - Math.max(config.MARKET_FEED_HISTORY_HOURS * 60, 1) * MINUTE,
    });
    const saved = parseFeedState(await market.feedState(FEED_NAME));
    let feed: SyntheticFeed | undefined;
    if (saved?.path.seed === recorded.seed) {
      try {
        feed = SyntheticFeed.resume(saved, { rollUps: ROLL_UPS });
      } catch (error) {
        log.warn(`market feed: its saved state is not used (${toError(error).message})`);
      }
    }
    const resumed = feed !== undefined;
    feed ??= SyntheticFeed.start({
      seed: recorded.seed,
      origin: recorded.origin,
      rollUps: ROLL_UPS,
    });
    const symbols = DEFAULT_INSTRUMENTS.map((instrument) => instrument.symbol);
    const last = await market.latestOpenTime('1m', symbols);
    if (last !== undefined) feed.advance(last + MINUTE); // stored already: skip
    log.info(
      `market feed: synthetic (seed ${recorded.seed}), ${resumed ? 'resumed' : 'its path'} from ${new Date(feed.position).toISOString()}, speed ×${config.MARKET_FEED_SPEED}`,
    );
    return { feed, market: feed.position, wall };
  }
}
