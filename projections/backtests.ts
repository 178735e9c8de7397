import type pg from 'pg';
import {
  backtests,
  failureOf,
  noMarketData,
  runBacktest,
  type BacktestOutput,
  type BacktestSpec,
  type BacktestState,
} from '../core/backtests/backtest-run.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { DomainEvent } from '../core/decider.js';
import { QcatError } from '../core/errors.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { JsonObject, RecordedEvent } from '../core/eventstore/event-store.js';
import type { Candle, Instrument } from '../core/market/types.js';
import { reason } from '../core/trading/orders.js';
import type { PostgresProjection } from './projection.js';

const domainEvent = (event: RecordedEvent): DomainEvent => ({
  type: event.type,
  data: event.data as JsonObject,
});

/**
 * Backtest runs as people read them (`qcat_read.backtests`, one row each, folded with the
 * decider's own `evolve`): status, the request, the summary or the failure, who asked and when.
 */
export const backtestsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'backtests',
  version: 1,
  // One row per run, read by people only: an event it cannot apply is parked (ADR 011).
  onPoisonEvent: 'park',
  tables: ['backtests'],

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.backtests (
        backtest_id        text        PRIMARY KEY,
        status             text        NOT NULL,
        strategy_id        text,
        kind               text        NOT NULL,
        symbol             text        NOT NULL,
        timeframe          text        NOT NULL,
        from_time          timestamptz NOT NULL,
        to_time            timestamptz NOT NULL,
        state              jsonb       NOT NULL,
        requested_by       text        NOT NULL,
        requested_at       timestamptz NOT NULL,
        finished_at        timestamptz,
        requested_position bigint      NOT NULL UNIQUE,
        revision           bigint      NOT NULL,
        position           bigint      NOT NULL
      );
      CREATE INDEX ON ${schema}.backtests (status, requested_position);
      CREATE INDEX ON ${schema}.backtests (strategy_id, requested_position);
      CREATE INDEX ON ${schema}.backtests (symbol, requested_position);
      CREATE INDEX ON ${schema}.backtests (kind, requested_position)`);
  },

  async apply(client, schema, events) {
    for (const event of events) {
      if (categoryOf(event.streamId) !== 'backtest') continue;
      const parsed = backtests.parseEvent(domainEvent(event));
      const { backtestId } = parsed.data;
      if (parsed.type === 'BacktestRequested') {
        const state = backtests.evolve(backtests.initialState(), parsed);
        await client.query(
          `INSERT INTO ${schema}.backtests (backtest_id, status, strategy_id, kind, symbol, timeframe,
                                            from_time, to_time, state, requested_by, requested_at,
                                            requested_position, revision, position)
           VALUES ($1, 'requested', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)
           ON CONFLICT (backtest_id) DO NOTHING`,
          [
            backtestId,
            parsed.data.strategyId,
            parsed.data.kind,
            parsed.data.symbol,
            parsed.data.timeframe,
            parsed.data.from,
            parsed.data.to,
            state,
            event.metadata.actor,
            event.recordedAt,
            event.position,
            event.revision,
          ],
        );
        continue;
      }
      const { rows } = await client.query<{ state: BacktestState }>(
        `SELECT state FROM ${schema}.backtests WHERE backtest_id = $1`,
        [backtestId],
      );
      if (!rows[0]) continue;
      const state = backtests.evolve(rows[0].state, parsed);
      await client.query(
        `UPDATE ${schema}.backtests SET status = $2, state = $3, finished_at = $4, revision = $5,
                position = $6 WHERE backtest_id = $1`,
        [backtestId, state.status, state, event.recordedAt, event.revision, event.position],
      );
    }
  },
};

/**
 * Where the results of a run live: the schema `qcat_backtest`, beside the read models and outside
 * their generations. The runner writes them; they are not folded from events (one run can have
 * thousands of trades), so a rebuild of a read model — which builds a new generation from the log
 * and drops the old one — must not take them along. Rebuilding `backtests` leaves them as they
 * are; rebuilding the runner finds every run completed with its results stored and recomputes
 * nothing. They are not in the log's backups: after a restore into an empty database the runner
 * recomputes the trades and equity of every completed run from the stored candles (a run is a
 * pure function of its request and the candles), or, without the candles, the API says so.
 */
export const RESULTS_SCHEMA = 'qcat_backtest';

/** Creates the result tables if missing; expects to run inside a transaction. */
async function createResultTables(client: pg.ClientBase): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock(hashtextextended('qcat.backtest.schema', 0))");
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS qcat_backtest;
    CREATE TABLE IF NOT EXISTS qcat_backtest.runs (
      backtest_id      text        PRIMARY KEY,
      request_event_id uuid        NOT NULL,
      trades           integer     NOT NULL,
      equity_days      integer     NOT NULL,
      written_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS qcat_backtest.trades (
      backtest_id  text             NOT NULL,
      seq          integer          NOT NULL,
      side         text             NOT NULL,
      opened_at    timestamptz      NOT NULL,
      closed_at    timestamptz      NOT NULL,
      quantity     double precision NOT NULL,
      entry_price  double precision NOT NULL,
      exit_price   double precision NOT NULL,
      realized_pnl double precision NOT NULL,
      fees         double precision NOT NULL,
      net_pnl      double precision NOT NULL,
      PRIMARY KEY (backtest_id, seq)
    );
    CREATE TABLE IF NOT EXISTS qcat_backtest.equity (
      backtest_id text             NOT NULL,
      day         date             NOT NULL,
      equity      double precision NOT NULL,
      PRIMARY KEY (backtest_id, day)
    )`);
}

/** Creates the `qcat_backtest` schema if missing; safe when several processes start at once. */
export async function ensureBacktestResultsSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await createResultTables(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

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

/** The run's candles in time order, read in keyset pages inside the runner's transaction. */
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

/** Who the runner acts as in the log. */
export const BACKTEST_RUNNER_ACTOR = 'system:backtest-runner';

type Outcome =
  | { kind: 'completed'; output: BacktestOutput }
  | { kind: 'failed'; reason: string }
  | { kind: 'skipped'; detail: string };

/**
 * The process manager that runs backtests: on `BacktestRequested` it loads the candles of the
 * request from `qcat_market`, runs the pure backtest (core/backtests/backtest-run.ts), replaces the
 * run's rows in the result tables (`qcat_backtest`, see RESULTS_SCHEMA) and then issues
 * `CompleteBacktest` through the command handler, with the request as causation and its
 * correlation id carried on; without candles, or when the engine refuses the request, it issues
 * `FailBacktest` with a coded reason.
 *
 * It runs as a PostgreSQL projection: one leader, a checkpoint, stop-on-error. The rows are
 * written in the runner's transaction, so they commit with its checkpoint; a crash after the
 * `BacktestCompleted` append but before that commit leaves the run completed without rows, and the
 * replay then recomputes them (the same rows: the run is deterministic) and completes nothing
 * twice (the decider answers `[]`). A run already completed with its rows stored, or failed, is
 * skipped, so a rebuild of the runner recomputes nothing. `backtest_runner_log` records what each
 * request led to.
 */
export const backtestRunner = (commands: CommandHandler): PostgresProjection => {
  let tablesReady = false;
  return {
    kind: 'postgres',
    name: 'backtest_runner',
    version: 1,
    tables: ['backtest_runner_log'],

    async setup(client: pg.ClientBase, schema: string) {
      await client.query(`
        CREATE TABLE ${schema}.backtest_runner_log (
          trigger_position bigint      PRIMARY KEY,
          trigger_event_id uuid        NOT NULL,
          backtest_id      text        NOT NULL,
          outcome          text        NOT NULL,
          detail           text,
          bars             integer,
          duration_ms      integer,
          result_position  bigint,
          logged_at        timestamptz NOT NULL DEFAULT now()
        )`);
    },

    async apply(client: pg.ClientBase, schema: string, events: readonly RecordedEvent[]) {
      for (const event of events) {
        if (categoryOf(event.streamId) !== 'backtest' || event.type !== 'BacktestRequested')
          continue;
        const parsed = backtests.parseEvent(domainEvent(event));
        if (parsed.type !== 'BacktestRequested') continue;
        const { backtestId, requestedBy: _by, ...spec } = parsed.data;
        if (!tablesReady) {
          await createResultTables(client);
          tablesReady = true;
        }
        // One run at a time per id, should a rebuild of the runner meet the live one.
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
          `qcat.backtest.run:${backtestId}`,
        ]);

        const started = performance.now();
        const outcome = await run(client, commands, event.streamId, backtestId, spec, event);
        const durationMs = Math.round(performance.now() - started);

        let logged: { outcome: string; detail: string | null; position: bigint | null } = {
          outcome: outcome.kind,
          detail: outcome.kind === 'skipped' ? outcome.detail : null,
          position: null,
        };
        if (outcome.kind !== 'skipped') {
          if (outcome.kind === 'completed')
            await writeResults(client, backtestId, event.eventId, outcome.output);
          const command =
            outcome.kind === 'completed'
              ? {
                  type: 'CompleteBacktest' as const,
                  backtestId,
                  summary: { ...outcome.output.summary, durationMs },
                }
              : { type: 'FailBacktest' as const, backtestId, reason: outcome.reason };
          try {
            const result = await commands.handle(backtests, event.streamId, command, {
              actor: BACKTEST_RUNNER_ACTOR,
              correlationId: event.metadata.correlationId ?? event.eventId,
              causationId: event.eventId,
            });
            logged = {
              outcome: result.eventCount > 0 ? outcome.kind : `${outcome.kind} (unchanged)`,
              detail: outcome.kind === 'failed' ? outcome.reason : null,
              position: result.eventCount > 0 ? result.position : null,
            };
          } catch (error) {
            // A refusal is an answer (the run ended otherwise meanwhile): record it and go on.
            // Anything else stops the runner at this event until it is fixed.
            if (!(error instanceof QcatError)) throw error;
            logged = {
              outcome: 'refused',
              detail: `${error.code}: ${error.message}`,
              position: null,
            };
          }
        }
        await client.query(
          `INSERT INTO ${schema}.backtest_runner_log (trigger_position, trigger_event_id, backtest_id,
                                                      outcome, detail, bars, duration_ms, result_position)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (trigger_position) DO NOTHING`,
          [
            event.position,
            event.eventId,
            backtestId,
            logged.outcome,
            logged.detail,
            outcome.kind === 'completed' ? outcome.output.summary.bars : null,
            outcome.kind === 'skipped' ? null : durationMs,
            logged.position,
          ],
        );
      }
    },
  };
};

/** Decides what to do about one request, and runs it when it is to be run. */
async function run(
  client: pg.ClientBase,
  commands: CommandHandler,
  streamId: string,
  backtestId: string,
  spec: BacktestSpec,
  event: RecordedEvent,
): Promise<Outcome> {
  const { state } = await commands.load(backtests, streamId);
  if (state.status === 'failed') return { kind: 'skipped', detail: 'failed already' };
  if (state.status === 'completed') {
    const { rows } = await client.query<{ request_event_id: string }>(
      'SELECT request_event_id FROM qcat_backtest.runs WHERE backtest_id = $1',
      [backtestId],
    );
    if (rows[0]?.request_event_id === event.eventId)
      return { kind: 'skipped', detail: 'completed already, results stored' };
  }
  const instrument = await loadInstrument(client, spec.symbol);
  if (!instrument)
    return { kind: 'failed', reason: reason('INSTRUMENT_NOT_FOUND', { symbol: spec.symbol }) };
  const candles = await loadCandles(client, spec);
  if (candles.length === 0) return { kind: 'failed', reason: noMarketData(spec) };
  try {
    return { kind: 'completed', output: runBacktest(backtestId, spec, instrument, candles) };
  } catch (error) {
    if (error instanceof QcatError) return { kind: 'failed', reason: failureOf(error) };
    throw error;
  }
}
