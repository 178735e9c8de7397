import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { until } from '../../../test/support/until.js';
import { PgNotifications } from './pg-notifications.js';

/**
 * The LISTEN connection over a real PostgreSQL: notices arrive; a connection that is cut, or that
 * goes silent without an error (its server process stopped with SIGSTOP: what a dropped idle TCP
 * connection looks like), is noticed, reported through `listening`, and replaced. The server must
 * run on this machine (the test stops and resumes one of its processes).
 */
describe('PgNotifications', () => {
  let database: TestDatabase;
  let admin: pg.Client;
  let notices: PgNotifications;
  const received: string[] = [];
  const states: boolean[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('pg_notifications');
    admin = new pg.Client({ connectionString: database.url });
    admin.on('error', () => undefined);
    await admin.connect();
    notices = new PgNotifications(database.url, 'qcat_test', {
      heartbeatMs: 200,
      heartbeatTimeoutMs: 300,
    });
    notices.messages.subscribe((message) => received.push(message));
    notices.listening.subscribe((listening) => states.push(listening));
    notices.start();
    await until(
      async () => notices.listening.value,
      (listening) => listening,
    );
  });
  afterAll(async () => {
    await notices.stop();
    await admin.end();
    await database.drop();
  });

  /** The LISTEN connection's server process (other than `except`, when given). */
  const backend = async (except = 0): Promise<number | undefined> => {
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'qcat-listen:qcat_test'
          AND pid <> $1`,
      [except],
    );
    return rows[0]?.pid;
  };

  /** Waits until `listening` has gone false once more than `falses` times, and is true again. */
  const lostAndBack = (falses: number): Promise<boolean[]> =>
    until(
      async () => [...states],
      (all) => all.filter((state) => !state).length > falses && all.at(-1) === true,
    );

  const notify = async (payload: string): Promise<void> => {
    await admin.query('SELECT pg_notify($1, $2)', ['qcat_test', payload]);
  };

  it('delivers the payloads sent on its channel', async () => {
    await notify('one');
    expect(
      await until(
        async () => [...received],
        (all) => all.includes('one'),
      ),
    ).toContain('one');
  });

  it('reports a cut connection and listens again on a new one', async () => {
    const before = await backend();
    expect(before).toBeDefined();
    const falses = states.filter((state) => !state).length;
    await admin.query('SELECT pg_terminate_backend($1)', [before]);
    const seen = await lostAndBack(falses);
    expect(seen.filter((state) => !state).length).toBe(falses + 1);
    expect(seen.at(-1)).toBe(true);
    const after = await backend();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    await notify('two');
    expect(
      await until(
        async () => [...received],
        (all) => all.includes('two'),
      ),
    ).toContain('two');
  });

  it('reports a connection that goes silent, without an error, and replaces it', async () => {
    const silent = await backend();
    if (silent === undefined) throw new Error('no LISTEN backend');
    const falses = states.filter((state) => !state).length;
    process.kill(silent, 'SIGSTOP');
    try {
      const seen = await lostAndBack(falses);
      expect(seen.filter((state) => !state).length).toBe(falses + 1);
      expect(seen.at(-1)).toBe(true);
    } finally {
      process.kill(silent, 'SIGCONT');
    }
    // The stopped backend may still be listed (with the same name) until the server reaps it.
    const replacement = await until(
      () => backend(silent),
      (pid) => pid !== undefined,
    );
    expect(replacement).toBeDefined();
    expect(replacement).not.toBe(silent);
    await notify('three');
    expect(
      await until(
        async () => [...received],
        (all) => all.includes('three'),
      ),
    ).toContain('three');
  });
});
