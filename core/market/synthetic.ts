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
import { SyntheticPath, type PathInstrument, type SyntheticProfile } from './synthetic-path.js';
import { DEFAULT_INSTRUMENTS, syntheticProfile } from './default-symbols.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from './types.js';

export { aggregateCandles, CandleAggregator, type AggregateOptions } from './aggregate.js';
export { stepRounder, type SyntheticProfile } from './synthetic-path.js';
export { DEFAULT_INSTRUMENTS, DEFAULT_PROFILES, syntheticProfile } from './default-symbols.js';

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
  const path = new SyntheticPath(options.seed, options.from, pathInstruments(options));
  while (path.next < options.to) yield* path.minute();
}

/** The instruments of `options` with their profiles, as the path takes them. */
export function pathInstruments(options: {
  instruments?: readonly Instrument[] | undefined;
  profiles?: Readonly<Record<string, Partial<SyntheticProfile>>> | undefined;
}): PathInstrument[] {
  return (options.instruments ?? DEFAULT_INSTRUMENTS).map((instrument) => ({
    instrument,
    profile: syntheticProfile(instrument, options.profiles?.[instrument.symbol]),
  }));
}
