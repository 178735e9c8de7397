// Over 400 lines: the ordered migrations of the log's schema, mostly SQL text; each is to move to
// a file of its own, as migration 007 already has (ADR 025's exception list).
import type pg from 'pg';
import { GENESIS_HASH, chainText, contentText } from '../../eventstore/event-hash.js';
import type { EventMetadata, JsonValue } from '../../eventstore/event-store.js';
import { nodeSha256 as sha256 } from '../node-sha256.js';
import { timeIndexMigration } from './migration-007-time-index.js';
import { snapshotsMigration } from './migration-008-snapshots.js';
import { processManagersMigration } from './migration-010-process-managers.js';
import { readModelUnchangedMigration } from './migration-011-read-model-unchanged.js';
import { optimizationTrialsMigration } from './migration-012-optimization-trials.js';

/**
 * Versioned schema of the PostgreSQL event log. Append-only list: never edit a released entry,
 * add a new one. Applied in order at start-up under an advisory lock, each in its own transaction.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Work SQL cannot do, run after `sql` in the same transaction. */
  run?: (client: pg.ClientBase) => Promise<void>;
}

/** Rows per round trip of the hash backfill. */
const BACKFILL_BATCH = 5000;

interface BackfillRow {
  position: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: JsonValue;
  metadata: EventMetadata;
  recorded_ms: number;
}

/**
 * Migration 5: hashes every event recorded before the chain existed, stream by stream in revision
 * order (so only the current stream's last hash is held), then makes the column NOT NULL and
 * fills each stream's cached last hash.
 */
async function backfillHashes(client: pg.ClientBase): Promise<void> {
  let streamId = '';
  let revision = '-1';
  let previous = GENESIS_HASH;
  for (;;) {
    const { rows } = await client.query<BackfillRow>(
      `SELECT position, stream_id, revision, event_id, type, data, metadata,
              round(date_part('epoch', recorded_at) * 1000) AS recorded_ms
         FROM qcat_events
        WHERE (stream_id, revision) > ($1, $2::bigint)
        ORDER BY stream_id, revision
        LIMIT $3`,
      [streamId, revision, BACKFILL_BATCH],
    );
    if (rows.length === 0) break;
    const positions: string[] = [];
    const hashes: string[] = [];
    for (const row of rows) {
      if (row.stream_id !== streamId) previous = GENESIS_HASH;
      previous = sha256(
        chainText(
          previous,
          BigInt(row.revision),
          String(row.recorded_ms),
          sha256(
            contentText({
              eventId: row.event_id,
              streamId: row.stream_id,
              type: row.type,
              data: row.data,
              metadata: row.metadata,
            }),
          ),
        ),
      );
      streamId = row.stream_id;
      revision = row.revision;
      positions.push(row.position);
      hashes.push(previous);
    }
    await client.query(
      `UPDATE qcat_events e SET hash = u.hash
         FROM unnest($1::bigint[], $2::text[]) AS u(position, hash)
        WHERE e.position = u.position`,
      [positions, hashes],
    );
  }
  await client.query('ALTER TABLE qcat_events ALTER COLUMN hash SET NOT NULL');
  await client.query(
    `UPDATE qcat_streams s SET hash = e.hash FROM qcat_events e
      WHERE e.stream_id = s.stream_id AND e.revision = s.revision`,
  );
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
  {
    version: 5,
    name: 'hash chain',
    // Tamper evidence (ADR 005): every event's hash covers its predecessor's hash in its stream,
    // its revision and commit time, and a digest of its content (event id, stream, type, data,
    // metadata as RFC 8785 canonical JSON) that the writer computes. The chain step runs here,
    // under the head lock, where the previous hash, the revision and the commit time are known.
    sql: `
      ALTER TABLE qcat_events ADD COLUMN hash text;
      -- The hash of each stream's last event, read with its revision by every append (one index
      -- look-up, as before). A cache: NULL (say, after a restore that wrote only stream and
      -- revision) makes the append read the hash from qcat_events instead.
      ALTER TABLE qcat_streams ADD COLUMN hash text;

      -- One link of the chain: lower-case hex SHA-256 of
      -- previous || E'\\n' || revision || E'\\n' || commit time in epoch ms || E'\\n' || content digest.
      CREATE FUNCTION qcat_event_hash(p_previous text, p_revision bigint, p_ms text, p_digest text)
        RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT encode(sha256(convert_to(
          p_previous || E'\\n' || p_revision::text || E'\\n' || p_ms || E'\\n' || p_digest, 'UTF8')), 'hex')
      $fn$;

      DROP FUNCTION qcat_append_batch(text[], text[], int[], int[], uuid[], text[], jsonb, jsonb, boolean);
      DROP FUNCTION qcat_append(text[], text[], int[], uuid[], text[], jsonb[], jsonb[]);

      -- As in migration 1, plus p_digests (one content digest per event) and the hash column.
      CREATE FUNCTION qcat_append(
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

      -- As in migration 4, plus p_digests and the hash columns. The stream's last hash is read with
      -- its revision (qcat_streams.hash); the links are made in one pass over the group's events,
      -- in order, so an append to a stream that an earlier append of the group touched chains onto
      -- its last event.
      CREATE FUNCTION qcat_append_batch(
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
    `,
    run: backfillHashes,
  },
  {
    version: 6,
    name: 'read model change notices',
    // ADR 009: every change of a projection's checkpoint or live generation (whoever makes it:
    // a runner's batch, a rebuild's switch, a restore) is announced on commit, so each process's
    // response cache drops what the change made stale. Payload: name, generation, checkpoint.
    sql: `
      CREATE FUNCTION qcat_projections_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('qcat_read_model', OLD.name || ':0:0');
        ELSE
          PERFORM pg_notify('qcat_read_model', NEW.name || ':' || NEW.generation || ':' || NEW.checkpoint);
        END IF;
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER qcat_projections_notify_change
        AFTER UPDATE ON qcat_projections FOR EACH ROW
        WHEN (OLD.checkpoint IS DISTINCT FROM NEW.checkpoint
              OR OLD.generation IS DISTINCT FROM NEW.generation)
        EXECUTE FUNCTION qcat_projections_notify();
      CREATE TRIGGER qcat_projections_notify_row
        AFTER INSERT OR DELETE ON qcat_projections FOR EACH ROW
        EXECUTE FUNCTION qcat_projections_notify();
    `,
  },
  timeIndexMigration,
  snapshotsMigration,
  {
    version: 9,
    name: 'parked projection events',
    // ADR 011: an event a parking projection cannot apply is recorded here, with the error, and
    // skipped; the projection moves on. A rebuild replaces the projection's rows.
    sql: `
      CREATE TABLE qcat_projection_parked (
        projection text        NOT NULL,
        position   bigint      NOT NULL,
        event_id   uuid        NOT NULL,
        event_type text        NOT NULL,
        stream_id  text        NOT NULL,
        error      text        NOT NULL,
        parked_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (projection, position)
      );
    `,
  },
  processManagersMigration,
  readModelUnchangedMigration,
  optimizationTrialsMigration,
];

/** Arbitrary constant: the advisory lock that serialises concurrent migrators. */
const MIGRATION_LOCK = 7_302_145_001;

/**
 * True when every migration is recorded. Checked before anything else so that a process logging
 * in as the application role, which may not change the schema (ADR 015), starts without DDL.
 */
async function upToDate(client: pg.ClientBase, migrations: readonly Migration[]): Promise<boolean> {
  const table = await client.query<{ found: boolean }>(
    "SELECT to_regclass('qcat_migrations') IS NOT NULL AS found",
  );
  if (!table.rows[0]?.found) return false;
  const { rows } = await client.query<{ version: number }>('SELECT version FROM qcat_migrations');
  const done = new Set(rows.map((row) => row.version));
  return migrations.every((migration) => done.has(migration.version));
}

/** SQLSTATE insufficient_privilege (42501) or must_be_owner. */
const lacksPrivilege = (error: unknown): error is Error & { code: string } =>
  error instanceof Error && 'code' in error && error.code === '42501';

/** Applies the migrations that are not yet recorded; safe to run from several processes at once. */
export async function migrate(
  pool: pg.Pool,
  migrations: readonly Migration[] = eventLogMigrations,
): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  let current: boolean;
  try {
    current = await upToDate(client, migrations);
  } catch (error) {
    client.release();
    throw error;
  }
  if (current) {
    client.release();
    return applied;
  }
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
        if (migration.run) await migration.run(client);
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
  } catch (error) {
    if (lacksPrivilege(error))
      throw new Error(
        `pending migrations need the database owner role: run \`qcat migrate\` with the ` +
          `owner's DATABASE_URL first (docs/deployment.md, "Database roles"): ${error.message}`,
        { cause: error },
      );
    throw error;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return applied;
}
