/**
 * `qcat market generate` and `qcat market import`, registered on the CLI's program. Market data
 * goes to the `qcat_market` tables, not the event log (ADR 007).
 */
import { inInstantRange, RANGE_TEXT } from '../core/domain-bounds.js';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import {
  MarketDataStore,
  type CandleWriteResult,
} from '../core/adapters/postgres/market-data-store.js';
import { ValidationError } from '../core/errors.js';
import { CandleAggregator } from '../core/market/aggregate.js';
import { parseKlinesLines } from '../core/market/klines-csv.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../core/market/synthetic.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from '../core/market/types.js';
import { TIMEFRAMES, type Timeframe } from '../core/strategies/kinds.js';
import { importDerivatives, storeSyntheticDerivatives } from './derivatives-import.js';
import type { Runtime } from './runtime.js';

export interface MarketCliParts {
  /** Opens the configured runtime (database) for the work, and closes it. */
  withRuntime: <T>(work: (runtime: Runtime) => Promise<T>) => Promise<T>;
  /** The CLI's error for an expected failure (printed as `qcat: <message>`, exit code 1). */
  fail: (message: string) => Error;
}

const DAY_MS = 86_400_000;
const SYMBOL = /^[A-Z0-9]{2,20}$/;
/** Quote currencies recognised at the end of a symbol, longest first. */
const QUOTES = ['FDUSD', 'USDT', 'USDC', 'TUSD', 'BUSD', 'EUR', 'TRY', 'BTC', 'ETH', 'BNB'];

/** A file the system could not read (missing, a folder, no permission): its message says which. */
const isFileError = (error: unknown): error is NodeJS.ErrnoException =>
  error instanceof Error && 'syscall' in error && 'code' in error;

const count = (n: number): string => n.toLocaleString('en-US');
const minute = (ms: number): string => new Date(ms).toISOString().slice(0, 16) + 'Z';

/** "x candles in s (rate/s)" for the summary line. */
const timing = (candles: number, started: number): string => {
  const seconds = (performance.now() - started) / 1000;
  return `in ${seconds.toFixed(1)} s (${count(Math.round(candles / Math.max(seconds, 1e-3)))} candles/s)`;
};

/** Prints progress to stderr at most once a second. */
const progress = (label: string): ((written: number) => void) => {
  let last = performance.now();
  return (written) => {
    if (performance.now() - last < 1000) return;
    last = performance.now();
    console.error(`${label}: ${count(written)} candles written`);
  };
};

export function registerMarketCommands(program: Command, parts: MarketCliParts): void {
  const market = program
    .command('market')
    .description('market data: instruments and candles (kept beside the event log, not in it)');
  registerGenerate(market, parts);
  registerImport(market, parts);
}

type Fail = MarketCliParts['fail'];

function timeframesOf(list: string, fail: Fail): Timeframe[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const known = (name: string): name is Timeframe =>
    (TIMEFRAMES as readonly string[]).includes(name);
  const bad = names.filter((name) => !known(name));
  if (names.length === 0 || bad.length > 0)
    throw fail(
      `--timeframes: ${bad.length > 0 ? `unknown ${bad.join(', ')}` : 'none given'}; known: ${TIMEFRAMES.join(', ')}`,
    );
  return TIMEFRAMES.filter((timeframe) => names.includes(timeframe));
}

function instantOf(option: string, value: string, fail: Fail): number {
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms))
    throw fail(`${option} '${value}': expected an ISO date or instant, e.g. 2025-01-01`);
  if (!inInstantRange(ms))
    throw fail(`${option} '${value}': outside the accepted range, ${RANGE_TEXT}`);
  return ms - (ms % TIMEFRAME_MS['1m']);
}

interface GenerateOptions {
  symbols: string;
  from?: string;
  to?: string;
  days?: string;
  seed: string;
  timeframes: string;
}

/** What `qcat market generate` writes, checked before anything is opened. */
interface GeneratePlan {
  seed: number;
  from: number;
  to: number;
  timeframes: Timeframe[];
  symbols: string[];
}

/** `qcat market generate`. */
function registerGenerate(market: Command, parts: MarketCliParts): void {
  market
    .command('generate')
    .description(
      'generate deterministic synthetic candles (1m, rolled up to longer timeframes) and store them',
    )
    .option(
      '--symbols <list>',
      'comma-separated symbols (default: the built-in universe)',
      DEFAULT_INSTRUMENTS.map((i) => i.symbol).join(','),
    )
    .option('--from <iso>', 'first bar (UTC); default: --days before --to')
    .option('--to <iso>', 'end, exclusive (UTC); default: today 00:00 UTC, or --from + --days')
    .option('--days <n>', 'length of the range in days (default 30 when --from or --to is missing)')
    .option('--seed <n>', 'random seed: the same seed gives the same candles', '1')
    .option('--timeframes <list>', 'timeframes to store', TIMEFRAMES.join(','))
    .action(async (options: GenerateOptions) => {
      const plan = generatePlan(options, parts.fail);
      await parts.withRuntime((runtime) => generate(runtime, plan, parts.fail));
    });
}

/** The seed, the range (whole minutes), the timeframes and the symbols of `qcat market generate`. */
function generatePlan(options: GenerateOptions, fail: Fail): GeneratePlan {
  const seed = Number(options.seed);
  if (!/^-?\d+$/.test(options.seed) || !Number.isSafeInteger(seed))
    throw fail(`--seed '${options.seed}': expected a whole number`);
  let days: number | undefined;
  if (options.days !== undefined) {
    days = Number(options.days);
    if (!/^\d+(\.\d+)?$/.test(options.days) || !(days > 0) || days > 3660)
      throw fail(`--days '${options.days}': expected a number of days from 0 to 3660`);
  }
  if (options.from && options.to && days !== undefined)
    throw fail('give at most two of --from, --to and --days');
  const today = Date.now() - (Date.now() % DAY_MS);
  const givenFrom =
    options.from === undefined ? undefined : instantOf('--from', options.from, fail);
  const givenTo = options.to === undefined ? undefined : instantOf('--to', options.to, fail);
  const span = Math.round((days ?? 30) * DAY_MS);
  const end = givenTo ?? (givenFrom !== undefined && days !== undefined ? givenFrom + span : today);
  const start = givenFrom ?? end - span;
  const from = start - (start % TIMEFRAME_MS['1m']);
  const to = end - (end % TIMEFRAME_MS['1m']);
  if (from >= to) throw fail(`--from ${minute(from)} is not before --to ${minute(to)}`);
  const timeframes = timeframesOf(options.timeframes, fail);
  const symbols = [
    ...new Set(
      options.symbols
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    ),
  ];
  if (symbols.length === 0) throw fail('--symbols: give at least one symbol');
  return { seed, from, to, timeframes, symbols };
}

/** Generates the plan's candles (and, from the 1h ones, open interest and funding) and stores them. */
async function generate(runtime: Runtime, plan: GeneratePlan, fail: Fail): Promise<void> {
  const { seed, from, to, timeframes } = plan;
  const store = new MarketDataStore(runtime.pool);
  const stored = new Map((await store.listInstruments()).map((i) => [i.symbol, i]));
  const instruments = instrumentsOf(plan.symbols, stored, fail);
  const started = performance.now();
  const perTimeframe = new Map<Timeframe, number>(timeframes.map((t) => [t, 0]));
  // Hourly bars by symbol: the synthetic open interest and funding follow them.
  const hourly = new Map<string, Candle[]>();
  function* counted(): Generator<Candle, void, undefined> {
    for (const candle of generatedCandles(plan, instruments)) {
      perTimeframe.set(candle.timeframe, (perTimeframe.get(candle.timeframe) ?? 0) + 1);
      if (candle.timeframe === '1h') {
        const list = hourly.get(candle.symbol) ?? [];
        list.push(candle);
        hourly.set(candle.symbol, list);
      }
      yield candle;
    }
  }
  const report = progress('generate');
  const { result, derived } = await store.transaction(async (tx) => {
    await tx.upsertInstruments(instruments.filter((i) => !stored.has(i.symbol)));
    const written = await tx.writeCandles(counted(), (p) => {
      report(p.candles);
    });
    const series = await storeSyntheticDerivatives(tx.derivatives(), seed, hourly);
    return { result: written, derived: series };
  });
  const breakdown = [...perTimeframe].map(([t, n]) => `${t} ${count(n)}`).join(', ');
  console.log(
    `generated ${count(instruments.length)} symbol${instruments.length === 1 ? '' : 's'}, ${minute(from)} → ${minute(to)}, seed ${seed}: ${breakdown}`,
  );
  console.log(
    `stored ${count(result.inserted)} new candles of ${count(result.candles)} (${count(result.candles - result.inserted)} already there) ${timing(result.candles, started)}`,
  );
  if (hourly.size > 0)
    console.log(
      `stored ${count(derived.openInterest)} new open-interest points and ${count(derived.funding)} new funding rates, drawn from the 1h candles`,
    );
}

/** The instruments of the symbols: as stored, else the built-in ones; an unknown symbol fails. */
function instrumentsOf(
  symbols: readonly string[],
  stored: ReadonlyMap<string, Instrument>,
  fail: Fail,
): Instrument[] {
  const defaults = new Map(DEFAULT_INSTRUMENTS.map((i) => [i.symbol, i]));
  const instruments: Instrument[] = [];
  for (const symbol of symbols) {
    const instrument = stored.get(symbol) ?? defaults.get(symbol);
    if (!instrument)
      throw fail(
        `--symbols: unknown instrument ${symbol}; known: ${[...new Set([...defaults.keys(), ...stored.keys()])].sort().join(', ')}`,
      );
    instruments.push(instrument);
  }
  return instruments;
}

/** The synthetic 1m candles (if asked for) and, as each completes, the longer bars rolled up from them. */
function* generatedCandles(
  plan: GeneratePlan,
  instruments: Instrument[],
): Generator<Candle, void, undefined> {
  const { seed, from, to, timeframes } = plan;
  const aggregators = timeframes
    .filter((t) => t !== '1m')
    .map((t) => new CandleAggregator(t, { complete: true }));
  const keepMinutes = timeframes.includes('1m');
  for (const candle of generateCandles({ seed, from, to, instruments })) {
    if (keepMinutes) yield candle;
    for (const aggregator of aggregators) {
      const finished = aggregator.push(candle);
      if (finished) yield finished;
    }
  }
  for (const aggregator of aggregators) yield* aggregator.flush();
}

interface ImportOptions {
  symbol: string;
  timeframe: string;
  tickSize?: string;
  lotSize?: string;
  minNotional?: string;
  base?: string;
  quote?: string;
  kind: string;
}

/** Steps and minimum order value of an instrument QCAT does not know yet, as given. */
interface GivenSizes {
  tickSize: number | undefined;
  lotSize: number | undefined;
  minNotional: number;
}

/** `qcat market import`. */
function registerImport(market: Command, parts: MarketCliParts): void {
  market
    .command('import')
    .description(
      'import Binance kline CSV files (with or without a header; ms or µs times), or with --kind its futures metrics (open interest) or fundingRate files; all or nothing',
    )
    .argument('<files...>', 'CSV files, e.g. BTCUSDT-1m-2025-01.csv')
    .requiredOption('--symbol <symbol>', 'the symbol the files are of, e.g. BTCUSDT')
    .option(
      '--kind <kind>',
      'klines, metrics (BTCUSDT-metrics-2025-01-01.csv) or funding (BTCUSDT-fundingRate-2025-01.csv)',
      'klines',
    )
    .option('--timeframe <tf>', `candle length: ${TIMEFRAMES.join(', ')}`, '1m')
    .option('--tick-size <n>', 'price step, for a symbol QCAT does not know yet')
    .option('--lot-size <n>', 'quantity step, for a symbol QCAT does not know yet')
    .option('--min-notional <n>', 'smallest order value in the quote currency (default 0)')
    .option('--base <asset>', 'base currency (default: the symbol without its quote)')
    .option('--quote <asset>', `quote currency (default: recognised at the end of the symbol)`)
    .action(async (files: string[], options: ImportOptions) => {
      const { fail } = parts;
      const symbol = options.symbol.trim().toUpperCase();
      if (!SYMBOL.test(symbol))
        throw fail(`--symbol '${options.symbol}': expected 2 to 20 letters and digits`);
      if (options.kind === 'metrics' || options.kind === 'funding') {
        const kind = options.kind;
        await mustRead(files, fail);
        return parts.withRuntime((runtime) =>
          importDerivatives(runtime, kind, symbol, files, fail),
        );
      }
      if (options.kind !== 'klines')
        throw fail(`--kind '${options.kind}': expected klines, metrics or funding`);
      const timeframe = options.timeframe;
      if (!(TIMEFRAMES as readonly string[]).includes(timeframe))
        throw fail(`--timeframe '${timeframe}': expected one of ${TIMEFRAMES.join(', ')}`);
      const tf = timeframe as Timeframe;
      await mustRead(files, fail);
      const sizes = givenSizes(options, fail);
      await parts.withRuntime(async (runtime) => {
        const store = new MarketDataStore(runtime.pool);
        const newInstrument = await instrumentToAdd(store, symbol, options, sizes, fail);
        await importKlines(store, { files, symbol, tf, newInstrument }, fail);
      });
    });
}

/** Every file can be read, or the import fails before it starts. */
async function mustRead(files: readonly string[], fail: Fail): Promise<void> {
  for (const file of files) {
    try {
      await access(file);
    } catch {
      throw fail(`${file}: no such file, or it cannot be read; nothing was imported`);
    }
  }
}

function givenSizes(options: ImportOptions, fail: Fail): GivenSizes {
  const positive = (option: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!(n > 0) || !Number.isFinite(n))
      throw fail(`${option} '${value}': expected a number above 0`);
    return n;
  };
  const tickSize = positive('--tick-size', options.tickSize);
  const lotSize = positive('--lot-size', options.lotSize);
  const minNotional = options.minNotional === undefined ? 0 : Number(options.minNotional);
  if (!(minNotional >= 0) || !Number.isFinite(minNotional))
    throw fail(`--min-notional '${String(options.minNotional)}': expected a number ≥ 0`);
  return { tickSize, lotSize, minNotional };
}

/**
 * The instrument the import must store first: none when it is stored, a built-in one, else one
 * made of the options (its base and quote recognised from the symbol when not given).
 */
async function instrumentToAdd(
  store: MarketDataStore,
  symbol: string,
  options: ImportOptions,
  { tickSize, lotSize, minNotional }: GivenSizes,
  fail: Fail,
): Promise<Instrument | undefined> {
  if (await store.getInstrument(symbol)) return undefined;
  const builtIn = DEFAULT_INSTRUMENTS.find((i) => i.symbol === symbol);
  if (builtIn) return builtIn;
  if (tickSize === undefined || lotSize === undefined)
    throw fail(
      `${symbol} is not a known instrument: give --tick-size and --lot-size (and --min-notional, --base, --quote if need be)`,
    );
  const quote =
    options.quote?.toUpperCase() ??
    QUOTES.find((q) => symbol.endsWith(q) && symbol.length > q.length);
  const base =
    options.base?.toUpperCase() ??
    (quote && symbol.endsWith(quote) ? symbol.slice(0, -quote.length) : undefined);
  if (!quote || !base)
    throw fail(`${symbol}: cannot tell its base and quote; give --base and --quote`);
  return { symbol, base, quote, tickSize, lotSize, minNotional };
}

/** Imports the kline files in one transaction (all or nothing) and prints what each held. */
async function importKlines(
  store: MarketDataStore,
  job: {
    files: string[];
    symbol: string;
    tf: Timeframe;
    newInstrument: Instrument | undefined;
  },
  fail: Fail,
): Promise<void> {
  const { files, symbol, tf, newInstrument } = job;
  const started = performance.now();
  const perFile: string[] = [];
  const report = progress('import');
  try {
    const total = await store.transaction(async (tx) => {
      if (newInstrument) await tx.upsertInstruments([newInstrument]);
      let candles = 0;
      let inserted = 0;
      for (const file of files) {
        const result = await writeKlinesFile(tx, file, { symbol, timeframe: tf }, fail, (p) => {
          report(candles + p.candles);
        });
        candles += result.candles;
        inserted += result.inserted;
        perFile.push(`${file}: ${count(result.candles)} candles, ${count(result.inserted)} new`);
      }
      return { candles, inserted };
    });
    for (const line of perFile) console.log(line);
    console.log(
      `imported ${count(total.inserted)} new ${tf} candles of ${symbol} from ${count(total.candles)} in ${count(files.length)} file(s) (${count(total.candles - total.inserted)} already there) ${timing(total.candles, started)}`,
    );
  } catch (error) {
    if (error instanceof ValidationError) throw fail(`${error.message}; nothing was imported`);
    throw error;
  }
}

/** Writes one kline file's candles; a file the system cannot read fails the import. */
async function writeKlinesFile(
  tx: MarketDataStore,
  file: string,
  of: { symbol: string; timeframe: Timeframe },
  fail: Fail,
  onBatch: (progress: CandleWriteResult) => void,
): Promise<CandleWriteResult> {
  const lines = createInterface({
    input: createReadStream(file, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  try {
    return await tx.writeCandles(parseKlinesLines(lines, { file, ...of }), onBatch);
  } catch (error) {
    if (isFileError(error)) throw fail(`${file}: ${error.message}; nothing was imported`);
    throw error;
  } finally {
    lines.close();
  }
}
