import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { apiKeysProjection } from './api-keys.js';
import { PostgresTarget } from './postgres-target.js';
import type { PostgresProjection } from './projection.js';
import { ReadModelWatch, sameRows, type ReadModelVersion } from './read-model-watch.js';

/**
 * ADR 027: a projection declares the event types it handles; the runner hands it only those, and a
 * batch with none of them moves the checkpoint with a change notice that says nothing changed, so
 * the answer cache (ADR 009) keeps the read model's answers. Real PostgreSQL and notices.
 */
describe('a projection sees only the event types it declares', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  let watch: ReadModelWatch;
  const applied: string[][] = [];
  /** The api_keys read model, counting what it is handed. */
  const projection: PostgresProjection = {
    ...apiKeysProjection,
    apply: (client, schema, events) => {
      applied.push(events.map((e) => e.type));
      return apiKeysProjection.apply(client, schema, events);
    },
  };
  let target: PostgresTarget;

  beforeAll(async () => {
    database = await createTestDatabase('rmunchanged');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    target = new PostgresTarget(pool, projection);
    await target.ensure();
    watch = new ReadModelWatch(pool, database.url);
    watch.start();
  });
  afterAll(async () => {
    await watch.stop();
    await pool.end();
    await store.close();
    await database.drop();
  });

  const append = async (streamId: string, type: string, data: object): Promise<RecordedEvent[]> => {
    const { position } = await store.appendToStream(streamId, [
      { eventId: randomUUID(), type, data: { ...data }, metadata: { actor: 'test' } },
    ]);
    return store.readAll({ after: position - 1n, maxCount: 1 });
  };
  /** The version the watch has heard of once the notice of `position` came. */
  const heard = async (position: bigint): Promise<ReadModelVersion> => {
    await vi.waitFor(
      () => {
        expect(watch.version('api_keys')?.checkpoint ?? -1n).toBeGreaterThanOrEqual(position);
      },
      { timeout: 10_000 },
    );
    return watch.version('api_keys')!;
  };

  it('passes over other events without a call, and the notice says its rows did not change', async () => {
    const key = await append(`apikey-${randomUUID()}`, 'ApiKeyIssued', {
      keyId: 'k1',
      name: 'one',
      role: 'viewer',
      secretHash: 'h1',
    });
    const first = await heard(await target.apply(key));
    expect(applied).toEqual([['ApiKeyIssued']]);

    const other = await append(`misc-${randomUUID()}`, 'SomethingElseHappened', { n: 1 });
    const second = await heard(await target.apply(other));
    expect(applied).toHaveLength(1);
    expect(second.checkpoint).toBe(other[0]!.position);
    expect(second).not.toBe(first);
    expect(sameRows(first, second)).toBe(true);

    const rotated = await append(key[0]!.streamId, 'ApiKeyRotated', {
      keyId: 'k1',
      secretHash: 'h2',
    });
    const third = await heard(await target.apply(rotated));
    expect(applied).toEqual([['ApiKeyIssued'], ['ApiKeyRotated']]);
    expect(sameRows(second, third)).toBe(false);
    expect(third.changed).toBe(rotated[0]!.position);
  });

  it('hands a mixed batch only the events it handles, in order', async () => {
    const a = await append(`misc-${randomUUID()}`, 'SomethingElseHappened', { n: 2 });
    const b = await append(`apikey-${randomUUID()}`, 'ApiKeyIssued', {
      keyId: 'k2',
      name: 'two',
      role: 'viewer',
      secretHash: 'h3',
    });
    const c = await append(`misc-${randomUUID()}`, 'SomethingElseHappened', { n: 3 });
    applied.length = 0;
    expect(await target.apply([...a, ...b, ...c])).toBe(c[0]!.position);
    expect(applied).toEqual([['ApiKeyIssued']]);
    const { rows } = await pool.query<{ key_id: string }>(
      'SELECT key_id FROM qcat_private.api_keys ORDER BY key_id',
    );
    expect(rows.map((r) => r.key_id)).toEqual(['k1', 'k2']);
  });
});
