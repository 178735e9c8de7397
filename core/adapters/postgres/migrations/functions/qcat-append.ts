// Over 400 lines with comments, under it without: the two append functions of the log, whole.
/**
 * The current definitions of the log's append functions (ADR 001, ADR 005), one place each. A
 * migration that changes one edits it here and lists it in its `functions` (ADR 028): the
 * migration replaces the function, it does not carry a copy. The text is kept byte for byte as
 * migration 5 first wrote it (indentation included), so a database created today and one upgraded
 * from then hold the same function source.
 */

/**
 * Writes a group of appends in one transaction; returns one row per append, in order.
 * status: ok | repeat (idempotent re-append) | conflict (detail = actual revision or -1)
 *         | reused (detail = an event id recorded elsewhere).
 * Each event's hash chains onto its stream's previous one: qcat_event_hash written out (plpgsql
 * does not inline a SQL function), over p_digests, one content digest per event.
 */
export const QCAT_APPEND = `
      CREATE OR REPLACE FUNCTION qcat_append(
        p_streams text[], p_expected text[], p_counts int[],
        p_ids uuid[], p_types text[], p_data jsonb[], p_metadata jsonb[], p_digests text[]
      ) RETURNS TABLE (status text, last_revision bigint, last_position bigint, detail text)
      LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $fn$
      DECLARE
        head_position bigint;
        head_time     timestamptz;
        commit_time   timestamptz;
        commit_ms     text;
        first_index   int := 1;
        n             int;
        s             text;
        expected      text;
        current_rev   bigint;
        ids           uuid[];
        rep           record;
        written       boolean := false;
        prev_hash     text;
        hashes        text[];
      BEGIN
        SELECT h.position, h.recorded_at INTO head_position, head_time FROM qcat_log_head h FOR UPDATE;
        commit_time := greatest(date_trunc('milliseconds', clock_timestamp()), head_time);
        commit_ms := round(date_part('epoch', commit_time) * 1000)::bigint::text;
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

          SELECT st.revision, st.hash INTO current_rev, prev_hash FROM qcat_streams st WHERE st.stream_id = s;
          IF NOT FOUND THEN
            current_rev := -1;
            prev_hash := repeat('0', 64);
          END IF;
          IF NOT (expected = 'any'
                  OR (expected = 'no_stream' AND current_rev = -1)
                  OR (expected = 'stream_exists' AND current_rev >= 0)
                  OR expected = current_rev::text) THEN
            RETURN QUERY SELECT 'conflict'::text, current_rev, NULL::bigint, NULL::text;
            first_index := first_index + n;
            CONTINUE;
          END IF;
          IF prev_hash IS NULL THEN
            SELECT e.hash INTO prev_hash FROM qcat_events e WHERE e.stream_id = s AND e.revision = current_rev;
          END IF;
          hashes := array_fill(NULL::text, ARRAY[n]);
          FOR j IN 1 .. n LOOP
            -- qcat_event_hash, written out: plpgsql does not inline a SQL function (3× slower).
            prev_hash := encode(sha256(convert_to(prev_hash || E'\\n' || (current_rev + j)::text
              || E'\\n' || commit_ms || E'\\n' || p_digests[first_index + j - 1], 'UTF8')), 'hex');
            hashes[j] := prev_hash;
          END LOOP;

          INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash)
          SELECT head_position + u.ord, s, current_rev + u.ord, u.id, u.t, u.d, u.m, commit_time, u.h
            FROM unnest(ids,
                        p_types[first_index : first_index + n - 1],
                        p_data[first_index : first_index + n - 1],
                        p_metadata[first_index : first_index + n - 1],
                        hashes)
                 WITH ORDINALITY AS u(id, t, d, m, h, ord);
          INSERT INTO qcat_streams (stream_id, revision, hash) VALUES (s, current_rev + n, prev_hash)
            ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, hash = excluded.hash;
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
`;

/**
 * The whole group at once: one read of the streams' revisions and last hashes, the checks in
 * memory, one INSERT of every event, one upsert of the streams. p_prev[i] is the 1-based index of
 * an earlier append of the group to the same stream (0 if none), whose outcome decides the
 * revision and hash this one starts from; the links are made in one pass over the group's events,
 * in order. Event ids are only looked up when a caller supplied some (p_check_ids); on any hit
 * the group goes through qcat_append, which tells repeats apart. Data and metadata arrive as one
 * JSON array each (cheaper than jsonb[] on both ends). Plans of the per-call dynamic SQL are made
 * for the data met.
 */
export const QCAT_APPEND_BATCH = `
      CREATE OR REPLACE FUNCTION qcat_append_batch(
        p_streams text[], p_expected text[], p_counts int[], p_prev int[],
        p_ids uuid[], p_types text[], p_data jsonb, p_metadata jsonb, p_digests text[],
        p_check_ids boolean
      ) RETURNS TABLE (status text, last_revision bigint, last_position bigint, detail text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        n_appends     int := coalesce(array_length(p_streams, 1), 0);
        n_events      int := coalesce(array_length(p_ids, 1), 0);
        head_position bigint;
        head_time     timestamptz;
        commit_time   timestamptz;
        commit_ms     text;
        stored_rev    bigint[];
        stored_hash   text[];
        current_rev   bigint;
        prev_hash     text;
        expected      text;
        hit           boolean;
        after_rev     bigint[] := '{}';
        after_hash    text[] := '{}';
        base_rev      bigint[] := '{}';
        base_pos      bigint[] := '{}';
        first_index   int[] := '{}';
        ok            boolean[] := '{}';
        statuses      text[] := '{}';
        positions     bigint[] := '{}';
        hashes        text[];
        -- A local copy is an expanded array: element access is O(1), not a walk from the start.
        digests       text[] := p_digests;
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
              ARRAY(SELECT x FROM jsonb_array_elements(p_metadata) AS x),
              p_digests);
            RETURN;
          END IF;
        END IF;
        commit_time := greatest(date_trunc('milliseconds', clock_timestamp()), head_time);
        commit_ms := round(date_part('epoch', commit_time) * 1000)::bigint::text;
        SELECT array_agg(coalesce((SELECT s.revision FROM qcat_streams s WHERE s.stream_id = u.id), -1) ORDER BY u.ord),
               array_agg((SELECT s.hash FROM qcat_streams s WHERE s.stream_id = u.id) ORDER BY u.ord)
          INTO stored_rev, stored_hash FROM unnest(p_streams) WITH ORDINALITY AS u(id, ord);
        FOR i IN 1 .. n_appends LOOP
          IF stored_rev[i] < 0 THEN
            stored_hash[i] := repeat('0', 64);
          ELSIF stored_hash[i] IS NULL THEN
            -- No cached hash (a restored stream): read the last event's. Dynamic: planned now.
            EXECUTE 'SELECT hash FROM qcat_events WHERE stream_id = $1 AND revision = $2'
              INTO prev_hash USING p_streams[i], stored_rev[i];
            stored_hash[i] := prev_hash;
          END IF;
        END LOOP;
        hashes := array_fill(NULL::text, ARRAY[n_events]);
        FOR i IN 1 .. n_appends LOOP
          IF p_prev[i] > 0 THEN
            current_rev := after_rev[p_prev[i]];
            prev_hash := after_hash[p_prev[i]];
          ELSE
            current_rev := stored_rev[i];
            prev_hash := stored_hash[i];
          END IF;
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
            FOR j IN 1 .. p_counts[i] LOOP
              -- qcat_event_hash, written out: plpgsql does not inline a SQL function (3× slower).
              prev_hash := encode(sha256(convert_to(prev_hash || E'\\n' || (current_rev + j)::text
                || E'\\n' || commit_ms || E'\\n' || digests[first_index[i] + j - 1], 'UTF8')), 'hex');
              hashes[first_index[i] + j - 1] := prev_hash;
            END LOOP;
          ELSE
            ok[i] := false;
            after_rev[i] := current_rev;
            statuses[i] := 'conflict';
            positions[i] := NULL;
          END IF;
          after_hash[i] := prev_hash;
        END LOOP;
        IF written THEN
          SELECT array_agg(c.a ORDER BY c.a, g) INTO event_append
            FROM unnest(p_counts) WITH ORDINALITY AS c(n, a), generate_series(1, c.n) AS g;
          INSERT INTO qcat_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash)
          SELECT base_pos[u.a] + (u.ord - first_index[u.a] + 1), p_streams[u.a],
                 base_rev[u.a] + (u.ord - first_index[u.a] + 1), u.id, u.t, u.d, u.m, commit_time, u.h
            FROM ROWS FROM (unnest(p_ids), unnest(p_types), jsonb_array_elements(p_data),
                            jsonb_array_elements(p_metadata), unnest(event_append), unnest(hashes))
                 WITH ORDINALITY AS u(id, t, d, m, a, h, ord)
           WHERE ok[u.a];
          INSERT INTO qcat_streams (stream_id, revision, hash)
          SELECT DISTINCT ON (u.s) u.s, u.r, u.h
            FROM unnest(p_streams, after_rev, after_hash, ok) WITH ORDINALITY AS u(s, r, h, k, ord)
           WHERE u.k
           ORDER BY u.s, u.ord DESC
          ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, hash = excluded.hash;
          UPDATE qcat_log_head SET position = head_position, recorded_at = commit_time;
          PERFORM pg_notify('qcat_log', head_position::text);
        END IF;
        RETURN QUERY SELECT u.s, u.r, u.p, NULL::text FROM unnest(statuses, after_rev, positions) AS u(s, r, p);
      END
      $fn$;
`;
