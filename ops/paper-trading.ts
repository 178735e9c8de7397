/**
 * Paper trading in a running QCAT: the synthetic market feed (when configured) and one paper
 * engine per portfolio, each run only by the process that holds its leader lock. ADR 008.
 */
import type pg from 'pg';
import { isUnavailable } from '../core/adapters/unavailable.js';
import { toError } from '../core/errors.js';
import {
  PostgresSnapshotStore,
  ReadModelRiskSource,
  ReadModelStrategySource,
  ensureEngineSchema,
} from '../core/adapters/postgres/engine-store.js';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import { portfolioOf } from '../core/engine/desk.js';
import { PaperEngine } from '../core/engine/engine.js';
import type { EventStore, JsonObject } from '../core/eventstore/event-store.js';
import { engineAutomation, type EngineAutomation } from '../core/capabilities/engine.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { SyntheticFeed } from '../core/market/live-feed.js';
import { DEFAULT_INSTRUMENTS } from '../core/market/synthetic.js';
import { TIMEFRAMES, type Timeframe } from '../core/strategies/kinds.js';
import { AllocationQueries } from '../projections/allocation-queries.js';
import { Leadership } from '../projections/leadership.js';
import type { Config } from './config.js';
import type { Logger } from './runtime.js';

const MINUTE = 60_000;
const FEED_NAME = 'synthetic';
/** After an engine fails, wait this long before a fresh one recovers from the log. */
const RETRY_MS = 5_000;

export type PaperTradingOptions = {
  config: Pick<
    Config,
    | 'PAPER_INITIAL_CASH'
    | 'ENGINE_POLL_MS'
    | 'MARKET_FEED'
    | 'MARKET_FEED_SPEED'
    | 'MARKET_FEED_SEED'
    | 'MARKET_FEED_HISTORY_HOURS'
  >;
  pool: pg.Pool;
  connectionString: string;
  eventStore: EventStore;
  log: Logger;
  /** Wall clock; tests pass their own. */
  now?: () => number;
};

type FeedClock = { feed: SyntheticFeed; simAnchor: number; wallAnchor: number };

export class PaperTrading {
  private readonly market: MarketDataStore;
  private readonly snapshots: PostgresSnapshotStore;
  private readonly strategies: ReadModelStrategySource;
  private readonly risk: ReadModelRiskSource;
  private readonly allocations: AllocationQueries;
  private readonly leadership: Leadership;
  private readonly engines = new Map<string, PaperEngine>();
  private readonly failedUntil = new Map<string, number>();
  private feed: FeedClock | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The last round failed because the database did not answer. */
  private unavailable = false;
  private readonly now: () => number;

  constructor(private readonly options: PaperTradingOptions) {
    this.market = new MarketDataStore(options.pool);
    this.snapshots = new PostgresSnapshotStore(options.pool);
    this.strategies = new ReadModelStrategySource(options.pool);
    this.risk = new ReadModelRiskSource(options.pool);
    this.allocations = new AllocationQueries(options.pool);
    this.leadership = new Leadership(options.connectionString);
    this.leadership.whenLost(() => {
      this.engines.clear();
      this.feed = undefined;
    });
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    await ensureEngineSchema(this.options.pool);
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.leadership.close();
  }

  /** The engines this process runs, by portfolio. */
  status(): { portfolioId: string; cycle: number; cursor: number }[] {
    return [...this.engines.values()].map((engine) => ({
      portfolioId: engine.portfolioId,
      ...engine.status(),
    }));
  }

  /** One round: the feed, then every portfolio this process leads. Exposed for tests. */
  async round(): Promise<void> {
    if (this.options.config.MARKET_FEED === 'synthetic') await this.feedRound();
    const timeframes = new Set<Timeframe>(await this.strategies.timeframes());
    for (const portfolioId of await this.snapshots.portfolios()) {
      const timeframe = portfolioId.replace(/^paper-/, '');
      if ((TIMEFRAMES as readonly string[]).includes(timeframe))
        timeframes.add(timeframe as Timeframe);
    }
    for (const timeframe of [...timeframes].sort()) await this.engineRound(timeframe);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .then(() => {
          if (this.unavailable) this.options.log.info('paper trading: the database answers again');
          this.unavailable = false;
        })
        .catch((error: unknown) => {
          // The database down: said once, then the next round (ENGINE_POLL_MS) tries again.
          if (isUnavailable(error) && this.unavailable) return;
          this.unavailable = isUnavailable(error);
          this.options.log.warn(`paper trading: ${toError(error).message}`);
        })
        .finally(() => {
          this.schedule(this.options.config.ENGINE_POLL_MS);
        });
    }, delay);
  }

  /** The automation policy's switches for the engines (capabilities 4, 5, 9), from its stream. */
  private async automationSwitches(): Promise<EngineAutomation> {
    let policy = automationPolicy.initialState();
    for (const event of await this.options.eventStore.readStream(AUTOMATION_POLICY_STREAM))
      policy = automationPolicy.evolve(
        policy,
        automationPolicy.parseEvent({ type: event.type, data: event.data as JsonObject }),
      );
    return engineAutomation(policy);
  }

  private async engineRound(timeframe: Timeframe): Promise<void> {
    const portfolioId = portfolioOf(timeframe);
    if ((this.failedUntil.get(portfolioId) ?? 0) > this.now()) return;
    if (!(await this.leadership.tryAcquire(`engine:${portfolioId}`))) return;
    let engine = this.engines.get(portfolioId);
    try {
      if (!engine) {
        engine = new PaperEngine({
          portfolioId,
          timeframe,
          currency: 'USDT',
          initialCash: this.options.config.PAPER_INITIAL_CASH,
          store: this.options.eventStore,
          candles: this.market,
          strategies: this.strategies,
          snapshots: this.snapshots,
          risk: this.risk,
          allocations: this.allocations,
          automation: { switches: () => this.automationSwitches() },
        });
        this.engines.set(portfolioId, engine);
        const replayed = await engine.recover();
        this.options.log.info(
          `paper engine ${portfolioId}: leading; cycle ${engine.status().cycle}${replayed > 0 ? ` (${replayed} replayed from its log)` : ''}`,
        );
      }
      await engine.tick();
    } catch (error) {
      // Its in-memory state may be ahead of the log: drop it, a fresh one recovers from the log.
      this.engines.delete(portfolioId);
      // The database down is the round's to report and retry (at the next poll, not in 5 s).
      if (isUnavailable(error)) throw error;
      this.failedUntil.set(portfolioId, this.now() + RETRY_MS);
      this.options.log.warn(`paper engine ${portfolioId}: ${toError(error).message}`);
    }
  }

  /** Writes the synthetic bars that closed since the last round (leader only). */
  private async feedRound(): Promise<void> {
    if (!(await this.leadership.tryAcquire(`feed:${FEED_NAME}`))) return;
    const clock = this.feed ?? (this.feed = await this.openFeed());
    const { MARKET_FEED_SPEED: speed } = this.options.config;
    const wall = this.now();
    const simNow = speed === 1 ? wall : clock.simAnchor + (wall - clock.wallAnchor) * speed;
    const candles = clock.feed.advance(simNow);
    if (candles.length > 0) await this.market.transaction((store) => store.insertCandles(candles));
  }

  /** The feed's path from its recorded origin, fast-forwarded past what is stored. */
  private async openFeed(): Promise<FeedClock> {
    const { MARKET_FEED_SEED: seed, MARKET_FEED_HISTORY_HOURS: hours } = this.options.config;
    const wall = this.now();
    const minute = Math.floor(wall / MINUTE) * MINUTE;
    await this.market.upsertInstruments(DEFAULT_INSTRUMENTS);
    const recorded = await this.market.feed(FEED_NAME, {
      seed,
      origin: minute - Math.max(hours * 60, 1) * MINUTE,
    });
    const feed = new SyntheticFeed({
      seed: recorded.seed,
      origin: recorded.origin,
      rollUps: TIMEFRAMES.filter((timeframe) => timeframe !== '1m'),
    });
    const symbols = DEFAULT_INSTRUMENTS.map((instrument) => instrument.symbol);
    const last = await this.market.latestOpenTime('1m', symbols);
    if (last !== undefined) feed.advance(last + MINUTE); // stored already: skip
    this.options.log.info(
      `market feed: synthetic (seed ${recorded.seed}), from ${new Date(feed.position).toISOString()}, speed ×${this.options.config.MARKET_FEED_SPEED}`,
    );
    return { feed, simAnchor: Math.max(feed.position, minute), wallAnchor: wall };
  }
}
