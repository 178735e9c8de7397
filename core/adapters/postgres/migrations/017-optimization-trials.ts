import type { Migration } from '../migrations.js';

/**
 * Migration 17 (ADR 029): the results of optimization trials run by `qcat worker` processes, and the workers seen.
 * Not part of the log: a cache of work in progress, one row per (optimization, trial), written
 * once (`ON CONFLICT DO NOTHING`) so a trial that ran twice counts once; the leader deletes an
 * optimization's rows when it ends. Backups leave both tables out.
 */
export const optimizationTrialsMigration: Migration = {
  version: 17,
  name: 'distributed optimization trials',
  sql: `
    CREATE TABLE qcat_optimization_trials (
      optimization_id text             NOT NULL,
      trial           integer          NOT NULL,
      -- The trial's TrialRun as little-endian typed-array bytes: bit for bit what the thread made.
      initial_cash    double precision NOT NULL,
      equity          bytea            NOT NULL,
      trade_days      bytea            NOT NULL,
      trade_pnl       bytea            NOT NULL,
      -- Set when the trial threw: the leader fails the optimization with it.
      error           text,
      worker          text             NOT NULL,
      recorded_at     timestamptz      NOT NULL DEFAULT now(),
      PRIMARY KEY (optimization_id, trial)
    );
    CREATE TABLE qcat_optimization_workers (
      worker     text        PRIMARY KEY,
      host       text        NOT NULL,
      pid        integer     NOT NULL,
      threads    integer     NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      seen_at    timestamptz NOT NULL DEFAULT now()
    );
  `,
};
