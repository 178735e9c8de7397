import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postgresBinaries,
  startDisposablePostgres,
  type DisposablePostgres,
} from './support/disposable-postgres.js';
import { startQcat, type QcatProcess } from './support/qcat-process.js';

/**
 * `qcat serve` as a real process, its PostgreSQL (the test's own) stopped again and again while
 * clients read and write: the process lives through every stop, answers 503 UNAVAILABLE with
 * Retry-After meanwhile (never a 500), says it is not ready, and comes back by itself. Afterwards
 * every acknowledged write is in the log, and no write, acknowledged or retried, is in it twice.
 */
const SHORT_STOPS = 10;
const SHORT_STOP_MS = 1000;
const LONG_STOP_MS = 10_000;
/**
 * "Comes back by itself" means: a write succeeds again without a restart. The bound is only a hang
 * guard (no timed assertions in tests); how long recoveries take is printed.
 */
const RECOVERY_LIMIT_MS = 30_000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  type: string;
  retryAfter: string | null;
}

const NO_ANSWER: Answer = { status: 0, body: {}, type: '', retryAfter: null };

const binaries = postgresBinaries();
if (!binaries) console.warn('database-outage: skipped: install postgresql-15 (initdb, pg_ctl)');

describe.skipIf(!binaries)('a PostgreSQL outage under load', () => {
  let database: DisposablePostgres | undefined;
  let qcat: QcatProcess | undefined;
  let base = '';
  let token = '';

  beforeAll(async () => {
    database = await startDisposablePostgres();
    qcat = await startQcat({
      DATABASE_URL: database.url,
      REDIS_URL: '',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output())?.[1] ?? '';
    token = /Token \(shown only now\): (\S+)/.exec(qcat.output())?.[1] ?? '';
    expect(base).not.toBe('');
    expect(token).not.toBe('');
  });
  afterAll(async () => {
    await qcat?.stop();
    database?.destroy();
  });

  /** The process's warnings and errors (request logs left out), for failure messages. */
  const said = (): string =>
    (qcat?.output() ?? '')
      .split('\n')
      .filter((line) => !line.startsWith('{"level":30'))
      .join('\n')
      .slice(-4000);
  const call = async (method: string, path: string, body?: unknown, key?: string) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key ? { 'idempotency-key': key } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    }).catch((error: unknown) => {
      throw new Error(`${method} ${path}: ${String(error)}; the process said:\n${said()}`);
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      type: response.headers.get('content-type') ?? '',
      retryAfter: response.headers.get('retry-after'),
    } satisfies Answer;
  };
  const create = (name: string) =>
    call(
      'POST',
      '/api/v1/strategies',
      { name, kind: 'sma_crossover', symbols: ['BTCUSDT'], timeframe: '1h', capitalRequest: 1000 },
      name,
    );

  it(`lives through ${SHORT_STOPS} stops (fast and immediate) and one of ${LONG_STOP_MS / 1000} s, answering 503 meanwhile, losing and doubling nothing`, async () => {
    const [server, db] = [qcat, database];
    if (!server || !db) throw new Error('not started');
    const acknowledged = new Map<string, string>(); // name (= idempotency key) → strategyId
    const unanswered = new Set<string>();
    let retried = 0;
    const failures: Answer[] = [];
    const counts = new Map<number, number>();
    const tally = (answer: Answer): void => {
      counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
      if (answer.status >= 500 || answer.status === 0) failures.push(answer);
    };
    const load = { on: true };
    /** A client that retries what was not acknowledged, with the same key, until it is. */
    const writer = async (): Promise<void> => {
      let name = `outage-${randomUUID()}`;
      while (load.on) {
        const answer = await create(name).catch(() => NO_ANSWER);
        tally(answer);
        if (answer.status === 201) acknowledged.set(name, String(answer.body['strategyId']));
        if (answer.status === 201 || answer.status === 409) {
          unanswered.delete(name);
          name = `outage-${randomUUID()}`;
        } else {
          unanswered.add(name);
          retried++;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const reader = async (): Promise<void> => {
      while (load.on) {
        const answer = await call('GET', '/api/v1/strategies?limit=5').catch(() => NO_ANSWER);
        tally(answer);
        if (answer.status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const workers = [writer(), writer(), writer(), reader(), reader()];

    /** Waits until the process reads, writes and says it is ready; answers how long that took. */
    const recovery = async (): Promise<number> => {
      const from = Date.now();
      for (;;) {
        const ready = await call('GET', '/health/ready');
        const written = ready.status === 200 ? await create(`probe-${randomUUID()}`) : undefined;
        if (written?.status === 201) return Date.now() - from;
        if (Date.now() - from > RECOVERY_LIMIT_MS)
          throw new Error(
            `no recovery in ${RECOVERY_LIMIT_MS / 1000} s: ${JSON.stringify(ready.body)}\n${said()}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    const outage = async (mode: 'fast' | 'immediate', ms: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 500)); // load on a healthy server first
      db.stop(mode);
      await new Promise((resolve) => setTimeout(resolve, ms / 2));
      const ready = await call('GET', '/health/ready');
      expect(ready.status, 'ready while the database is down').toBe(503);
      expect(ready.body['status']).toBe('unavailable');
      expect(Number(ready.retryAfter)).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, ms / 2));
      expect(server.child.exitCode, said()).toBeNull();
      db.start();
      const took = await recovery();
      expect(server.child.exitCode, said()).toBeNull();
      return took;
    };

    const recoveries: number[] = [];
    for (let stop = 0; stop < SHORT_STOPS; stop++)
      recoveries.push(await outage(stop % 2 === 0 ? 'fast' : 'immediate', SHORT_STOP_MS));
    recoveries.push(await outage('fast', LONG_STOP_MS));
    load.on = false;
    await Promise.all(workers);
    console.log(
      `database-outage: recoveries (ms) ${recoveries.join(', ')}; answers ${JSON.stringify(Object.fromEntries(counts))}; ${acknowledged.size} writes acknowledged, ${retried} retries, ${unanswered.size} left unanswered`,
    );

    // While the database was down: 503 UNAVAILABLE problem+json with Retry-After, nothing else.
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect(failure.status).toBe(503);
      expect(failure.type).toContain('application/problem+json');
      expect(failure.body['code']).toBe('UNAVAILABLE');
      expect(Number(failure.retryAfter)).toBeGreaterThan(0);
    }

    // A client retries what was not acknowledged, with the same key: none is written twice.
    for (const name of unanswered) {
      const answer = await create(name);
      expect([201, 409]).toContain(answer.status);
    }
    const log = new pg.Client({ connectionString: db.url });
    await log.connect();
    try {
      const { rows } = await log.query<{ name: string; stream_id: string; n: string }>(
        `SELECT data->>'name' AS name, min(stream_id) AS stream_id, count(*) AS n FROM qcat_events
          WHERE type = 'StrategyCreated' AND data->>'name' LIKE 'outage-%' GROUP BY 1`,
      );
      const written = new Map(rows.map((row) => [row.name, row]));
      for (const [name, strategyId] of acknowledged) {
        expect(written.get(name)?.n, `acknowledged ${name}`).toBe('1');
        expect(written.get(name)?.stream_id).toContain(strategyId);
      }
      for (const row of rows) expect(row.n, `written twice: ${row.name}`).toBe('1');
    } finally {
      await log.end();
    }
  });
});
