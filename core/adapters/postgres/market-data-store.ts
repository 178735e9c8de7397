// Under 400 lines without comments (what the max-lines rule counts): one store over the
// `qcat_market` tables, its row mapping already apart in market-rows.ts.
/**
 * Market data in PostgreSQL, beside the event log but not in it (ADR 007): instruments and
 * candles in the schema `qcat_market`, whose migrations are among QCAT's (migrations.ts, ADR 028).
 */
import type pg from 'pg';
import { ValidationError } from '../../errors.js';
import { DerivativesStore } from './derivatives-store.js';
import { TIMEFRAME_MS, type Candle, type Instrument } from '../../market/types.js';
import type { Timeframe } from '../../strategies/kinds.js';
import { eventLogMigrations, migrate } from './migrations.js';
import {
  isStorable,
  arrayLiteral,
  quoted,
  INSERT_BATCH,
  READ_PAGE,
  INSERT_NEW_CANDLES,
  INSERT_CANDLES,
  BATCH_OVERLAPS,
  UNIQUE_VIOLATION,
  candleColumns,
  toCandle,
  toInstrument,
  type CandleRow,
  type InstrumentRow,
} from './market-rows.js';

/** The migrations of the `qcat_market` schema (ADR 007), among all of QCAT's (ADR 028). */
const MARKET_VERSIONS: ReadonlySet<number> = new Set(
  eventLogMigrations
    .filter((migration) => migration.carriedFrom?.ledger === 'qcat_market.schema_versions')
    .map((migration) => migration.version),
);

/**
 * Creates or upgrades the `qcat_market` schema, with every other pending migration (one mechanism,
 * ADR 028); answers the market migrations it applied. Safe when several processes start at once.
 */
export async function ensureMarketSchema(pool: pg.Pool): Promise<number[]> {
  return (await migrate(pool)).filter((version) => MARKET_VERSIONS.has(version));
}

export interface CandleRange {
  symbol: string;
  timeframe: Timeframe;
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, exclusive. */
  to?: number;
}

export interface CandlePageQuery extends CandleRange {
  /** Epoch ms, exclusive: the openTime of the last candle of the previous page. */
  after?: number;
  limit: number;
  /** The newest `limit` candles of the range instead of the oldest (still answered oldest first). */
  newest?: boolean;
}

export interface CandleWriteResult {
  /** Candles given. */
  candles: number;
  /** Candles written; the rest were already stored (same symbol, timeframe and open time). */
  inserted: number;
}

/** Instruments and candles: bulk writes, ordered paged reads. Needs `ensureMarketSchema` first. */
export class MarketDataStore {
  /**
   * @param pool where to read and write
   * @param client set inside `transaction`: the connection that holds the transaction
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly client?: pg.PoolClient,
  ) {}

  private get db(): pg.Pool | pg.PoolClient {
    return this.client ?? this.pool;
  }

  /** Open interest and funding rates, on the same connection (derivatives-store.ts). */
  derivatives(): DerivativesStore {
    return new DerivativesStore(this.db);
  }

  /**
   * Runs `work` with a store bound to one transaction: all of its writes commit together, or
   * none does if `work` throws.
   */
  async transaction<T>(work: (store: MarketDataStore) => Promise<T>): Promise<T> {
    if (this.client) return work(this);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(new MarketDataStore(this.pool, client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Adds instruments or updates their sizes; answers how many rows changed. */
  async upsertInstruments(instruments: readonly Instrument[]): Promise<number> {
    if (instruments.length === 0) return 0;
    const result = await this.db.query(
      `INSERT INTO qcat_market.instruments AS i (symbol, base, quote, tick_size, lot_size, min_notional)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[])
       ON CONFLICT (symbol) DO UPDATE
          SET base = excluded.base, quote = excluded.quote, tick_size = excluded.tick_size,
              lot_size = excluded.lot_size, min_notional = excluded.min_notional, updated_at = now()
        WHERE (i.base, i.quote, i.tick_size, i.lot_size, i.min_notional)
              IS DISTINCT FROM (excluded.base, excluded.quote, excluded.tick_size, excluded.lot_size, excluded.min_notional)`,
      [
        instruments.map((i) => i.symbol),
        instruments.map((i) => i.base),
        instruments.map((i) => i.quote),
        instruments.map((i) => String(i.tickSize)),
        instruments.map((i) => String(i.lotSize)),
        instruments.map((i) => String(i.minNotional)),
      ],
    );
    return result.rowCount ?? 0;
  }

  /** Every instrument, by symbol. */
  async listInstruments(): Promise<Instrument[]> {
    const { rows } = await this.db.query<InstrumentRow>(
      'SELECT symbol, base, quote, tick_size, lot_size, min_notional FROM qcat_market.instruments ORDER BY symbol',
    );
    return rows.map(toInstrument);
  }

  async getInstrument(symbol: string): Promise<Instrument | undefined> {
    const { rows } = await this.db.query<InstrumentRow>(
      'SELECT symbol, base, quote, tick_size, lot_size, min_notional FROM qcat_market.instruments WHERE symbol = $1',
      [symbol],
    );
    return rows[0] ? toInstrument(rows[0]) : undefined;
  }

  /**
   * Writes candles in multi-row INSERTs of 10,000 (unnest of column arrays); a candle already
   * stored is kept as it is. Not atomic on its own: use `transaction` for all or nothing.
   */
  async insertCandles(candles: readonly Candle[]): Promise<number> {
    let inserted = 0;
    for (let start = 0; start < candles.length; start += INSERT_BATCH)
      inserted += await this.insertBatch(candles.slice(start, start + INSERT_BATCH));
    return inserted;
  }

  /**
   * Writes every candle of a (possibly lazy or async) source, in batches of 10,000. While one
   * batch is being written the next one is gathered, so producing and storing overlap.
   */
  async writeCandles(
    source: Iterable<Candle> | AsyncIterable<Candle>,
    onBatch?: (progress: CandleWriteResult) => void,
  ): Promise<CandleWriteResult> {
    const total: CandleWriteResult = { candles: 0, inserted: 0 };
    let inFlight: Promise<void> | undefined;
    const send = async (batch: Candle[]): Promise<void> => {
      // A failed batch must not go unobserved while the next one is gathered.
      const previous = inFlight;
      inFlight = undefined;
      if (previous) await previous;
      const written = this.insertBatch(batch).then((inserted) => {
        total.inserted += inserted;
        total.candles += batch.length;
        onBatch?.({ ...total });
      });
      written.catch(() => undefined);
      inFlight = written;
    };
    let batch: Candle[] = [];
    try {
      for await (const candle of source) {
        batch.push(candle);
        if (batch.length >= INSERT_BATCH) {
          await send(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await send(batch);
    } finally {
      // Whether or not the source failed, no query is left running behind the caller's back.
      const last = inFlight;
      inFlight = undefined;
      if (last) await last;
    }
    return total;
  }

  /** One INSERT of up to a batch of candles; column arrays sent as array literals. */
  private async insertBatch(batch: readonly Candle[]): Promise<number> {
    if (batch.length === 0) return 0;
    const symbols: string[] = [];
    const timeframes: string[] = [];
    const times: number[] = [];
    const opens: number[] = [];
    const highs: number[] = [];
    const lows: number[] = [];
    const closes: number[] = [];
    const volumes: number[] = [];
    for (const candle of batch) {
      if (!isStorable(candle)) {
        throw new ValidationError(
          'INVALID_CANDLE',
          `${candle.symbol} ${candle.timeframe} candle at ${String(candle.openTime)}: open time must be whole epoch ms and prices and volume finite numbers`,
        );
      }
      symbols.push(quoted(candle.symbol));
      timeframes.push(candle.timeframe);
      times.push(candle.openTime);
      opens.push(candle.open);
      highs.push(candle.high);
      lows.push(candle.low);
      closes.push(candle.close);
      volumes.push(candle.volume);
    }
    const values = [
      arrayLiteral(symbols),
      arrayLiteral(timeframes),
      arrayLiteral(times),
      arrayLiteral(opens),
      arrayLiteral(highs),
      arrayLiteral(lows),
      arrayLiteral(closes),
      arrayLiteral(volumes),
    ];
    // New data (the usual bulk load) goes in without ON CONFLICT, which costs about a third of
    // the throughput. If a racing writer or a repeated key in the batch makes it fail anyway, the
    // batch is written again with ON CONFLICT DO NOTHING (after a savepoint inside transactions).
    if (!(await this.overlapsStored(batch))) {
      const inserted = await this.attempt(INSERT_NEW_CANDLES, values);
      if (inserted !== undefined) return inserted;
    }
    const result = await this.db.query(INSERT_CANDLES, values);
    return result.rowCount ?? 0;
  }

  /** Whether a stored candle lies within the span of the batch's candles of a symbol/timeframe. */
  private async overlapsStored(batch: readonly Candle[]): Promise<boolean> {
    const spans = new Map<string, { symbol: string; timeframe: string; lo: number; hi: number }>();
    for (const candle of batch) {
      const key = `${candle.symbol}\u0000${candle.timeframe}`;
      const span = spans.get(key);
      if (!span)
        spans.set(key, {
          symbol: candle.symbol,
          timeframe: candle.timeframe,
          lo: candle.openTime,
          hi: candle.openTime,
        });
      else {
        if (candle.openTime < span.lo) span.lo = candle.openTime;
        if (candle.openTime > span.hi) span.hi = candle.openTime;
      }
    }
    const groups = [...spans.values()];
    const { rows } = await this.db.query<{ overlaps: boolean }>(BATCH_OVERLAPS, [
      groups.map((g) => g.symbol),
      groups.map((g) => g.timeframe),
      groups.map((g) => g.lo),
      groups.map((g) => g.hi),
    ]);
    return rows[0]?.overlaps ?? true;
  }

  /** Runs an INSERT; undefined if it broke the primary key (nothing of it is then written). */
  private async attempt(sql: string, values: unknown[]): Promise<number | undefined> {
    const isDuplicate = (error: unknown): boolean =>
      error instanceof Error && 'code' in error && error.code === UNIQUE_VIOLATION;
    if (!this.client) {
      try {
        return (await this.pool.query(sql, values)).rowCount ?? 0;
      } catch (error) {
        if (isDuplicate(error)) return undefined;
        throw error;
      }
    }
    await this.client.query('SAVEPOINT qcat_market_batch');
    try {
      const inserted = (await this.client.query(sql, values)).rowCount ?? 0;
      await this.client.query('RELEASE SAVEPOINT qcat_market_batch');
      return inserted;
    } catch (error) {
      if (!isDuplicate(error)) throw error;
      await this.client.query('ROLLBACK TO SAVEPOINT qcat_market_batch');
      return undefined;
    }
  }

  /** One page of candles in time order, after the cursor `after` (exclusive). */
  async candlePage(query: CandlePageQuery): Promise<Candle[]> {
    const values: unknown[] = [query.symbol, query.timeframe];
    const where = ['symbol = $1', 'timeframe = $2'];
    const bound = (sql: string, ms: number | undefined): void => {
      if (ms === undefined) return;
      values.push(ms);
      where.push(`${sql} to_timestamp($${values.length}::bigint / 1000.0)`);
    };
    bound('open_time >=', query.from);
    bound('open_time <', query.to);
    bound('open_time >', query.after);
    values.push(query.limit);
    const result = await this.db.query<CandleRow>({
      text: `SELECT ${candleColumns('c')} FROM qcat_market.candles c
              WHERE ${where.join(' AND ')}
              ORDER BY open_time ${query.newest ? 'DESC' : ''} LIMIT $${values.length}`,
      values,
      rowMode: 'array',
    });
    const candles = result.rows.map(toCandle);
    return query.newest ? candles.reverse() : candles;
  }

  /** Every candle of the range in time order, read in pages of `pageSize` (keyset pagination). */
  async *readCandles(
    range: CandleRange,
    pageSize = READ_PAGE,
  ): AsyncGenerator<Candle, void, undefined> {
    let after: number | undefined;
    for (;;) {
      const page = await this.candlePage({
        ...range,
        ...(after === undefined ? {} : { after }),
        limit: pageSize,
      });
      yield* page;
      const last = page.at(-1);
      if (!last || page.length < pageSize) return;
      after = last.openTime;
    }
  }

  /** The newest candle of each instrument in `timeframe` (instruments without one are left out). */
  async latestCandles(timeframe: Timeframe): Promise<Candle[]> {
    const result = await this.db.query<CandleRow>({
      text: `SELECT ${candleColumns('c')}
               FROM qcat_market.instruments i
               CROSS JOIN LATERAL (
                 SELECT * FROM qcat_market.candles c
                  WHERE c.symbol = i.symbol AND c.timeframe = $1
                  ORDER BY c.open_time DESC LIMIT 1) c
              ORDER BY i.symbol`,
      values: [timeframe],
      rowMode: 'array',
    });
    return result.rows.map(toCandle);
  }

  /** The instruments of `symbols` that exist, by symbol. */
  async instruments(symbols: readonly string[]): Promise<Instrument[]> {
    const { rows } = await this.db.query<InstrumentRow>(
      'SELECT symbol, base, quote, tick_size, lot_size, min_notional FROM qcat_market.instruments WHERE symbol = ANY($1::text[]) ORDER BY symbol',
      [symbols],
    );
    return rows.map(toInstrument);
  }

  /** Candles of `timeframe` for `symbols` that open after `after`, by open time then symbol. */
  async candlesAfter(
    timeframe: Timeframe,
    symbols: readonly string[],
    after: number,
    limit: number,
  ): Promise<Candle[]> {
    if (symbols.length === 0) return [];
    const result = await this.db.query<CandleRow>({
      text: `SELECT ${candleColumns('c')} FROM qcat_market.candles c
              WHERE c.timeframe = $1 AND c.symbol = ANY($2::text[])
                AND c.open_time > to_timestamp($3::bigint / 1000.0)
              ORDER BY c.open_time, c.symbol LIMIT $4`,
      values: [timeframe, symbols, after, limit],
      rowMode: 'array',
    });
    return result.rows.map(toCandle);
  }

  /**
   * The market's clock: the close of the newest stored bar of `timeframe`, any symbol (epoch ms);
   * undefined without bars. What automation reads as now under AUTOMATION_CLOCK=market.
   */
  async latestCloseTime(timeframe: Timeframe): Promise<number | undefined> {
    const { rows } = await this.db.query<{ ms: string | null }>(
      `SELECT round(date_part('epoch', max(open_time)) * 1000)::bigint AS ms FROM qcat_market.candles
        WHERE timeframe = $1`,
      [timeframe],
    );
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Number(ms) + TIMEFRAME_MS[timeframe];
  }

  /** Open time of the newest candle of `timeframe` among `symbols` (epoch ms), if any. */
  async latestOpenTime(
    timeframe: Timeframe,
    symbols: readonly string[],
  ): Promise<number | undefined> {
    const { rows } = await this.db.query<{ ms: string | null }>(
      `SELECT round(date_part('epoch', max(open_time)) * 1000)::bigint AS ms FROM qcat_market.candles
        WHERE timeframe = $1 AND symbol = ANY($2::text[])`,
      [timeframe, symbols],
    );
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Number(ms);
  }

  /** The feed's seed and origin, recorded at its first start so a restart continues its path. */
  async feed(
    name: string,
    initial: { seed: number; origin: number },
  ): Promise<{ seed: number; origin: number }> {
    await this.db.query(
      `INSERT INTO qcat_market.feeds (name, seed, origin) VALUES ($1, $2, to_timestamp($3::bigint / 1000.0))
       ON CONFLICT (name) DO NOTHING`,
      [name, initial.seed, initial.origin],
    );
    const { rows } = await this.db.query<{ seed: string; origin: string }>(
      `SELECT seed, round(date_part('epoch', origin) * 1000)::bigint AS origin FROM qcat_market.feeds WHERE name = $1`,
      [name],
    );
    const row = rows[0];
    if (!row) throw new Error(`feed ${name} was not recorded`);
    return { seed: Number(row.seed), origin: Number(row.origin) };
  }

  /** The feed's saved state (see `saveFeedState`), as stored; undefined before the first. */
  async feedState(name: string): Promise<unknown> {
    const { rows } = await this.db.query<{ state: unknown }>(
      'SELECT state FROM qcat_market.feeds WHERE name = $1',
      [name],
    );
    return rows[0]?.state ?? undefined;
  }

  /** Saves where the feed stands; in the transaction that writes its bars, so the two agree. */
  async saveFeedState(name: string, state: unknown): Promise<void> {
    await this.db.query('UPDATE qcat_market.feeds SET state = $2::json WHERE name = $1', [
      name,
      JSON.stringify(state),
    ]);
  }

  /** How many candles are stored, optionally of one symbol and/or timeframe. */
  async countCandles(filter: { symbol?: string; timeframe?: Timeframe } = {}): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM qcat_market.candles
        WHERE ($1::text IS NULL OR symbol = $1) AND ($2::text IS NULL OR timeframe = $2)`,
      [filter.symbol ?? null, filter.timeframe ?? null],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
