import type pg from 'pg';
import type { BacktestOutput, BacktestSpec } from '../../backtests/backtest-run.js';
import type { Candle, Instrument } from '../../market/types.js';

/**
 * The backtest runner's store (automation/backtests, ADR 027): the candles and instrument a run
 * reads from `qcat_market`, and the results it writes to `qcat_backtest`; the backtests read model
 * and its queries (projections/backtest-queries.ts) only read them.
 */

/**
 * Where the results of a run live: the schema `qcat_backtest` (migration 18), beside the read models and outside
 * their generations. The runner writes them; they are not folded from events (one run can have
 * thousands of trades), so a rebuild of a read model — which builds a new generation from the log
 * and drops the old one — must not take them along. Rebuilding `backtests` leaves them as they
 * are; the runner, handling a request again, finds the run completed with its results stored and
 * recomputes nothing. They are not in the log's backups: after a restore into an empty database the runner
 * recomputes the trades and equity of every completed run from the stored candles (a run is a
 * pure function of its request and the candles), or, without the candles, the API says so.
 */
export const RESULTS_SCHEMA = 'qcat_backtest';

const ROWS_PER_INSERT = 5000;

/** Replaces the stored results of a run: the same run written twice leaves the same rows. */
async function writeResults(
  client: pg.ClientBase,
  backtestId: string,
  requestEventId: string,
  output: BacktestOutput,
): Promise<void> {
  await client.query('DELETE FROM qcat_backtest.trades WHERE backtest_id = $1', [backtestId]);
  await client.query('DELETE FROM qcat_backtest.equity WHERE backtest_id = $1', [backtestId]);
  for (let start = 0; start < output.trades.length; start += ROWS_PER_INSERT) {
    const batch = output.trades.slice(start, start + ROWS_PER_INSERT);
    await client.query(
      `INSERT INTO qcat_backtest.trades (backtest_id, seq, side, opened_at, closed_at, quantity,
                                         entry_price, exit_price, realized_pnl, fees, net_pnl)
       SELECT $1, u.seq, u.side, to_timestamp(u.opened / 1000.0), to_timestamp(u.closed / 1000.0),
              u.quantity, u.entry, u.exit, u.realized, u.fees, u.net
         FROM unnest($2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[],
                     $8::float8[], $9::float8[], $10::float8[], $11::float8[])
              AS u(seq, side, opened, closed, quantity, entry, exit, realized, fees, net)`,
      [
        backtestId,
        batch.map((_, i) => start + i + 1),
        batch.map((t) => t.side),
        batch.map((t) => t.openedAt),
        batch.map((t) => t.closedAt),
        batch.map((t) => t.quantity),
        batch.map((t) => t.entryPrice),
        batch.map((t) => t.exitPrice),
        batch.map((t) => t.realizedPnl),
        batch.map((t) => t.fees),
        batch.map((t) => t.netPnl),
      ],
    );
  }
  if (output.equity.length > 0)
    await client.query(
      `INSERT INTO qcat_backtest.equity (backtest_id, day, equity)
       SELECT $1, u.day, u.equity FROM unnest($2::date[], $3::float8[]) AS u(day, equity)`,
      [backtestId, output.equity.map((e) => e.date), output.equity.map((e) => e.equity)],
    );
  await client.query(
    `INSERT INTO qcat_backtest.runs (backtest_id, request_event_id, trades, equity_days)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (backtest_id) DO UPDATE SET request_event_id = $2, trades = $3, equity_days = $4,
            written_at = now()`,
    [backtestId, requestEventId, output.trades.length, output.equity.length],
  );
}

const CANDLE_PAGE = 10_000;

/** The run's candles in time order, read in keyset pages. */
async function loadCandles(client: pg.ClientBase, spec: BacktestSpec): Promise<Candle[]> {
  const candles: Candle[] = [];
  let after = Date.parse(spec.from) - 1;
  const to = Date.parse(spec.to);
  for (;;) {
    const { rows } = await client.query<[number, number, number, number, number, number]>({
      text: `SELECT (extract(epoch FROM open_time) * 1000)::float8, open, high, low, close, volume
               FROM qcat_market.candles
              WHERE symbol = $1 AND timeframe = $2
                AND open_time > to_timestamp($3::bigint / 1000.0)
                AND open_time < to_timestamp($4::bigint / 1000.0)
              ORDER BY open_time LIMIT $5`,
      values: [spec.symbol, spec.timeframe, after, to, CANDLE_PAGE],
      rowMode: 'array',
    });
    for (const [openTime, open, high, low, close, volume] of rows)
      candles.push({
        symbol: spec.symbol,
        timeframe: spec.timeframe,
        openTime,
        open,
        high,
        low,
        close,
        volume,
      });
    const last = rows.at(-1);
    if (!last || rows.length < CANDLE_PAGE) return candles;
    after = last[0];
  }
}

async function loadInstrument(
  client: pg.ClientBase,
  symbol: string,
): Promise<Instrument | undefined> {
  const { rows } = await client.query<{
    symbol: string;
    base: string;
    quote: string;
    tick_size: string;
    lot_size: string;
    min_notional: string;
  }>(
    `SELECT symbol, base, quote, tick_size, lot_size, min_notional FROM qcat_market.instruments
      WHERE symbol = $1`,
    [symbol],
  );
  const row = rows[0];
  return row
    ? {
        symbol: row.symbol,
        base: row.base,
        quote: row.quote,
        tickSize: Number(row.tick_size),
        lotSize: Number(row.lot_size),
        minNotional: Number(row.min_notional),
      }
    : undefined;
}

/** Reads a run's inputs and replaces its stored results. */
export class BacktestResultsStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The id of the request whose results are stored for the run, if any. */
  async storedRequest(backtestId: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ request_event_id: string }>(
      'SELECT request_event_id FROM qcat_backtest.runs WHERE backtest_id = $1',
      [backtestId],
    );
    return rows[0]?.request_event_id;
  }

  /** The instrument and candles of a run, read in one snapshot. */
  async inputs(
    spec: BacktestSpec,
  ): Promise<{ instrument: Instrument | undefined; candles: Candle[] }> {
    return this.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const instrument = await loadInstrument(client, spec.symbol);
      return { instrument, candles: instrument ? await loadCandles(client, spec) : [] };
    });
  }

  /** Replaces the stored results of a run, one run at a time per id. */
  async write(backtestId: string, requestEventId: string, output: BacktestOutput): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `qcat.backtest.run:${backtestId}`,
      ]);
      await writeResults(client, backtestId, requestEventId, output);
    });
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}
