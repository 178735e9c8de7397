import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../ops/config.js';
import { ApiKeyService } from './auth/api-key-service.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';
import { startServer, type RunningServer } from '../ops/server.js';

interface Page {
  events: { position: string; streamId: string }[];
  nextCursor: string | null;
}

/**
 * The read-model answer cache (ADR 009) over real HTTP and a real PostgreSQL: a hit is the same
 * answer as the miss before it, and no answer outlives a change of its read model — whether the
 * change was made by this process, by another process, by a rebuild, or while the change notices
 * could not be heard.
 */
describe('read-model answer cache', () => {
  let qcat: TestServer;
  /** A second QCAT process on the same database: its projections stand by, led by the first. */
  let other: RunningServer;
  let admin: pg.Client;

  beforeAll(async () => {
    qcat = await startTestServer('read_cache');
    other = await startServer(
      loadConfig({
        DATABASE_URL: qcat.database.url,
        PORT: '0',
        LOG_LEVEL: 'silent',
        RATE_LIMIT_PER_MINUTE: '100000',
        PAPER_TRADING: 'off',
        DATABASE_POOL_MAX: '5', // as test servers (ADR 020)
      }),
      { announce: () => undefined },
    );
    admin = new pg.Client({ connectionString: qcat.database.url });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await other.stop();
    await qcat.stop();
  });

  const get = (base: string, path: string, token = qcat.tokens.auditor) =>
    fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });

  /** Appends to the audit trail: issues a key through the API; answers the command's position. */
  async function change(name: string): Promise<string> {
    const response = await qcat.request('POST', '/api/v1/keys', {
      body: { name, role: 'viewer' },
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { position: string }).position;
  }

  const lastPosition = (page: Page): string | undefined => page.events.at(-1)?.position;

  it('answers a repeated read from the cache with the same status, body and headers', async () => {
    const path = '/api/v1/audit/events?limit=1000&category=apikey';
    const first = await get(qcat.server.url, path);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-qcat-read-cache')).toBe('miss');
    const body = await first.text();
    const second = await get(qcat.server.url, path);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-qcat-read-cache')).toBe('hit');
    expect(await second.text()).toBe(body);
    for (const header of ['content-type', 'content-security-policy', 'x-content-type-options']) {
      expect(second.headers.get(header), header).toBe(first.headers.get(header));
    }
    expect(second.headers.get('x-request-id')).toMatch(/^[\w-]+$/);
    expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
  });

  it('runs the route once for concurrent requests of an answer it does not have yet', async () => {
    const path = '/api/v1/audit/events?limit=40&category=apikey';
    // Hold the read model's table so the first request's SQL waits while the others arrive.
    await admin.query('BEGIN');
    await admin.query('LOCK TABLE qcat_read.audit_trail IN ACCESS EXCLUSIVE MODE');
    const pending = Promise.all(
      Array.from({ length: 30 }, async () => {
        const response = await get(qcat.server.url, path);
        return {
          status: response.status,
          cache: response.headers.get('x-qcat-read-cache'),
          body: await response.text(),
        };
      }),
    );
    // All 30 inside QCAT: the first waiting on the lock, the others on it (a GET of /metrics is
    // in flight as well while it answers).
    await until(
      async () => {
        const text = await (await fetch(`${qcat.server.url}/metrics`)).text();
        return Number(/^http_requests_in_flight (\d+)/m.exec(text)?.[1] ?? 0);
      },
      (inFlight) => inFlight >= 31,
      20_000,
    );
    await admin.query('COMMIT');
    const answers = await pending;
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(new Set(answers.map((answer) => answer.body)).size).toBe(1);
    const how = answers.map((answer) => answer.cache).sort();
    expect(how).toEqual(['miss', ...Array<string>(29).fill('shared')]);
  });

  it('still checks the key and the permission on a hit', async () => {
    const path = '/api/v1/audit/events?limit=3';
    await get(qcat.server.url, path);
    expect((await get(qcat.server.url, path)).headers.get('x-qcat-read-cache')).toBe('hit');
    const viewer = await get(qcat.server.url, path, qcat.tokens.viewer);
    expect(viewer.status).toBe(403);
    expect(viewer.headers.get('x-qcat-read-cache')).toBeNull();
    expect((await get(qcat.server.url, path, qcat.tokens.revoked)).status).toBe(401);
    expect((await fetch(`${qcat.server.url}${path}`)).status).toBe(401);
  });

  it('never serves an answer its read model has moved past, in this process or another', async () => {
    const path = '/api/v1/audit/events?limit=1000&category=apikey';
    for (const base of [qcat.server.url, other.url]) {
      await get(base, path);
      expect((await get(base, path)).headers.get('x-qcat-read-cache')).toBe('hit');
    }
    const before = (await (await get(qcat.server.url, path)).json()) as Page;
    const position = await change('cache-change-1');

    // Read-your-write with minPosition: never the cached answer from before the change.
    for (const base of [qcat.server.url, other.url]) {
      const fresh = await get(base, `${path}&minPosition=${position}`);
      expect(fresh.status).toBe(200);
      const page = (await fresh.json()) as Page;
      expect(page.events.map((event) => event.position)).toContain(position);
    }
    // Without minPosition: the plain URL drops its cached answer once the change is projected,
    // in both processes (the second heard of it through the change notice only).
    for (const base of [qcat.server.url, other.url]) {
      const page = await until(
        async () => (await (await get(base, path)).json()) as Page,
        (value) => lastPosition(value) === position,
      );
      expect(lastPosition(page)).toBe(position);
      expect(page.events.length).toBe(before.events.length + 1);
    }
  });

  it('never answers from before what this process knows was applied (a wait, then a read), leading the projection or not', async () => {
    const path = '/api/v1/audit/events?limit=1000&category=apikey';
    const keys = new ApiKeyService(qcat.server.runtime.commands);
    // The first process runs the audit trail; the second one's waits read the registry.
    for (const process_ of [qcat.server, other]) {
      for (let i = 0; i < 10; i++) {
        await get(process_.url, path); // cache the answer as it is now
        const issued = await keys.issue(`in-process-${i}`, 'viewer', 'test');
        const position = issued.result.position;
        // What a command route does before it answers: wait for its read model in this process.
        expect(await process_.runtime.projections.waitFor('audit_trail', position, 5000)).toBe(
          true,
        );
        const page = (await (await get(process_.url, path)).json()) as Page;
        expect(lastPosition(page)).toBe(position.toString());
      }
    }
  });

  it('drops every answer of a read model when a rebuild switches its generation', async () => {
    const path = '/api/v1/audit/events?limit=5';
    await get(qcat.server.url, path);
    expect((await get(qcat.server.url, path)).headers.get('x-qcat-read-cache')).toBe('hit');
    const { rows } = await admin.query<{ generation: number }>(
      "SELECT generation FROM qcat_projections WHERE name = 'audit_trail'",
    );
    const generation = rows[0]!.generation;
    const started = await qcat.request('POST', '/api/v1/projections/audit_trail/rebuild', {
      token: qcat.tokens.operator,
    });
    expect(started.status).toBe(202);
    await until(
      async () =>
        (
          await admin.query<{ generation: number }>(
            "SELECT generation FROM qcat_projections WHERE name = 'audit_trail'",
          )
        ).rows[0]!.generation,
      (value) => value > generation,
    );
    const after = await until(
      () => get(qcat.server.url, path),
      (response) => response.headers.get('x-qcat-read-cache') === 'miss',
      2000,
    );
    expect(after.headers.get('x-qcat-read-cache')).toBe('miss');
    expect(after.status).toBe(200);
  });

  it('serves nothing from the cache while the change notices cannot be heard, and resumes after', async () => {
    const path = '/api/v1/audit/events?limit=1000&category=apikey';
    await get(qcat.server.url, path);
    expect((await get(qcat.server.url, path)).headers.get('x-qcat-read-cache')).toBe('hit');
    // Cut every process's notice connection, and change the read model while they are down.
    // By name: its last query is a heartbeat's SELECT 1 once it has been idle for 10 s.
    const { rowCount } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'qcat-listen:qcat_read_model'`,
    );
    expect(rowCount).toBe(2);
    const position = await change('cache-change-2');
    // Until a process listens again and has re-read the registry: no header, straight from SQL.
    // After: a miss first (what was cached before the cut is gone), with the change in it.
    for (const base of [qcat.server.url, other.url]) {
      const page = await until(
        async () => {
          const response = await get(base, path);
          return {
            cache: response.headers.get('x-qcat-read-cache'),
            page: (await response.json()) as Page,
          };
        },
        (value) => value.cache !== null && lastPosition(value.page) === position,
      );
      expect(page.cache).toBe('miss');
      expect(lastPosition(page.page)).toBe(position);
      expect((await get(base, path)).headers.get('x-qcat-read-cache')).toBe('hit');
    }
  });

  it('counts hits, misses and bypasses in /metrics', async () => {
    const text = await (await fetch(`${qcat.server.url}/metrics`)).text();
    const value = (result: string): number =>
      Number(
        new RegExp(`^http_read_cache_lookups_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(
          text,
        )?.[1] ?? 'NaN',
      );
    expect(value('hit')).toBeGreaterThan(0);
    expect(value('miss')).toBeGreaterThan(0);
    expect(text).toMatch(/^http_read_cache_bytes \d+/m);
  });
});

describe('read-model answer cache turned off', () => {
  let qcat: TestServer;
  beforeAll(async () => {
    qcat = await startTestServer('read_cache_off', { READ_CACHE_MB: '0' });
  });
  afterAll(async () => {
    await qcat.stop();
  });

  it('answers every read from SQL, without the cache header', async () => {
    for (let i = 0; i < 2; i++) {
      const response = await qcat.request('GET', '/api/v1/audit/events?limit=2', {
        token: qcat.tokens.auditor,
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-qcat-read-cache')).toBeNull();
    }
  });
});

describe('read-model answer cache and the rate limit', () => {
  let qcat: TestServer;
  beforeAll(async () => {
    qcat = await startTestServer('read_cache_limit', { RATE_LIMIT_PER_MINUTE: '4' });
  });
  afterAll(async () => {
    await qcat.stop();
  });

  it('counts hits against the rate limit like any request', async () => {
    const answers: { status: number; cache: string | null }[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await qcat.request('GET', '/api/v1/audit/events?limit=2', {
        token: qcat.tokens.auditor,
      });
      answers.push({ status: response.status, cache: response.headers.get('x-qcat-read-cache') });
    }
    expect(answers.slice(0, 4).map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(answers.slice(1, 4).every((answer) => answer.cache === 'hit')).toBe(true);
    expect(answers[4]).toEqual({ status: 429, cache: null });
  });
});
