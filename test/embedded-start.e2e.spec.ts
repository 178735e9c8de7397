import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { startQcat } from './support/qcat-process.js';

const listeningUrl = (output: string): string => {
  const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
  if (!url) throw new Error(`no listening address in:\n${output}`);
  return url;
};

describe('npm start without DATABASE_URL (embedded PostgreSQL)', () => {
  const parent = mkdtempSync(join(tmpdir(), 'qcat-e2e-'));
  chmodSync(parent, 0o711); // the embedded server's postgres user must pass through
  const dataDir = join(parent, 'data');
  // `qcat serve` as `npm start` runs it, with no DATABASE_URL: the embedded default.
  const env = { DATABASE_URL: '', REDIS_URL: '', QCAT_DATA_DIR: dataDir };
  afterAll(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('starts a real PostgreSQL, serves /health, keeps the log across restarts and a kill -9, and stops cleanly', async () => {
    const first = await startQcat(env);
    try {
      expect(first.output()).toContain('DATABASE_URL is not set; starting the embedded server');
      expect(first.output()).toContain('Redis: REDIS_URL is not set');
      const health = await fetch(`${listeningUrl(first.output())}/health`);
      expect(await health.json()).toMatchObject({ status: 'ok', headPosition: '1' }); // the bootstrap admin key
      expect(first.output()).toMatch(/created admin API key \w+\. Token \(shown only now\): qcat_/);

      // Write one event straight into the embedded server (its port is in the log, its password beside it).
      const pgPort = /127\.0\.0\.1:(\d+)\/qcat/.exec(first.output())?.[1];
      expect(pgPort).toBeDefined();
      const password = readFileSync(join(dataDir, 'postgres-password'), 'utf8').trim();
      const store = await PostgresEventStore.connect({
        connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/qcat`,
      });
      await store.appendToStream(`e2e-${randomUUID()}`, [
        { type: 'Probe', data: {}, metadata: { actor: 'e2e' } },
      ]);
      await store.close();
      expect(first.output()).not.toContain(password);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    if (process.getuid?.() === 0) {
      // As root the cluster runs as the postgres user, which must own it.
      expect(statSync(join(dataDir, 'postgres')).uid).not.toBe(0);
    }

    const second = await startQcat(env);
    const health = await fetch(`${listeningUrl(second.output())}/health`);
    expect(await health.json()).toMatchObject({ status: 'ok', headPosition: '2' });
    expect(second.output()).not.toContain('created admin API key');
    // kill -9 leaves the embedded server running without its parent; the next start must cope.
    await second.crash();

    const third = await startQcat(env);
    try {
      const after = await fetch(`${listeningUrl(third.output())}/health`);
      expect(await after.json()).toMatchObject({ status: 'ok', headPosition: '2' });
    } finally {
      expect(await third.stop()).toBe(0);
    }
  }, 240_000);
});
