/**
 * `qcat market import --kind metrics|funding`: Binance USDⓈ-M futures metrics (open interest) and
 * fundingRate CSV files into `qcat_market` (ADR 007), read with csv-parse; all files in one
 * transaction, so a bad line anywhere imports nothing. Errors name file, line and field.
 */
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import { DerivativesStore } from '../core/adapters/postgres/derivatives-store.js';
import { ValidationError } from '../core/errors.js';
import { syntheticDerivatives } from '../core/hot-symbols/synthetic-derivatives.js';
import type { Candle } from '../core/market/types.js';
import {
  parseFundingRecords,
  parseOpenInterestRecords,
  type CsvRecord,
  type DerivativesKind,
} from '../core/market/derivatives-csv.js';
import type { Runtime } from './runtime.js';

const count = (n: number): string => n.toLocaleString('en-US');

/** The records of one CSV file with their line numbers; a malformed file names its line. */
async function* recordsOf(file: string): AsyncGenerator<CsvRecord> {
  const parser = createReadStream(file, { encoding: 'utf8' }).pipe(
    parse({ info: true, skip_empty_lines: true, relax_column_count: true, bom: true }),
  );
  try {
    for await (const chunk of parser as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>)
      yield { fields: chunk.record, line: chunk.info.lines };
  } catch (error) {
    if (error instanceof Error && 'lines' in error)
      throw new ValidationError(
        'INVALID_DERIVATIVES_CSV',
        `${file}: line ${String(error.lines)}: ${error.message}`,
      );
    throw error;
  }
}

export async function importDerivatives(
  runtime: Runtime,
  kind: DerivativesKind,
  symbol: string,
  files: readonly string[],
  fail: (message: string) => Error,
): Promise<void> {
  const started = performance.now();
  const lines: string[] = [];
  try {
    const total = await DerivativesStore.transaction(runtime.pool, async (store) => {
      let points = 0;
      let inserted = 0;
      for (const file of files) {
        const context = { file, symbol };
        const result =
          kind === 'metrics'
            ? await store.writeOpenInterest(parseOpenInterestRecords(recordsOf(file), context))
            : await store.writeFunding(parseFundingRecords(recordsOf(file), context));
        points += result.points;
        inserted += result.inserted;
        lines.push(`${file}: ${count(result.points)} rows, ${count(result.inserted)} new`);
      }
      return { points, inserted };
    });
    for (const line of lines) console.log(line);
    const what = kind === 'metrics' ? 'open-interest points' : 'funding rates';
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `imported ${count(total.inserted)} new ${what} of ${symbol} from ${count(total.points)} in ${count(files.length)} file(s) (${count(total.points - total.inserted)} already there) in ${seconds.toFixed(1)} s`,
    );
  } catch (error) {
    if (error instanceof ValidationError) throw fail(`${error.message}; nothing was imported`);
    if (error instanceof Error && 'syscall' in error && 'path' in error)
      throw fail(`${String(error.path)}: ${error.message}; nothing was imported`);
    throw error;
  }
}

/**
 * The synthetic market's open interest and funding rates (core/hot-symbols/synthetic-derivatives),
 * drawn from each symbol's generated hourly candles: what `qcat market generate` stores beside
 * them. The same seed and candles give the same series.
 */
export async function storeSyntheticDerivatives(
  store: DerivativesStore,
  seed: number,
  hourly: ReadonlyMap<string, readonly Candle[]>,
): Promise<{ openInterest: number; funding: number }> {
  let openInterest = 0;
  let funding = 0;
  for (const [symbol, candles] of hourly) {
    const series = syntheticDerivatives(`seed:${seed.toString()}`, candles);
    openInterest += (
      await store.writeOpenInterest(
        series.openInterest.map((p) => ({
          symbol,
          time: p.time,
          openInterest: p.value,
          openInterestValue: null,
        })),
      )
    ).inserted;
    funding += (
      await store.writeFunding(
        series.funding.map((p) => ({ symbol, time: p.time, rate: p.rate, intervalHours: 8 })),
      )
    ).inserted;
  }
  return { openInterest, funding };
}
