import type pg from 'pg';

/**
 * Versioned schema of the PostgreSQL event log. Append-only list: never edit a released entry,
 * add a new one. Applied in order at start-up under an advisory lock, each in its own transaction.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const eventLogMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'event log',
    sql: `
      CREATE TABLE qcat_events (
        position     bigint      PRIMARY KEY,
        stream_id    text        NOT NULL,
        revision     bigint      NOT NULL,
        event_id     uuid        NOT NULL UNIQUE,
        type         text        NOT NULL,
        data         jsonb       NOT NULL,
        metadata     jsonb       NOT NULL,
        recorded_at  timestamptz NOT NULL,
        UNIQUE (stream_id, revision)
      );
      CREATE INDEX qcat_events_recorded_at ON qcat_events (recorded_at, position);

      CREATE TABLE qcat_streams (
        stream_id text   PRIMARY KEY,
        revision  bigint NOT NULL
      );

      -- One row: the last position and commit time. Every append locks it, so appends commit
      -- one after another in position order (ADR 001).
      CREATE TABLE qcat_log_head (
        singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        position    bigint      NOT NULL,
        recorded_at timestamptz NOT NULL
      );
      INSERT INTO qcat_log_head (position, recorded_at) VALUES (0, '-infinity');

      -- Writes a group of appends in one transaction; returns one row per append, in order.
      -- status: ok | repeat (idempotent re-append) | conflict (detail = actual revision or -1)
      --         | reused (detail = an event id recorded elsewhere)
      CREATE FUNCTION qcat_append(
        p_streams text[], p_expected text[], p_counts int[],
        p_ids uuid[], p_types text[], p_data jsonb[], p_metadata jsonb[]
      ) RETURNS TABLE (status text, last_revision bigint, last_position bigint, detail text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        head_position bigint;
        head_time     timestamptz;
        commit_time   timestamptz;
        first_index   int := 1;
        n             int;
        s             text;
        expected      text;
        current_rev   bigint;
        ids           uuid[];
        rep           record;
        written       boolean := false;
      BEGIN
        SELECT h.position, h.recorded_at INTO head_position, head_time FROM qcat_log_head h FOR UPDATE;
        -- Millisecond precision, like the instants clients send; never earlier than the head.
        commit_time := greatest(date_trunc('milliseconds', clock_timestamp()), head_time);
        FOR i IN 1 .. coalesce(array_length(p_streams, 1), 0) LOOP
          n := p_counts[i];
          s := p_streams[i];
          expected := p_expected[i];
          ids := p_ids[first_index : first_index + n - 1];

          SELECT count(e.event_id) AS hits,
                 coalesce(bool_and(e.stream_id = s), true) AS same_stream,
                 count(DISTINCT e.revision - u.ord) AS offsets,
                 max(e.revision) AS rev,
                 max(e.position) AS pos,
                 min(u.id::text) AS some_id
            INTO rep
            FROM unnest(ids) WITH ORDINALITY AS u(id, ord)
            JOIN qcat_events e ON e.event_id = u.id;
          IF rep.hits > 0 THEN
            IF rep.hits = n AND rep.same_stream AND rep.offsets = 1 THEN
              RETURN QUERY SELECT 'repeat'::text, rep.rev, rep.pos, NULL::text;
            ELSE
              RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::bigint, rep.some_id;
            END IF;
            first_index := first_index + n;
            CONTINUE;
          END IF;

          SELECT st.revision INTO current_rev FROM qcat_streams st WHERE st.stream_id = s;
          IF NOT FOUND THEN
            current_rev := -1;
          END IF;
          IF NOT (expected = 'any'
                  OR (expected = 'no_stream' AND current_rev = -1)
                  OR (expected = 'stream_exists' AND current_rev >= 0)
                  OR expected = current_rev::text) THEN
            RETURN QUERY SELECT 'conflict'::text, current_rev, NULL::bigint, NULL::text;
            first_index := first_index + n;
            CONTINUE;
          END IF;

          INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at)
          SELECT head_position + u.ord, s, current_rev + u.ord, u.id, u.t, u.d, u.m, commit_time
            FROM unnest(ids,
                        p_types[first_index : first_index + n - 1],
                        p_data[first_index : first_index + n - 1],
                        p_metadata[first_index : first_index + n - 1])
                 WITH ORDINALITY AS u(id, t, d, m, ord);
          INSERT INTO qcat_streams (stream_id, revision) VALUES (s, current_rev + n)
            ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision;
          head_position := head_position + n;
          written := true;
          RETURN QUERY SELECT 'ok'::text, current_rev + n, head_position, NULL::text;
          first_index := first_index + n;
        END LOOP;
        IF written THEN
          UPDATE qcat_log_head SET position = head_position, recorded_at = commit_time;
          PERFORM pg_notify('qcat_log', head_position::text);
        END IF;
      END
      $fn$;
    `,
  },
  {
    version: 2,
    name: 'idempotency keys',
    sql: `
      CREATE TABLE qcat_idempotency (
        key          text        PRIMARY KEY,
        command_hash text        NOT NULL,
        result       jsonb,
        claimed_at   timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      );
      CREATE INDEX qcat_idempotency_claimed_at ON qcat_idempotency (claimed_at);
    `,
  },
  {
    version: 3,
    name: 'projection registry',
    sql: `
      -- One row per projection: where its live copy is, how far it got, what stopped it.
      CREATE TABLE qcat_projections (
        name           text        PRIMARY KEY,
        kind           text        NOT NULL,
        version        integer     NOT NULL,
        generation     integer     NOT NULL DEFAULT 1,
        checkpoint     bigint      NOT NULL DEFAULT 0,
        error_position bigint,
        error_message  text,
        error_at       timestamptz,
        leader         text,
        updated_at     timestamptz NOT NULL DEFAULT now()
      );
      -- Queries read projections through views here, so a rebuilt copy can replace the live one
      -- in one transaction.
      CREATE SCHEMA IF NOT EXISTS qcat_read;
    `,
  },
  {
    version: 4,
    name: 'set-based group append',
    sql: `
      -- Plans of qcat_append were cached while the log was empty (a hash join over the whole
      -- table): plan each call for the data it meets.
      ALTER FUNCTION qcat_append(text[], text[], int[], uuid[], text[], jsonb[], jsonb[])
        SET plan_cache_mode = force_custom_plan;

      -- The whole group at once: one read of the streams' revisions, the checks in memory, one
      -- INSERT of every event, one upsert of the streams. p_prev[i] is the 1-based index of an
      -- earlier append of the group to the same stream (0 if none), whose outcome decides the
      -- revision this one starts from. Event ids are only looked up when a caller supplied some
      -- (p_check_ids); on any hit the group goes through qcat_append, which tells repeats apart.
      -- Data and metadata arrive as one JSON array each (cheaper than jsonb[] on both ends).
      CREATE FUNCTION qcat_append_batch(
        p_streams text[], p_expected text[], p_counts int[], p_prev int[],
        p_ids uuid[], p_types text[], p_data jsonb, p_metadata jsonb, p_check_ids boolean
      ) RETURNS TABLE (status text, last_revision bigint, last_position bigint, detail text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        n_appends     int := coalesce(array_length(p_streams, 1), 0);
        head_position bigint;
        head_time     timestamptz;
        commit_time   timestamptz;
        stored_rev    bigint[];
        current_rev   bigint;
        expected      text;
        hit           boolean;
        after_rev     bigint[] := '{}';
        base_rev      bigint[] := '{}';
        base_pos      bigint[] := '{}';
        first_index   int[] := '{}';
        ok            boolean[] := '{}';
        statuses      text[] := '{}';
        positions     bigint[] := '{}';
        next_index    int := 1;
        event_append  int[];
        written       boolean := false;
      BEGIN
        -- The head lock first: an id check made before it could miss a racing writer's commit.
        SELECT h.position, h.recorded_at INTO head_position, head_time FROM qcat_log_head h FOR UPDATE;
        IF p_check_ids THEN
          -- Dynamic SQL: planned per call, so it always uses the event_id index.
          EXECUTE 'SELECT EXISTS (SELECT 1 FROM qcat_events WHERE event_id = ANY ($1))' INTO hit USING p_ids;
          IF hit THEN
            RETURN QUERY SELECT * FROM qcat_append(
              p_streams, p_expected, p_counts, p_ids, p_types,
              ARRAY(SELECT x FROM jsonb_array_elements(p_data) AS x),
              ARRAY(SELECT x FROM jsonb_array_elements(p_metadata) AS x));
            RETURN;
          END IF;
        END IF;
        commit_time := greatest(date_trunc('milliseconds', clock_timestamp()), head_time);
        SELECT array_agg(coalesce((SELECT s.revision FROM qcat_streams s WHERE s.stream_id = u.id), -1) ORDER BY u.ord)
          INTO stored_rev FROM unnest(p_streams) WITH ORDINALITY AS u(id, ord);
        FOR i IN 1 .. n_appends LOOP
          current_rev := CASE WHEN p_prev[i] > 0 THEN after_rev[p_prev[i]] ELSE stored_rev[i] END;
          expected := p_expected[i];
          first_index[i] := next_index;
          next_index := next_index + p_counts[i];
          IF expected = 'any'
             OR (expected = 'no_stream' AND current_rev = -1)
             OR (expected = 'stream_exists' AND current_rev >= 0)
             OR expected = current_rev::text THEN
            ok[i] := true;
            base_rev[i] := current_rev;
            base_pos[i] := head_position;
            head_position := head_position + p_counts[i];
            after_rev[i] := current_rev + p_counts[i];
            statuses[i] := 'ok';
            positions[i] := head_position;
            written := true;
          ELSE
            ok[i] := false;
            after_rev[i] := current_rev;
            statuses[i] := 'conflict';
            positions[i] := NULL;
          END IF;
        END LOOP;
        IF written THEN
          SELECT array_agg(c.a ORDER BY c.a, g) INTO event_append
            FROM unnest(p_counts) WITH ORDINALITY AS c(n, a), generate_series(1, c.n) AS g;
          INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at)
          SELECT base_pos[u.a] + (u.ord - first_index[u.a] + 1), p_streams[u.a],
                 base_rev[u.a] + (u.ord - first_index[u.a] + 1), u.id, u.t, u.d, u.m, commit_time
            FROM ROWS FROM (unnest(p_ids), unnest(p_types), jsonb_array_elements(p_data),
                            jsonb_array_elements(p_metadata), unnest(event_append))
                 WITH ORDINALITY AS u(id, t, d, m, a, ord)
           WHERE ok[u.a];
          INSERT INTO qcat_streams (stream_id, revision)
          SELECT DISTINCT ON (u.s) u.s, u.r
            FROM unnest(p_streams, after_rev, ok) WITH ORDINALITY AS u(s, r, k, ord)
           WHERE u.k
           ORDER BY u.s, u.ord DESC
          ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision;
          UPDATE qcat_log_head SET position = head_position, recorded_at = commit_time;
          PERFORM pg_notify('qcat_log', head_position::text);
        END IF;
        RETURN QUERY SELECT u.s, u.r, u.p, NULL::text FROM unnest(statuses, after_rev, positions) AS u(s, r, p);
      END
      $fn$;
    `,
  },
];

/** Arbitrary constant: the advisory lock that serialises concurrent migrators. */
const MIGRATION_LOCK = 7_302_145_001;

/** Applies the migrations that are not yet recorded; safe to run from several processes at once. */
export async function migrate(
  pool: pg.Pool,
  migrations: readonly Migration[] = eventLogMigrations,
): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS qcat_migrations (
        version    integer     PRIMARY KEY,
        name       text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM qcat_migrations');
    const done = new Set(rows.map((row) => row.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO qcat_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      applied.push(migration.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return applied;
}
