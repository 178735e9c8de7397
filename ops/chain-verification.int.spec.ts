import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { verifyLog, verifyOptionsFor } from '../core/audit/verify.js';
import type { EventStore, ReadAllOptions } from '../core/eventstore/event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { ChainVerification, readChainStatus, registerChainMetrics } from './chain-verification.js';

const metricValue = async (registry: Registry, name: string): Promise<number> => {
  const line = (await registry.metrics()).split('\n').find((row) => row.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not exported`);
  return Number(line.slice(name.length + 1));
};

/** The scheduled, incremental hash-chain verify on a real PostgreSQL log. */
describe('incremental hash-chain verification', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let db: pg.Pool;
  let dir: string;
  /** Every `after` the verify read `$all` from: shows where each run started walking. */
  const readsAfter: bigint[] = [];
  const registry = new Registry();
  const warnings: string[] = [];
  let verification: ChainVerification;

  const append = async (stream: string, n: number) =>
    store.appendToStream(stream, [
      { type: 'AmountSet', data: { amount: n }, metadata: { actor: 'tester' } },
    ]);

  beforeAll(async () => {
    database = await createTestDatabase('chain_verify');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    db = new pg.Pool({ connectionString: database.url, max: 2 });
    db.on('error', () => undefined);
    dir = mkdtempSync(join(tmpdir(), 'qcat-chain-'));
    const watched: Pick<EventStore, 'readAll' | 'headPosition' | 'readStream'> = {
      headPosition: () => store.headPosition(),
      readStream: (id, options) => store.readStream(id, options),
      readAll: (options?: ReadAllOptions) => {
        readsAfter.push(options?.after ?? 0n);
        return store.readAll(options);
      },
    };
    verification = new ChainVerification({
      dir,
      store: watched,
      verify: verifyOptionsFor('postgres'),
      connectionString: database.url,
      schedule: '15 * * * *',
      batchSize: 2,
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    registerChainMetrics(registry, dir);
    for (let n = 1; n <= 5; n++) await append(`account-${n % 2}`, n);
  });

  afterAll(async () => {
    await verification.stop();
    await db.end();
    await store.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says never (0) before a run', async () => {
    expect(await metricValue(registry, 'audit_chain_verify_last_success_timestamp_seconds')).toBe(
      0,
    );
    expect(await metricValue(registry, 'audit_chain_verified_position')).toBe(0);
  });

  it('first walks the whole log and saves where it got to', async () => {
    const report = await verification.run();
    expect(report).toMatchObject({ ok: true, eventsChecked: 5, verifiedTo: 5n, startedAfter: 0n });
    const full = await verifyLog(store, verifyOptionsFor('postgres'));
    const status = await readChainStatus(dir);
    expect(status.checkpoint).toMatchObject({ position: '5', digest: full.digest });
    expect(await metricValue(registry, 'audit_chain_verified_position')).toBe(5);
    expect(
      await metricValue(registry, 'audit_chain_verify_last_success_timestamp_seconds'),
    ).toBeGreaterThan(0);
    expect(await metricValue(registry, 'audit_chain_broken')).toBe(0);
  });

  it('a re-run walks only what the log gained, not from position 1', async () => {
    for (let n = 6; n <= 8; n++) await append(`account-${n % 2}`, n);
    readsAfter.length = 0;
    const report = await verification.run();
    expect(report).toMatchObject({ ok: true, eventsChecked: 3, verifiedTo: 8n, startedAfter: 5n });
    // The anchor check reads position 5 (after 4); the walk reads after 5, then after 7.
    expect(readsAfter.length).toBeGreaterThan(0);
    expect(Math.min(...readsAfter.map(Number))).toBe(4);
    expect(readsAfter).not.toContain(0n);
    // The running digest it continued is the one a full walk from position 1 gives.
    const full = await verifyLog(store, verifyOptionsFor('postgres'));
    expect((await readChainStatus(dir)).checkpoint?.digest).toBe(full.digest);

    readsAfter.length = 0;
    expect(await verification.run()).toMatchObject({ ok: true, eventsChecked: 0 });
    expect(Math.min(...readsAfter.map(Number))).toBe(7);
  });

  it('finds an event changed after the last verified position, and keeps finding it', async () => {
    for (let n = 9; n <= 11; n++) await append(`account-${n % 2}`, n);
    await db.query(
      `UPDATE qcat_events SET data = jsonb_set(data, '{amount}', '1000') WHERE position = 10`,
    );
    const report = await verification.run();
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({ reason: 'hash_mismatch', position: 10n });
    expect(warnings.at(-1)).toContain('position 10');
    expect(await metricValue(registry, 'audit_chain_broken')).toBe(1);
    // The checkpoint stays at the last intact point: the next run starts there and fails again.
    expect((await readChainStatus(dir)).checkpoint?.position).toBe('8');
    expect(await metricValue(registry, 'audit_chain_verified_position')).toBe(8);
    expect((await verification.run()).firstBroken).toMatchObject({ position: 10n });
  });

  it('finds a stream link broken by rewriting an event before the checkpoint', async () => {
    // Event 10 put back and verified; then account-0 gains event 12 (linked to event 10), and
    // event 10, behind the checkpoint, gets another hash: its successor no longer links to it.
    await db.query(
      `UPDATE qcat_events SET data = jsonb_set(data, '{amount}', '10') WHERE position = 10`,
    );
    expect(await verification.run()).toMatchObject({ ok: true, verifiedTo: 11n });
    await append('account-0', 12);
    const { rows } = await db.query<{ hash: string }>(
      'SELECT hash FROM qcat_events WHERE position = 10',
    );
    await db.query(`UPDATE qcat_events SET hash = repeat('e', 64) WHERE position = 10`);
    const report = await verification.run();
    // Position 11 is the anchor; the walk meets account-0's event 12, whose predecessor changed.
    expect(report.firstBroken).toMatchObject({ reason: 'hash_mismatch', position: 12n });
    await db.query('UPDATE qcat_events SET hash = $1 WHERE position = 10', [rows[0]?.hash]);
    expect(await verification.run()).toMatchObject({ ok: true, verifiedTo: 12n });
    expect(await metricValue(registry, 'audit_chain_broken')).toBe(0);
  });

  it('notices when the event at the checkpoint is no longer the one verified', async () => {
    await db.query(`UPDATE qcat_events SET hash = repeat('f', 64) WHERE position = 12`);
    const report = await verification.run();
    expect(report.firstBroken).toMatchObject({ reason: 'checkpoint_changed', position: 12n });
  });
});
