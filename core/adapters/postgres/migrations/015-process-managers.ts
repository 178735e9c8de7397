import type { Migration } from '../migrations.js';

/**
 * Migration 15 (ADR 027). The approval flow and the
 * backtest runner leave the projections for the process-manager runner (ADR 010):
 *
 * - `qcat_process_outcomes`: what each process manager's intents came to (acted, refused, held,
 *   repeated), with the command's result; the approval API reads the flow's effect here. Written
 *   once per (manager, cause, key): a cause handled again after a crash keeps its first outcome.
 * - Their rows in `qcat_projections` are renamed to the process managers' names, so each carries
 *   on from its checkpoint (nothing is issued again, no stale row is left to raise a lag alert);
 *   their old read-model generations and views are dropped where this role may.
 */
export const processManagersMigration: Migration = {
  version: 15,
  name: 'process managers apart from read models',
  sql: `
    CREATE TABLE qcat_process_outcomes (
      manager        text        NOT NULL,
      cause          text        NOT NULL,
      key            text        NOT NULL,
      cause_position bigint,
      stream_id      text        NOT NULL,
      command        text        NOT NULL,
      result         text        NOT NULL,
      detail         text,
      events         integer,
      revision       bigint,
      position       bigint,
      recorded_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (manager, cause, key)
    );
    CREATE INDEX ON qcat_process_outcomes (manager, cause_position);
    UPDATE qcat_projections SET name = 'automation.approval-flow', kind = 'process', version = 1
     WHERE name = 'approval_flow'
       AND NOT EXISTS (SELECT 1 FROM qcat_projections WHERE name = 'automation.approval-flow');
    UPDATE qcat_projections SET name = 'automation.backtest-runner', kind = 'process', version = 1
     WHERE name = 'backtest_runner'
       AND NOT EXISTS (SELECT 1 FROM qcat_projections WHERE name = 'automation.backtest-runner');
    DELETE FROM qcat_projections WHERE name IN ('approval_flow', 'backtest_runner');
    -- The old generations and views belong to whoever ran the projections: with separate roles
    -- (ADR 015) the application role, which the owner running this may not touch; then they stay,
    -- unread, until an operator drops them.
    DO $drop$
    DECLARE s text;
    BEGIN
      FOR s IN SELECT format('DROP VIEW IF EXISTS %I.%I', n.nspname, c.relname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'qcat_read' AND c.relname IN ('approval_flow_log', 'backtest_runner_log')
               UNION ALL
               SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace
                WHERE nspname LIKE 'qcat\\_p\\_approval\\_flow\\_%' OR nspname LIKE 'qcat\\_p\\_backtest\\_runner\\_%'
      LOOP
        BEGIN
          EXECUTE s;
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE NOTICE 'left in place (not the owner): %', s;
        END;
      END LOOP;
    END
    $drop$;
  `,
};
