import type { Migration } from '../migrations.js';
import type pg from 'pg';
import { GENESIS_HASH, chainText, contentText } from '../../../eventstore/event-hash.js';
import type { EventMetadata, JsonValue } from '../../../eventstore/event-store.js';
import { nodeSha256 as sha256 } from '../../node-sha256.js';
import { QCAT_APPEND, QCAT_APPEND_BATCH } from './functions/qcat-append.js';

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

/**
 * Migration 5, tamper evidence (ADR 005): every event's hash covers its predecessor's hash in its
 * stream, its revision and commit time, and a digest of its content (event id, stream, type, data,
 * metadata as RFC 8785 canonical JSON) that the writer computes. The chain step runs in the append
 * functions, under the head lock, where the previous hash, the revision and the commit time are
 * known: this migration installs their hashing definitions, then hashes the events recorded before.
 */
export const hashChain: Migration = {
  version: 5,
  name: 'hash chain',
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

      -- The append functions without hashes, as a database created before this migration has
      -- them (this migration's \`functions\` installs their current definitions).
      DROP FUNCTION IF EXISTS qcat_append_batch(text[], text[], int[], int[], uuid[], text[], jsonb, jsonb, boolean);
      DROP FUNCTION IF EXISTS qcat_append(text[], text[], int[], uuid[], text[], jsonb[], jsonb[]);

`,
  functions: [QCAT_APPEND, QCAT_APPEND_BATCH],
  run: backfillHashes,
};
