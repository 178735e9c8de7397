/**
 * A deterministic synthetic crypto market: 1m candles for any number of symbols, from a seed.
 *
 * The model, per one-minute bar (log prices):
 * - **Regimes**: a market-wide Markov chain of calm, trending and volatile states (mean stays of
 *   12 h, 6 h and 1.5 h). Each scales every symbol's volatility; a trending state also adds a
 *   drift, up or down, chosen when it begins.
 * - **Volatility clustering**: GARCH(1,1) on the variance of the market factor and, separately,
 *   of each symbol's own shocks (α = 0.05, β = 0.94; unconditional variance as configured).
 * - **Correlation**: return = β × market factor + idiosyncratic shock. BTC has β = 1 and little
 *   idiosyncratic risk, so it nearly *is* the market; alts have β of 0.75 – 1.35 and more of
 *   their own risk (1m return correlation with BTC about 0.45 – 0.7).
 * - **Jumps**: Poisson jumps in the market factor (about one every 3 days) and in each symbol
 *   (about one every 2 days), normal in size (12 and 10 bar-sigmas), each raising the variance.
 * - **Flash moves**: about one in two weeks per symbol, a 2.5 – 7 % drop (three in four) or spike
 *   within one bar (scaled by √(volatility / 80 %)), with a further intrabar wick, of which
 *   75 – 100 % reverts geometrically over the next few bars.
 * - **Volume** (base currency) follows the symbol's daily turnover, an intraday UTC cycle
 *   (busiest around 14:00) and log-normal noise, and grows with the bar's absolute return.
 * - **OHLC**: open is the previous close; close from the return; high and low drawn from the
 *   exact distribution of a Brownian bridge's maximum and minimum between them. Prices are
 *   rounded to the tick, volumes to the lot; low ≤ open, close ≤ high; every price ≥ one tick.
 *
 * Determinism: every symbol draws from its own random stream keyed by (seed, symbol) and the
 * market factor from one keyed by the seed alone, so a symbol's candles depend only on the seed,
 * the symbol, its profile and `from` — not on which other symbols are generated beside it. The
 * path starts at the profile's start price at `from`: one range generated in one run is one
 * continuous path; two adjoining ranges generated separately are two paths.
 */
import { ValidationError } from '../errors.js';
import { TIMEFRAMES, type Timeframe } from '../strategies/kinds.js';
import { CandleAggregator } from './aggregate.js';
import { DEFAULT_INSTRUMENTS, syntheticProfile, type SyntheticProfile } from './default-symbols.js';
import { Random } from './random.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from './types.js';

export { aggregateCandles, CandleAggregator, type AggregateOptions } from './aggregate.js';

export {
  DEFAULT_INSTRUMENTS,
  DEFAULT_PROFILES,
  syntheticProfile,
  type SyntheticProfile,
} from './default-symbols.js';

export interface GenerateOptions {
  /** Any safe integer; the same seed gives the same candles. */
  seed: number;
  /** Epoch ms of the first bar's open; a multiple of the timeframe's length (UTC aligned). */
  from: number;
  /** Epoch ms, exclusive: bars open before it; a multiple of the timeframe's length. */
  to: number;
  /** Default: DEFAULT_INSTRUMENTS. */
  instruments?: readonly Instrument[];
  /** Default '1m'. Longer timeframes are 1m bars aggregated (every bucket complete). */
  timeframe?: Timeframe;
  /** Per symbol, replaces parts of its profile (see syntheticProfile). */
  profiles?: Readonly<Record<string, Partial<SyntheticProfile>>>;
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

interface SymbolState {
  instrument: Instrument;
  random: Random;
  beta: number;
  /** Per-bar standard deviations: the symbol's total and its own part. */
  barSigma: number;
  idioSigma: number;
  quotePerBar: number;
  roundPrice: (value: number) => number;
  roundLot: (value: number) => number;
  /** Log of the fundamental price, without the flash offset. */
  logPrice: number;
  flashOffset: number;
  flashDecay: number;
  /** Flash sizes scale with the square root of the symbol's volatility. */
  flashScale: number;
  variance: number;
  lastZ: number;
  lastClose: number;
}

function validate(options: GenerateOptions, timeframe: Timeframe): readonly Instrument[] {
  const fail = (message: string): never => {
    throw new ValidationError('INVALID_GENERATOR_OPTIONS', message);
  };
  if (!Number.isSafeInteger(options.seed)) fail(`seed must be a safe integer, got ${options.seed}`);
  if (!TIMEFRAMES.includes(timeframe))
    fail(`timeframe must be one of ${TIMEFRAMES.join(', ')}, got ${timeframe}`);
  const step = TIMEFRAME_MS[timeframe];
  for (const [name, value] of [
    ['from', options.from],
    ['to', options.to],
  ] as const) {
    if (!Number.isSafeInteger(value) || value % step !== 0)
      fail(`${name} must be epoch milliseconds on a ${timeframe} boundary, got ${value}`);
  }
  if (options.to < options.from) fail('to must not be before from');
  const instruments = options.instruments ?? DEFAULT_INSTRUMENTS;
  if (instruments.length === 0) fail('give at least one instrument');
  const symbols = new Set<string>();
  for (const instrument of instruments) {
    if (symbols.has(instrument.symbol)) fail(`instrument ${instrument.symbol} is given twice`);
    symbols.add(instrument.symbol);
    if (!(instrument.tickSize > 0) || !(instrument.lotSize > 0))
      fail(`${instrument.symbol}: tick and lot size must be positive`);
    const profile = syntheticProfile(instrument, options.profiles?.[instrument.symbol]);
    if (
      !(profile.startPrice > 0) ||
      !(profile.annualVolatility > 0) ||
      !(profile.dailyQuoteVolume > 0) ||
      !Number.isFinite(profile.beta)
    )
      fail(`${instrument.symbol}: the profile needs a positive start price, volatility and volume`);
  }
  return instruments;
}

/**
 * Synthetic candles from `from` to `to` for every instrument, **interleaved by time**: for each
 * bar time, one candle per instrument in the order given. Lazy: a year of 1m bars is generated as
 * it is consumed, in constant memory. See the module comment for the model and determinism.
 * Throws a ValidationError at once for options it cannot honour.
 */
export function generateCandles(options: GenerateOptions): Generator<Candle, void, undefined> {
  const timeframe = options.timeframe ?? '1m';
  validate(options, timeframe); // now, not at the first candle
  return timeframe === '1m' ? generateMinutes(options) : rolledUp(options, timeframe);
}

function* rolledUp(
  options: GenerateOptions,
  timeframe: Timeframe,
): Generator<Candle, void, undefined> {
  const aggregator = new CandleAggregator(timeframe, { complete: true });
  for (const candle of generateMinutes(options)) {
    const finished = aggregator.push(candle);
    if (finished) yield finished;
  }
  yield* aggregator.flush();
}

function* generateMinutes(options: GenerateOptions): Generator<Candle, void, undefined> {
  const instruments = options.instruments ?? DEFAULT_INSTRUMENTS;
  const marketSigma = MARKET_VOLATILITY / SQRT_MINUTES_PER_YEAR;
  const states: SymbolState[] = instruments.map((instrument) => {
    const profile = syntheticProfile(instrument, options.profiles?.[instrument.symbol]);
    const barSigma = profile.annualVolatility / SQRT_MINUTES_PER_YEAR;
    const systematic = (profile.beta * marketSigma) ** 2;
    const idioVariance = Math.max(
      barSigma ** 2 - systematic,
      MIN_IDIOSYNCRATIC_SHARE * barSigma ** 2,
    );
    const roundPrice = stepRounder(instrument.tickSize);
    const open = Math.max(roundPrice(profile.startPrice), instrument.tickSize);
    return {
      instrument,
      random: new Random(`qcat-synthetic:${options.seed}:${instrument.symbol}`),
      beta: profile.beta,
      barSigma,
      idioSigma: Math.sqrt(idioVariance),
      quotePerBar: profile.dailyQuoteVolume / 1440,
      roundPrice,
      roundLot: stepRounder(instrument.lotSize),
      logPrice: Math.log(open),
      flashOffset: 0,
      flashDecay: 0,
      flashScale: Math.sqrt(profile.annualVolatility / 0.8),
      variance: 1,
      lastZ: 0,
      lastClose: open,
    };
  });

  const market = new Random(`qcat-synthetic:${options.seed}:market`);
  // The first regime is drawn from the long-run shares.
  const first = market.uniform();
  let regime =
    first < SHARES[CALM] ? CALM : first < SHARES[CALM] + SHARES[TRENDING] ? TRENDING : VOLATILE;
  let trendSign = market.uniform() < 0.5 ? -1 : 1;
  let marketVariance = 1;
  let marketZ = 0;

  for (let openTime = options.from; openTime < options.to; openTime += 60_000) {
    // Market: regime change, GARCH variance, shock, jump, trend drift.
    const current = REGIMES[regime as 0 | 1 | 2];
    if (market.uniform() < 1 / current.meanBars) {
      const u = market.uniform();
      const [toCalm, toTrending] = current.next;
      regime = u < toCalm ? CALM : u < toCalm + toTrending ? TRENDING : VOLATILE;
      if (regime === TRENDING) trendSign = market.uniform() < 0.5 ? -1 : 1;
    }
    const regimeVolatility = REGIME_VOLATILITY[regime as 0 | 1 | 2];
    marketVariance = Math.min(
      GARCH_OMEGA + GARCH_ALPHA * marketVariance * marketZ * marketZ + GARCH_BETA * marketVariance,
      GARCH_MAX,
    );
    marketZ = market.normal();
    const marketDiffusion = marketSigma * regimeVolatility * Math.sqrt(marketVariance);
    let marketReturn = marketDiffusion * marketZ;
    if (market.uniform() < MARKET_JUMP_RATE) {
      marketReturn += market.normal() * MARKET_JUMP_SIGMAS * marketSigma;
      marketVariance = Math.max(marketVariance, POST_JUMP_VARIANCE);
    }
    if (regime === TRENDING) marketReturn += trendSign * TREND_DRIFT * marketSigma;
    const activity = HOURLY_ACTIVITY[((Math.floor(openTime / 3_600_000) % 24) + 24) % 24] ?? 1;

    for (const s of states) {
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
      const up =
        0.5 * (move + Math.sqrt(move * move - 2 * barVariance * Math.log(random.uniform())));
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
      yield {
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
}
