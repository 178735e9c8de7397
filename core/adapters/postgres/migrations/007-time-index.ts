import type { Migration } from '../migrations.js';

/**
 * Migration 7 (issue 22, ADR 001 "Batched appends at scale"): the B-tree on
 * `(recorded_at, position)` cost every append an index insert, for one query (positionAt).
 * `recorded_at` never decreases along the log (ADR 001), so the last position recorded at or
 * before an instant is found by bisection on the primary key instead: about 2·log₂(head) index
 * probes, flat as the log grows. A BRIN index (a few pages, almost free to maintain on an
 * append-only time column) keeps ad-hoc time-range scans cheap.
 */
export const timeIndexMigration: Migration = {
  version: 7,
  name: 'recorded_at by bisection, BRIN instead of B-tree',
  sql: `
    DROP INDEX qcat_events_recorded_at;
    CREATE INDEX qcat_events_recorded_at_brin ON qcat_events USING brin (recorded_at);

    -- The largest position whose recorded_at is at or before p_instant; 0 when there is none.
    -- lo is always 0 or a recorded position at or before the instant; every probe halves (lo, hi].
    -- Positions may have gaps (a log imported as it was): a probe takes the first event at or
    -- after mid.
    CREATE FUNCTION qcat_position_at(p_instant timestamptz) RETURNS bigint
    LANGUAGE plpgsql STABLE AS $fn$
    DECLARE
      lo  bigint := 0;
      hi  bigint;
      mid bigint;
      p   bigint;
      t   timestamptz;
    BEGIN
      SELECT max(e.position) INTO hi FROM qcat_events e;
      IF hi IS NULL THEN
        RETURN 0;
      END IF;
      WHILE lo < hi LOOP
        mid := lo + (hi - lo + 1) / 2;
        SELECT e.position, e.recorded_at INTO p, t
          FROM qcat_events e WHERE e.position >= mid ORDER BY e.position LIMIT 1;
        IF t <= p_instant THEN
          lo := p;
        ELSE
          hi := mid - 1;
        END IF;
      END LOOP;
      RETURN lo;
    END
    $fn$;
  `,
};
