import type { EventStore, JsonObject } from '../eventstore/event-store.js';
import type { Candle, Instrument } from '../market/types.js';
import type { Timeframe } from '../strategies/kinds.js';
import { type EngineState, type StepperConfig } from '../trading/stepper.js';
import { type PaperVenueCosts } from '../trading/venue.js';
import { type RiskSnapshot } from '../risk/checks.js';
import { type EngineAutomation } from '../capabilities/engine.js';
import { type AllocationSource } from './allocation.js';
import { type EngineRiskState } from './risk-control.js';

/** The paper engine's ports and options (engine.ts): what it reads, where it keeps its snapshots. */
/** What the engine needs to know about a strategy to trade it. */
export type StrategyBook = {
  strategyId: string;
  status: string;
  kind: string;
  parameters: JsonObject;
  symbols: string[];
  /** Capital the strategy asked for, in the quote currency. */
  capital: number;
};

/** The engine's inputs from outside the log (ports; adapters live in core/adapters). */
export interface CandleSource {
  /** Candles of `timeframe` for `symbols` with openTime > `after`, by openTime then symbol. */
  candlesAfter(
    timeframe: Timeframe,
    symbols: readonly string[],
    after: number,
    limit: number,
  ): Promise<Candle[]>;
  /** openTime of the newest stored candle of `timeframe` among `symbols`, if any. */
  latestOpenTime(timeframe: Timeframe, symbols: readonly string[]): Promise<number | undefined>;
  instruments(symbols: readonly string[]): Promise<Instrument[]>;
}

export interface StrategySource {
  /** Strategies of this timeframe in paper, live, paused or retired state. */
  strategies(timeframe: Timeframe): Promise<StrategyBook[]>;
}

export type EngineSnapshot = {
  portfolioId: string;
  /** The last cycle folded into `state`. */
  cycle: number;
  config: PortfolioConfig;
  state: EngineState;
  /** openTime of the last bar time taken (the candle cursor). */
  cursor: number;
  /** Last desk revision taken in; -1 for none. */
  inboxRevision: number;
  /** Event id of cycle `cycle`'s EngineCycleOpened. */
  recordId: string;
  /** Risk state (absent in snapshots of engines without risk). */
  risk?: EngineRiskState;
  /** Global position of the engine's last own risk event (decimal). */
  riskPosition?: string;
};

/** The risk streams folded (the `risk_snapshot` read model) and the position it is at. */
export interface RiskSource {
  snapshot(): Promise<{ snapshot: RiskSnapshot; position: bigint }>;
}

export interface SnapshotStore {
  load(portfolioId: string): Promise<EngineSnapshot | undefined>;
  save(snapshot: EngineSnapshot): Promise<void>;
}

/**
 * A Stepper configuration without the risk check and headroom (code, not data), with the
 * automation policy's switches for what the engine applies itself (capabilities 4, 5, 9);
 * `sizingHeld` says why the portfolio's balance-driven sizing is not applied.
 */
export type PortfolioConfig = Omit<StepperConfig, 'risk' | 'headroom'> & {
  automation?: { autoExits: boolean; dynamicExits: boolean; sizingHeld: string | null };
};

/** The automation policy's switches for the engine (core/capabilities/engine.ts). */
export interface AutomationSource {
  switches(): Promise<EngineAutomation>;
}

export type EngineOptions = {
  portfolioId: string;
  timeframe: Timeframe;
  currency: string;
  initialCash: number;
  store: EventStore;
  candles: CandleSource;
  strategies: StrategySource;
  snapshots: SnapshotStore;
  /** The pre-trade check; default: every order passes. */
  /**
   * Risk control (docs/risk.md): the pre-trade check, breakers, kill switch and exits. Without
   * it every order passes and nothing else runs (as in a backtest).
   */
  risk?: RiskSource;
  /**
   * The portfolio's applied allocation (core/portfolio): with one whose policy turns sizing on, the
   * members trade weight × equity and their positions follow it (docs/portfolio.md); without,
   * each strategy trades capital / initialCash of equity, as before.
   */
  allocations?: AllocationSource;
  /**
   * The paper venue's costs for cycles from now on (fees, slippage, volume cap); default: the
   * venue's defaults. Recorded in the write-ahead log with the configuration, so a replay uses the
   * costs a cycle was run with, whatever is configured at the time of the replay.
   */
  costs?: PaperVenueCosts;
  /** The automation policy (capabilities 4, 5, 9); without it all three are on, as before. */
  automation?: AutomationSource;
  /** Bars fetched per round; default 500. */
  batchSize?: number;
  /** Save a snapshot at least every this many cycles (and whenever a round ends); default 100. */
  snapshotEvery?: number;
  /** Write-ahead records read per page while recovering; default 1,000. */
  recoveryPage?: number;
  /** Where the first cycle starts when the portfolio is new; default: after the newest bar. */
  startAfter?: number;
};
