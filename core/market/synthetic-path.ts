/**
 * The synthetic market's model as a path that can stop and go on (core/market/synthetic.ts has the
 * model and its determinism): one minute at a time for every instrument, its whole state plain
 * JSON (`state()`), so a live feed resumes from where it stopped instead of regenerating from its
 * origin. `SyntheticPath.resume(state)` then draws exactly what the uninterrupted path would.
 */
import { Random, type RandomState } from './random.js';
import type { Candle, Instrument } from './types.js';

/** How a symbol behaves in the synthetic market. */
export interface SyntheticProfile {
  /** Price at the first bar's open. */
  startPrice: number;
  /** Annualised volatility of its 1m log returns (0.6 = 60 %), jumps and flash moves aside. */
  annualVolatility: number;
  /** Sensitivity to the common market factor (BTC = 1). */
  beta: number;
  /** Typical traded value per day, in the quote currency. */
  dailyQuoteVolume: number;
}

const MINUTES_PER_YEAR = 365 * 24 * 60;
const SQRT_MINUTES_PER_YEAR = Math.sqrt(MINUTES_PER_YEAR);

/** Annualised volatility of the common market factor. */
const MARKET_VOLATILITY = 0.5;
/** Share of a symbol's variance that is its own at least, whatever its beta. */
const MIN_IDIOSYNCRATIC_SHARE = 0.1;

// GARCH(1,1) of a variance multiplier h with mean 1: h' = ω + α·h·z² + β·h.
const GARCH_ALPHA = 0.05;
const GARCH_BETA = 0.94;
const GARCH_OMEGA = 1 - GARCH_ALPHA - GARCH_BETA;
const GARCH_MAX = 50;
/** Variance multiplier at least, right after a jump. */
const POST_JUMP_VARIANCE = 4;

const MARKET_JUMP_RATE = 1 / (3 * 1440);
const MARKET_JUMP_SIGMAS = 12;
const SYMBOL_JUMP_RATE = 1 / (2 * 1440);
const SYMBOL_JUMP_SIGMAS = 10;

const FLASH_RATE = 1 / (14 * 1440);
const FLASH_DOWN_SHARE = 0.75;
/** Offsets below this (in log price) are over. */
const FLASH_DONE = 1e-5;

/** Drift of a trending regime per bar, in bar-sigmas of the market factor. */
const TREND_DRIFT = 0.06;

interface Regime {
  meanBars: number;
  volatility: number;
  /** Where it goes when it ends: probabilities of calm, trending, volatile. */
  next: readonly [number, number, number];
}
const CALM = 0;
const TRENDING = 1;
const VOLATILE = 2;
const REGIMES: readonly [Regime, Regime, Regime] = [
  { meanBars: 720, volatility: 0.7, next: [0, 0.6, 0.4] },
  { meanBars: 360, volatility: 1, next: [0.65, 0, 0.35] },
  { meanBars: 90, volatility: 2, next: [0.55, 0.45, 0] },
];

/**
 * Long-run share of time in each regime: the stationary distribution of the chain of regime
 * changes, weighted by mean stay.
 */
function stationaryShares(): [number, number, number] {
  let visits = [1 / 3, 1 / 3, 1 / 3];
  for (let i = 0; i < 200; i++) {
    const next = [0, 0, 0];
    REGIMES.forEach((regime, from) => {
      regime.next.forEach((p, to) => {
        next[to] = (next[to] ?? 0) + (visits[from] ?? 0) * p;
      });
    });
    visits = next;
  }
  const weighted = REGIMES.map((regime, k) => (visits[k] ?? 0) * regime.meanBars);
  const total = weighted.reduce((a, b) => a + b, 0);
  return [(weighted[0] ?? 0) / total, (weighted[1] ?? 0) / total, (weighted[2] ?? 0) / total];
}
const SHARES = stationaryShares();
/** Regime volatilities scaled so that their long-run mean variance is 1. */
const REGIME_VOLATILITY: readonly [number, number, number] = (() => {
  const meanVariance = REGIMES.reduce(
    (sum, regime, k) => sum + (SHARES[k] ?? 0) * regime.volatility ** 2,
    0,
  );
  const scale = 1 / Math.sqrt(meanVariance);
  return [
    REGIMES[CALM].volatility * scale,
    REGIMES[TRENDING].volatility * scale,
    REGIMES[VOLATILE].volatility * scale,
  ];
})();

/** Relative activity by UTC hour: a daily cycle busiest around 14:00 UTC, mean 1. */
const HOURLY_ACTIVITY: readonly number[] = Array.from(
  { length: 24 },
  (_, hour) => 1 + 0.35 * Math.cos((2 * Math.PI * (hour - 14)) / 24),
);

/** Rounds to a multiple of `step` without binary noise (0.1 + 0.2 stays 0.3 at step 0.1). */
export function stepRounder(step: number): (value: number) => number {
  const inverse = 1 / step;
  const whole = Math.round(inverse);
  if (whole >= 1 && Math.abs(inverse - whole) <= 1e-9 * whole)
    return (value) => Math.round(value * whole) / whole;
  return (value) => Math.round(value / step) * step;
}

/** What a symbol carries from one minute to the next. */
export type SymbolPathState = {
  symbol: string;
  random: RandomState;
  /** Log of the fundamental price, without the flash offset. */
  logPrice: number;
  flashOffset: number;
  flashDecay: number;
  variance: number;
  lastZ: number;
  lastClose: number;
};

/** Everything the path carries from one minute to the next: plain JSON, finite numbers. */
export type SyntheticPathState = {
  seed: number;
  /** Open time of the next minute. */
  next: number;
  market: {
    random: RandomState;
    regime: number;
    trendSign: number;
    variance: number;
    lastZ: number;
  };
  symbols: SymbolPathState[];
};

interface SymbolModel extends Omit<SymbolPathState, 'symbol' | 'random'> {
  instrument: Instrument;
  random: Random;
  beta: number;
  /** Per-bar standard deviations: the symbol's total and its own part. */
  barSigma: number;
  idioSigma: number;
  quotePerBar: number;
  roundPrice: (value: number) => number;
  roundLot: (value: number) => number;
  /** Flash sizes scale with the square root of the symbol's volatility. */
  flashScale: number;
}

export type PathInstrument = { instrument: Instrument; profile: SyntheticProfile };

export class SyntheticPath {
  private readonly symbols: SymbolModel[];
  private readonly market: Random;
  private regime: number;
  private trendSign: number;
  private marketVariance = 1;
  private marketZ = 0;
  private nextOpen: number;

  /** A new path whose first minute opens at `from` (instruments validated by the caller). */
  constructor(
    private readonly seed: number,
    from: number,
    instruments: readonly PathInstrument[],
    resumed?: SyntheticPathState,
  ) {
    this.nextOpen = resumed?.next ?? from;
    const marketSigma = MARKET_VOLATILITY / SQRT_MINUTES_PER_YEAR;
    this.symbols = instruments.map(({ instrument, profile }, index) => {
      const barSigma = profile.annualVolatility / SQRT_MINUTES_PER_YEAR;
      const systematic = (profile.beta * marketSigma) ** 2;
      const idioVariance = Math.max(
        barSigma ** 2 - systematic,
        MIN_IDIOSYNCRATIC_SHARE * barSigma ** 2,
      );
      const roundPrice = stepRounder(instrument.tickSize);
      const open = Math.max(roundPrice(profile.startPrice), instrument.tickSize);
      const saved = resumed?.symbols[index];
      if (resumed && saved?.symbol !== instrument.symbol)
        throw new Error(`the saved path has no state for ${instrument.symbol} at ${index}`);
      const random = saved
        ? Random.resume(saved.random)
        : new Random(`qcat-synthetic:${seed}:${instrument.symbol}`);
      return {
        instrument,
        random,
        beta: profile.beta,
        barSigma,
        idioSigma: Math.sqrt(idioVariance),
        quotePerBar: profile.dailyQuoteVolume / 1440,
        roundPrice,
        roundLot: stepRounder(instrument.lotSize),
        logPrice: saved?.logPrice ?? Math.log(open),
        flashOffset: saved?.flashOffset ?? 0,
        flashDecay: saved?.flashDecay ?? 0,
        flashScale: Math.sqrt(profile.annualVolatility / 0.8),
        variance: saved?.variance ?? 1,
        lastZ: saved?.lastZ ?? 0,
        lastClose: saved?.lastClose ?? open,
      };
    });
    if (resumed) {
      this.market = Random.resume(resumed.market.random);
      this.regime = resumed.market.regime;
      this.trendSign = resumed.market.trendSign;
      this.marketVariance = resumed.market.variance;
      this.marketZ = resumed.market.lastZ;
      return;
    }
    this.market = new Random(`qcat-synthetic:${seed}:market`);
    // The first regime is drawn from the long-run shares.
    const first = this.market.uniform();
    this.regime =
      first < SHARES[CALM] ? CALM : first < SHARES[CALM] + SHARES[TRENDING] ? TRENDING : VOLATILE;
    this.trendSign = this.market.uniform() < 0.5 ? -1 : 1;
  }

  /** The path from a saved `state()`, for the same instruments and profiles. */
  static resume(state: SyntheticPathState, instruments: readonly PathInstrument[]): SyntheticPath {
    if (state.symbols.length !== instruments.length)
      throw new Error(
        `the saved path has ${state.symbols.length} instruments, not ${instruments.length}`,
      );
    return new SyntheticPath(state.seed, state.next, instruments, state);
  }

  /** Open time of the next minute `minute()` gives. */
  get next(): number {
    return this.nextOpen;
  }

  state(): SyntheticPathState {
    return {
      seed: this.seed,
      next: this.nextOpen,
      market: {
        random: this.market.state(),
        regime: this.regime,
        trendSign: this.trendSign,
        variance: this.marketVariance,
        lastZ: this.marketZ,
      },
      symbols: this.symbols.map((s) => ({
        symbol: s.instrument.symbol,
        random: s.random.state(),
        logPrice: s.logPrice,
        flashOffset: s.flashOffset,
        flashDecay: s.flashDecay,
        variance: s.variance,
        lastZ: s.lastZ,
        lastClose: s.lastClose,
      })),
    };
  }

  /** The next minute's candle of every instrument, in their order. */
  minute(): Candle[] {
    const openTime = this.nextOpen;
    this.nextOpen += 60_000;
    const market = this.market;
    const marketSigma = MARKET_VOLATILITY / SQRT_MINUTES_PER_YEAR;
    // Market: regime change, GARCH variance, shock, jump, trend drift.
    const current = REGIMES[this.regime as 0 | 1 | 2];
    if (market.uniform() < 1 / current.meanBars) {
      const u = market.uniform();
      const [toCalm, toTrending] = current.next;
      this.regime = u < toCalm ? CALM : u < toCalm + toTrending ? TRENDING : VOLATILE;
      if (this.regime === TRENDING) this.trendSign = market.uniform() < 0.5 ? -1 : 1;
    }
    const regimeVolatility = REGIME_VOLATILITY[this.regime as 0 | 1 | 2];
    this.marketVariance = Math.min(
      GARCH_OMEGA +
        GARCH_ALPHA * this.marketVariance * this.marketZ * this.marketZ +
        GARCH_BETA * this.marketVariance,
      GARCH_MAX,
    );
    this.marketZ = market.normal();
    const marketDiffusion = marketSigma * regimeVolatility * Math.sqrt(this.marketVariance);
    let marketReturn = marketDiffusion * this.marketZ;
    if (market.uniform() < MARKET_JUMP_RATE) {
      marketReturn += market.normal() * MARKET_JUMP_SIGMAS * marketSigma;
      this.marketVariance = Math.max(this.marketVariance, POST_JUMP_VARIANCE);
    }
    if (this.regime === TRENDING) marketReturn += this.trendSign * TREND_DRIFT * marketSigma;
    const activity = HOURLY_ACTIVITY[((Math.floor(openTime / 3_600_000) % 24) + 24) % 24] ?? 1;
    return this.symbols.map((s) =>
      this.symbolMinute(s, openTime, marketReturn, marketDiffusion, regimeVolatility, activity),
    );
  }

  private symbolMinute(
    s: SymbolModel,
    openTime: number,
    marketReturn: number,
    marketDiffusion: number,
    regimeVolatility: number,
    activity: number,
  ): Candle {
    const random = s.random;
    s.variance = Math.min(
      GARCH_OMEGA + GARCH_ALPHA * s.variance * s.lastZ * s.lastZ + GARCH_BETA * s.variance,
      GARCH_MAX,
    );
    const z = random.normal();
    s.lastZ = z;
    const idioDiffusion = s.idioSigma * regimeVolatility * Math.sqrt(s.variance);
    let logReturn = s.beta * marketReturn + idioDiffusion * z;
    if (random.uniform() < SYMBOL_JUMP_RATE) {
      logReturn += random.normal() * SYMBOL_JUMP_SIGMAS * s.barSigma;
      s.variance = Math.max(s.variance, POST_JUMP_VARIANCE);
    }
    const previousLog = s.logPrice + s.flashOffset;
    s.logPrice += logReturn;

    // Flash move: a sharp drop or spike now, mostly undone over the next few bars.
    let wick = 0;
    if (s.flashOffset !== 0) {
      s.flashOffset *= s.flashDecay;
      if (Math.abs(s.flashOffset) < FLASH_DONE) s.flashOffset = 0;
    } else if (random.uniform() < FLASH_RATE) {
      const sign = random.uniform() < FLASH_DOWN_SHARE ? -1 : 1;
      const size = (0.025 + 0.045 * random.uniform()) * s.flashScale * sign;
      const kept = 0.25 * random.uniform();
      s.logPrice += size * kept;
      s.flashOffset = size * (1 - kept);
      s.flashDecay = 0.15 + 0.35 * random.uniform();
      wick = size * 0.4 * random.uniform();
    }

    const logClose = s.logPrice + s.flashOffset;
    const move = logClose - previousLog;
    // Brownian-bridge extremes between open and close with the bar's diffusive variance.
    const barVariance = (s.beta * marketDiffusion) ** 2 + idioDiffusion ** 2;
    const up = 0.5 * (move + Math.sqrt(move * move - 2 * barVariance * Math.log(random.uniform())));
    const down =
      0.5 * (move - Math.sqrt(move * move - 2 * barVariance * Math.log(random.uniform())));
    const tick = s.instrument.tickSize;
    const open = s.lastClose;
    const close = Math.max(s.roundPrice(Math.exp(logClose)), tick);
    const high = Math.max(
      s.roundPrice(Math.exp(previousLog + up + (wick > 0 ? wick : 0))),
      open,
      close,
    );
    const low = Math.max(
      Math.min(s.roundPrice(Math.exp(previousLog + down + (wick < 0 ? wick : 0))), open, close),
      tick,
    );
    s.lastClose = close;

    const intensity = Math.abs(move) / s.barSigma;
    const noise = Math.exp(0.4 * random.normal() - 0.08);
    const volume = Math.max(
      s.roundLot(((s.quotePerBar * activity) / close) * noise * (0.25 + 0.75 * intensity)),
      s.instrument.lotSize,
    );
    return {
      symbol: s.instrument.symbol,
      timeframe: '1m',
      openTime,
      open,
      high,
      low,
      close,
      volume,
    };
  }
}
