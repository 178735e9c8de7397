import type pg from 'pg';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { ApiKeyEvent } from '../core/access/api-key.js';
import { eventTypes, type PostgresProjection } from './projection.js';

const field = (event: RecordedEvent, key: string): string | null => {
  const data = event.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const value = data[key];
  return typeof value === 'string' ? value : null;
};

/**
 * API keys as authentication reads them: role, secret hash, status. Read as
 * `qcat_private.api_keys` (not `qcat_read`: Grafana's reader must not see the hashes, ADR 015);
 * secrets never leave it except as their scrypt hashes.
 */
export const apiKeysProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'api_keys',
  // 2: exposed in qcat_private instead of qcat_read.
  version: 2,
  tables: ['api_keys'],
  handles: eventTypes<ApiKeyEvent>()('ApiKeyIssued', 'ApiKeyRotated', 'ApiKeyRevoked'),
  privateTables: ['api_keys'],

  async setup(client: pg.ClientBase, schema: string): Promise<void> {
    await client.query(`
      CREATE TABLE ${schema}.api_keys (
        key_id      text        PRIMARY KEY,
        name        text        NOT NULL,
        role        text        NOT NULL,
        secret_hash text        NOT NULL,
        status      text        NOT NULL,
        issued_at   timestamptz NOT NULL,
        issued_by   text        NOT NULL,
        rotated_at  timestamptz,
        revoked_at  timestamptz,
        revoked_by  text,
        position    bigint      NOT NULL
      )`);
  },

  async apply(
    client: pg.ClientBase,
    schema: string,
    events: readonly RecordedEvent[],
  ): Promise<void> {
    for (const event of events) {
      if (categoryOf(event.streamId) !== 'apikey') continue;
      const keyId = field(event, 'keyId');
      switch (event.type) {
        case 'ApiKeyIssued':
          await client.query(
            `INSERT INTO ${schema}.api_keys (key_id, name, role, secret_hash, status, issued_at, issued_by, position)
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)`,
            [
              keyId,
              field(event, 'name'),
              field(event, 'role'),
              field(event, 'secretHash'),
              event.recordedAt,
              event.metadata.actor,
              event.position,
            ],
          );
          break;
        case 'ApiKeyRotated':
          await client.query(
            `UPDATE ${schema}.api_keys SET secret_hash = $2, rotated_at = $3, position = $4 WHERE key_id = $1`,
            [keyId, field(event, 'secretHash'), event.recordedAt, event.position],
          );
          break;
        case 'ApiKeyRevoked':
          await client.query(
            `UPDATE ${schema}.api_keys SET status = 'revoked', revoked_at = $2, revoked_by = $3, position = $4
              WHERE key_id = $1`,
            [keyId, event.recordedAt, event.metadata.actor, event.position],
          );
          break;
      }
    }
  },
};
