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
import type { EventStore } from '../core/eventstore/event-store.js';
import { aggregateStream } from '../core/eventstore/typed-events.js';
import { engineAutomation, type EngineAutomation } from '../core/capabilities/engine.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { TIMEFRAMES, type Timeframe } from '../core/strategies/kinds.js';
import { AllocationQueries } from '../projections/allocation-queries.js';
import { Leadership } from '../projections/leadership.js';
import { FEED_NAME, SyntheticMarketFeed } from './synthetic-market-feed.js';
import type { Config } from './config.js';
import type { Logger } from './runtime.js';

/** After an engine fails, wait this long before a fresh one recovers from the log. */
const RETRY_MS = 5_000;

export type PaperTradingOptions = {
  config: Pick<
    Config,
    | 'PAPER_INITIAL_CASH'
    | 'PAPER_SLIPPAGE_BPS'
    | 'PAPER_MAKER_FEE_BPS'
    | 'PAPER_TAKER_FEE_BPS'
    | 'PAPER_MAX_VOLUME_SHARE'
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
  /** After each tick of an engine this process leads (the EngineStalled alert's gauges). */
  onTick?: (portfolioId: string, timeframe: Timeframe, cursor: number) => void;
  /** When this process stops leading an engine. */
  onDropped?: (portfolioId: string) => void;
};

export class PaperTrading {
  private readonly market: MarketDataStore;
  private readonly snapshots: PostgresSnapshotStore;
  private readonly strategies: ReadModelStrategySource;
  private readonly risk: ReadModelRiskSource;
  private readonly allocations: AllocationQueries;
  private readonly leadership: Leadership;
  private readonly engines = new Map<string, PaperEngine>();
  private readonly failedUntil = new Map<string, number>();
  private readonly feed: SyntheticMarketFeed;
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
      for (const portfolioId of this.engines.keys()) options.onDropped?.(portfolioId);
      this.engines.clear();
      this.feed.reset();
    });
    this.now = options.now ?? Date.now;
    this.feed = new SyntheticMarketFeed({
      market: this.market,
      config: options.config,
      log: options.log,
      now: this.now,
    });
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
    const { state } = await aggregateStream(
      this.options.eventStore,
      AUTOMATION_POLICY_STREAM,
      automationPolicy,
    );
    return engineAutomation(state);
  }

  private async engineRound(timeframe: Timeframe): Promise<void> {
    const portfolioId = portfolioOf(timeframe);
    if ((this.failedUntil.get(portfolioId) ?? 0) > this.now()) return;
    if (!(await this.leadership.tryAcquire(`engine:${portfolioId}`))) return;
    let engine = this.engines.get(portfolioId);
    try {
      if (!engine) {
        const config = this.options.config;
        engine = new PaperEngine({
          portfolioId,
          timeframe,
          currency: 'USDT',
          initialCash: config.PAPER_INITIAL_CASH,
          costs: {
            slippageBps: config.PAPER_SLIPPAGE_BPS,
            makerFeeBps: config.PAPER_MAKER_FEE_BPS,
            takerFeeBps: config.PAPER_TAKER_FEE_BPS,
            maxVolumeShare: config.PAPER_MAX_VOLUME_SHARE,
          },
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
      this.options.onTick?.(portfolioId, timeframe, engine.status().cursor);
    } catch (error) {
      // Its in-memory state may be ahead of the log: drop it, a fresh one recovers from the log.
      this.engines.delete(portfolioId);
      // The database down is the round's to report and retry (at the next poll, not in 5 s).
      if (isUnavailable(error)) throw error;
      this.failedUntil.set(portfolioId, this.now() + RETRY_MS);
      this.options.log.warn(`paper engine ${portfolioId}: ${toError(error).message}`);
    }
  }

  /** The synthetic feed's round, while this process leads it. */
  private async feedRound(): Promise<void> {
    if (!(await this.leadership.tryAcquire(`feed:${FEED_NAME}`))) return;
    await this.feed.round();
  }
}
