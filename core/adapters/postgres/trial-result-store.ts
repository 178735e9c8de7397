import type pg from 'pg';
import type { TrialRun } from '../../optimization/walk-forward.js';

/**
 * Where distributed optimization trials meet (ADR 029): each trial's result keyed by
 * (optimization, trial index), written once — a trial that ran twice (its worker was thought dead,
 * or the leader ran it itself) keeps its first row, and both are the same bits anyway — and the
 * `qcat worker` processes seen lately (a heartbeat every few seconds). Migration 17's tables.
 */

/** A stored trial: its run, or the message of the error it threw. */
export type StoredTrial = { run: TrialRun } | { error: string };

/** The typed array's bytes (this machine's byte order: little-endian on every platform Node ships). */
const bytesOf = (array: Float64Array | Int32Array): Buffer =>
  Buffer.from(array.buffer, array.byteOffset, array.byteLength);

/** A copy into a fresh, aligned buffer: a Buffer from pg may start at any offset of its pool. */
const float64Of = (bytes: Buffer): Float64Array =>
  new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const int32Of = (bytes: Buffer): Int32Array =>
  new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

interface TrialRow {
  trial: number;
  initial_cash: number;
  equity: Buffer;
  trade_days: Buffer;
  trade_pnl: Buffer;
  error: string | null;
}

export interface WorkerSeen {
  worker: string;
  host: string;
  pid: number;
  threads: number;
}

export class TrialResultStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Records a trial's result unless one is there; true when this call wrote it. */
  async save(
    optimizationId: string,
    trial: number,
    result: StoredTrial,
    worker: string,
  ): Promise<boolean> {
    const empty = Buffer.alloc(0);
    const run = 'run' in result ? result.run : null;
    const { rowCount } = await this.pool.query(
      `INSERT INTO qcat_optimization_trials
         (optimization_id, trial, initial_cash, equity, trade_days, trade_pnl, error, worker)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (optimization_id, trial) DO NOTHING`,
      [
        optimizationId,
        trial,
        run?.initialCash ?? 0,
        run ? bytesOf(run.equity) : empty,
        run ? bytesOf(run.tradeDays) : empty,
        run ? bytesOf(run.tradePnl) : empty,
        'error' in result ? result.error : null,
        worker,
      ],
    );
    return rowCount === 1;
  }

  /** Which of these trials have a result. */
  async has(optimizationId: string, trials: readonly number[]): Promise<Set<number>> {
    const { rows } = await this.pool.query<{ trial: number }>(
      `SELECT trial FROM qcat_optimization_trials
        WHERE optimization_id = $1 AND trial = ANY($2::integer[])`,
      [optimizationId, trials],
    );
    return new Set(rows.map((row) => row.trial));
  }

  /** The stored results among these trials. */
  async load(optimizationId: string, trials: readonly number[]): Promise<Map<number, StoredTrial>> {
    const { rows } = await this.pool.query<TrialRow>(
      `SELECT trial, initial_cash, equity, trade_days, trade_pnl, error
         FROM qcat_optimization_trials
        WHERE optimization_id = $1 AND trial = ANY($2::integer[])`,
      [optimizationId, trials],
    );
    return new Map(
      rows.map((row): [number, StoredTrial] => [
        row.trial,
        row.error !== null
          ? { error: row.error }
          : {
              run: {
                initialCash: row.initial_cash,
                equity: float64Of(row.equity),
                tradeDays: int32Of(row.trade_days),
                tradePnl: float64Of(row.trade_pnl),
              },
            },
      ]),
    );
  }

  /** Drops an ended optimization's results (its events hold what counts). */
  async forget(optimizationId: string): Promise<void> {
    await this.pool.query('DELETE FROM qcat_optimization_trials WHERE optimization_id = $1', [
      optimizationId,
    ]);
  }

  /** A worker says it is alive. */
  async beat(seen: WorkerSeen): Promise<void> {
    await this.pool.query(
      `INSERT INTO qcat_optimization_workers (worker, host, pid, threads)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (worker) DO UPDATE SET seen_at = now(), threads = EXCLUDED.threads`,
      [seen.worker, seen.host, seen.pid, seen.threads],
    );
  }

  /** A worker stopping cleanly says so; a killed one just stops beating. */
  async leave(worker: string): Promise<void> {
    await this.pool.query('DELETE FROM qcat_optimization_workers WHERE worker = $1', [worker]);
  }

  /** Workers seen in the last `withinSeconds` (other than `except`, the caller's own, if any). */
  async liveWorkers(withinSeconds: number, except = ''): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM qcat_optimization_workers
        WHERE seen_at > now() - make_interval(secs => $1) AND worker <> $2`,
      [withinSeconds, except],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
