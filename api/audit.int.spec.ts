import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeys, apiKeyStream } from '../core/access/api-key.js';
import { foldEvents, fromDecider } from '../core/aggregates.js';
import type { NewEvent, RecordedEvent } from '../core/eventstore/event-store.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

const root = new URL('..', import.meta.url).pathname;

/** `qcat audit verify` against the test database, as an operator would run it. */
function cliVerify(
  databaseUrl: string,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, qcatNodeArgs('audit', 'verify', ...args), {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/** RFC 4180 records: quoted cells may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || record.length > 0) throw new Error('CSV does not end with CRLF');
  return records;
}

interface BrokenLink {
  reason: string;
  position: string;
  streamId: string | null;
  revision: string | null;
  eventId: string | null;
  expected: string;
  found: string;
}
interface VerifyAnswer {
  ok: boolean;
  eventsChecked: number;
  headPosition: string;
  verifiedTo: string;
  digest: string | null;
  firstBroken: BrokenLink | null;
}

describe('audit API', () => {
  let api: TestServer;
  let db: pg.Pool;

  beforeAll(async () => {
    api = await startTestServer('audit');
    db = new pg.Pool({ connectionString: api.database.url, max: 2 });
    db.on('error', () => undefined); // ended by the database drop
  });
  afterAll(async () => {
    await db.end();
    await api.stop();
  });

  const json = async <T>(response: Response): Promise<T> => (await response.json()) as T;
  const append = (streamId: string, events: NewEvent[]) =>
    api.server.runtime.eventStore.appendToStream(streamId, events);

  describe('one stream and its state as of an instant or position', () => {
    let keyId: string;
    let stored: RecordedEvent[];
    let secretHashes: string[];

    beforeAll(async () => {
      const created = await json<{ keyId: string }>(
        await api.request('POST', '/api/v1/keys', { body: { name: 'desk-9', role: 'trader' } }),
      );
      keyId = created.keyId;
      await api.request('POST', `/api/v1/keys/${keyId}/rotate`, { body: {} });
      await api.request('DELETE', `/api/v1/keys/${keyId}?reason=audit%20test`);
      stored = await api.server.runtime.eventStore.readStream(apiKeyStream(keyId));
      secretHashes = stored.flatMap((e) => {
        const hash = (e.data as { secretHash?: string }).secretHash;
        return hash ? [hash] : [];
      });
    });

    it("answers a stream's events with their hashes, secrets redacted, page by page", async () => {
      expect(stored.map((e) => e.type)).toEqual(['ApiKeyIssued', 'ApiKeyRotated', 'ApiKeyRevoked']);
      expect(secretHashes).toHaveLength(2);
      const first = await api.request(
        'GET',
        `/api/v1/audit/streams/${apiKeyStream(keyId)}/events?limit=2`,
        { token: api.tokens.auditor },
      );
      expect(first.status).toBe(200);
      const text = await first.text();
      for (const secret of secretHashes) expect(text).not.toContain(secret);
      const page = JSON.parse(text) as {
        aggregate: string;
        events: { revision: string; type: string; hash: string; data: Record<string, unknown> }[];
        nextCursor: string | null;
      };
      expect(page.aggregate).toBe('API key');
      expect(page.events.map((e) => e.type)).toEqual(['ApiKeyIssued', 'ApiKeyRotated']);
      expect(page.events.map((e) => e.hash)).toEqual([stored[0]!.hash, stored[1]!.hash]);
      expect(page.events[0]!.data).toMatchObject({
        keyId,
        role: 'trader',
        secretHash: '[redacted]',
      });
      expect(page.nextCursor).toBe('1');
      const rest = await json<typeof page>(
        await api.request('GET', `/api/v1/audit/streams/${apiKeyStream(keyId)}/events?after=1`, {
          token: api.tokens.auditor,
        }),
      );
      expect(rest.events.map((e) => e.type)).toEqual(['ApiKeyRevoked']);
      expect(rest.nextCursor).toBeNull();
    });

    it('folds the state at a position and names the position and event it used', async () => {
      const [issued, rotated, revoked] = stored;
      const at = async (query: string) =>
        api.request('GET', `/api/v1/audit/streams/${apiKeyStream(keyId)}/state?${query}`, {
          token: api.tokens.auditor,
        });
      const atIssue = await json<Record<string, unknown>>(
        await at(`atPosition=${issued!.position.toString()}`),
      );
      expect(atIssue).toMatchObject({
        aggregate: 'API key',
        atPosition: issued!.position.toString(),
        position: issued!.position.toString(),
        revision: '0',
        eventPosition: issued!.position.toString(),
        recordedAt: issued!.recordedAt.toISOString(),
        eventCount: 1,
        state: { status: 'active', name: 'desk-9', role: 'trader' },
      });
      // Just before the revocation: rotated, still active.
      const beforeRevoke = await json<Record<string, unknown>>(
        await at(`atPosition=${(revoked!.position - 1n).toString()}`),
      );
      expect(beforeRevoke).toMatchObject({
        revision: '1',
        eventPosition: rotated!.position.toString(),
        state: { status: 'active' },
      });
      const latest = await json<Record<string, unknown>>(await at(''));
      expect(latest).toMatchObject({ revision: '2', state: { status: 'revoked' } });
      expect(latest['position']).toBe(
        (await api.server.runtime.eventStore.headPosition()).toString(),
      );
      // Before the key existed: the initial state, no event.
      const before = await json<Record<string, unknown>>(
        await at(`atPosition=${(issued!.position - 1n).toString()}`),
      );
      expect(before).toMatchObject({ revision: null, eventCount: 0, state: { status: 'none' } });
    });

    it('resolves asOf to the last position recorded at or before it', async () => {
      const instant = stored[0]!.recordedAt;
      const answer = await json<{ position: string; revision: string | null; state: unknown }>(
        await api.request(
          'GET',
          `/api/v1/audit/streams/${apiKeyStream(keyId)}/state?asOf=${encodeURIComponent(instant.toISOString())}`,
          { token: api.tokens.auditor },
        ),
      );
      const position = await api.server.runtime.eventStore.positionAt(instant);
      expect(answer.position).toBe(position.toString());
      // Whatever else shares that millisecond: exactly the events recorded at or before it.
      const expected = stored.filter((e) => e.recordedAt <= instant);
      expect(answer.revision).toBe(expected.at(-1)!.revision.toString());
      expect(answer.state).toEqual(foldEvents(fromDecider('API key', apiKeys), expected));
      // An instant before the log began resolves to position 0 and the initial state.
      const early = await json<{ position: string; state: unknown }>(
        await api.request(
          'GET',
          `/api/v1/audit/streams/${apiKeyStream(keyId)}/state?asOf=2000-01-01T00:00:00Z`,
          { token: api.tokens.auditor },
        ),
      );
      expect(early).toMatchObject({ position: '0', state: { status: 'none' } });
    });

    it('refuses bad cuts, unknown streams and unknown aggregates with specific codes', async () => {
      const problem = async (path: string) => {
        const response = await api.request('GET', path, { token: api.tokens.auditor });
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        return { status: response.status, ...(await json<{ code: string }>(response)) };
      };
      const stream = apiKeyStream(keyId);
      expect(
        await problem(
          `/api/v1/audit/streams/${stream}/state?asOf=2026-01-01T00:00:00Z&atPosition=3`,
        ),
      ).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
      expect(await problem(`/api/v1/audit/streams/${stream}/state?atPosition=-1`)).toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(await problem('/api/v1/audit/streams/apikey-nosuchkey/state')).toMatchObject({
        status: 404,
        code: 'STREAM_NOT_FOUND',
      });
      expect(await problem('/api/v1/audit/streams/apikey-nosuchkey/events')).toMatchObject({
        status: 404,
        code: 'STREAM_NOT_FOUND',
      });
      expect(await problem('/api/v1/audit/streams/widget-1/state')).toMatchObject({
        status: 404,
        code: 'UNKNOWN_AGGREGATE',
      });
      expect(await problem('/api/v1/audit/streams/no%20dash/events')).toMatchObject({
        status: 400,
        code: 'INVALID_STREAM_ID',
      });
      // Risk officers read the trail, not event data.
      const denied = await api.request('GET', `/api/v1/audit/streams/${stream}/events`, {
        token: api.tokens.risk_officer,
      });
      expect(denied.status).toBe(403);
    });
  });

  it('answers the causation tree of a correlation id across streams', async () => {
    const correlationId = `corr-${randomUUID()}`;
    const id = () => randomUUID();
    const [a, b, c, d, other] = [id(), id(), id(), id(), id()];
    const meta = (causationId: string) => ({ actor: 'tester', correlationId, causationId });
    await append(`order-${randomUUID()}`, [
      { eventId: a, type: 'OrderPlaced', data: {}, metadata: meta('command-1') },
    ]);
    await append(`fill-${randomUUID()}`, [
      { eventId: b, type: 'OrderFilled', data: {}, metadata: meta(a) },
      { eventId: c, type: 'FeeCharged', data: {}, metadata: meta(a) },
    ]);
    await append(`position-${randomUUID()}`, [
      { eventId: d, type: 'PositionOpened', data: {}, metadata: meta(b) },
    ]);
    const last = await append(`order-${randomUUID()}`, [
      { eventId: other, type: 'OrderPlaced', data: {}, metadata: meta('command-2') },
    ]);
    const response = await api.request(
      'GET',
      `/api/v1/audit/correlations/${correlationId}?minPosition=${last.position.toString()}`,
      { token: api.tokens.auditor },
    );
    expect(response.status).toBe(200);
    const tree = await json<{
      eventCount: number;
      truncated: boolean;
      roots: { causationId: string | null; eventIds: string[] }[];
      events: {
        eventId: string;
        parentEventId: string | null;
        children: string[];
        depth: number;
      }[];
    }>(response);
    expect(tree.eventCount).toBe(5);
    expect(tree.truncated).toBe(false);
    expect(tree.roots).toEqual([
      { causationId: 'command-1', eventIds: [a] },
      { causationId: 'command-2', eventIds: [other] },
    ]);
    const node = (eventId: string) => tree.events.find((e) => e.eventId === eventId);
    expect(node(a)).toMatchObject({ parentEventId: null, children: [b, c], depth: 0 });
    expect(node(b)).toMatchObject({ parentEventId: a, children: [d], depth: 1 });
    expect(node(c)).toMatchObject({ parentEventId: a, children: [], depth: 1 });
    expect(node(d)).toMatchObject({ parentEventId: b, children: [], depth: 2 });
    const truncated = await json<{ eventCount: number; truncated: boolean }>(
      await api.request('GET', `/api/v1/audit/correlations/${correlationId}?limit=2`, {
        token: api.tokens.auditor,
      }),
    );
    expect(truncated).toMatchObject({ eventCount: 2, truncated: true });
    const unknown = await api.request('GET', '/api/v1/audit/correlations/no-such-correlation', {
      token: api.tokens.auditor,
    });
    expect(unknown.status).toBe(404);
    expect(await json<{ code: string }>(unknown)).toMatchObject({ code: 'CORRELATION_NOT_FOUND' });
  });

  describe('export', () => {
    const category = `export${randomUUID().replaceAll('-', '').slice(0, 8)}`;
    const total = 2_345; // more than two export batches of 1,000
    const tricky = '=HYPERLINK("x"), "quoted"\nand a line break';
    let lastPosition: bigint;

    beforeAll(async () => {
      for (let written = 0; written < total; written += 500) {
        const count = Math.min(500, total - written);
        const events = Array.from({ length: count }, (_, i) => ({
          type: 'Exported',
          data: { i: written + i },
          metadata: { actor: written + i === 1234 ? tricky : 'exporter' },
        }));
        lastPosition = (await append(`${category}-${written % 3}`, events)).position;
      }
    });

    it('streams every matching row as NDJSON, in position order, across batches', async () => {
      const response = await api.request(
        'GET',
        `/api/v1/audit/events/export?category=${category}&minPosition=${lastPosition.toString()}`,
        { token: api.tokens.auditor },
      );
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      // Streamed: no length known in advance.
      expect(response.headers.get('content-length')).toBeNull();
      expect(response.headers.get('transfer-encoding')).toBe('chunked');
      const upTo = BigInt(response.headers.get('x-qcat-position') ?? '0');
      expect(upTo).toBeGreaterThanOrEqual(lastPosition);
      const lines = (await response.text()).split('\n');
      expect(lines.pop()).toBe('');
      const rows = lines.map(
        (line) => JSON.parse(line) as { position: string; category: string; actor: string },
      );
      expect(rows).toHaveLength(total);
      expect(rows.every((row) => row.category === category)).toBe(true);
      for (let i = 1; i < rows.length; i++)
        expect(BigInt(rows[i]!.position)).toBeGreaterThan(BigInt(rows[i - 1]!.position));
      expect(rows.filter((row) => row.actor === tricky)).toHaveLength(1);
    });

    it('streams CSV with RFC 4180 quoting and formula cells defused, the same rows as NDJSON', async () => {
      const query = `category=${category}&minPosition=${lastPosition.toString()}`;
      const csv = await api.request('GET', `/api/v1/audit/events/export?format=csv&${query}`, {
        token: api.tokens.auditor,
      });
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(csv.headers.get('content-disposition')).toMatch(
        /^attachment; filename="qcat-audit-\d+\.csv"$/,
      );
      const records = parseCsv(await csv.text());
      expect(records[0]).toEqual([
        'position',
        'recordedAt',
        'streamId',
        'category',
        'revision',
        'type',
        'eventId',
        'actor',
        'correlationId',
        'causationId',
      ]);
      const body = records.slice(1);
      expect(body).toHaveLength(total);
      expect(body.every((record) => record.length === 10)).toBe(true);
      const ndjson = (
        await (
          await api.request('GET', `/api/v1/audit/events/export?${query}`, {
            token: api.tokens.auditor,
          })
        ).text()
      )
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { position: string }).position);
      expect(body.map((record) => record[0])).toEqual(ndjson);
      expect(body.filter((record) => record[7] === `'${tricky}`)).toHaveLength(1);
    });

    it('filters the export like the list, and refuses an unknown format', async () => {
      const response = await api.request(
        'GET',
        `/api/v1/audit/events/export?category=${category}&actor=${encodeURIComponent(tricky)}`,
        { token: api.tokens.admin },
      );
      const lines = (await response.text()).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ actor: tricky, category });
      const bad = await api.request('GET', '/api/v1/audit/events/export?format=xlsx', {
        token: api.tokens.auditor,
      });
      expect(bad.status).toBe(400);
      expect(await json<{ code: string }>(bad)).toMatchObject({ code: 'VALIDATION_FAILED' });
      const denied = await api.request('GET', '/api/v1/audit/events/export', {
        token: api.tokens.risk_officer,
      });
      expect(denied.status).toBe(403);
    });
  });

  describe('verification of the hash chain', () => {
    const verify = async (): Promise<VerifyAnswer> => {
      const response = await api.request('GET', '/api/v1/audit/verify', {
        token: api.tokens.auditor,
      });
      expect(response.status).toBe(200);
      return json<VerifyAnswer>(response);
    };

    it('passes the intact log over HTTP and the CLI, with the same digest', async () => {
      const answer = await verify();
      const head = (await api.server.runtime.eventStore.headPosition()).toString();
      expect(answer).toMatchObject({
        ok: true,
        headPosition: head,
        verifiedTo: head,
        firstBroken: null,
      });
      expect(answer.eventsChecked).toBe(Number(head));
      const cli = await cliVerify(api.database.url);
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain(`log intact: ${head} events`);
      expect(cli.stdout).toContain(`digest ${answer.digest ?? 'none'}`);
    }, 120_000);

    it('names an event edited directly in PostgreSQL, over HTTP and the CLI, until it is put back', async () => {
      const streamId = `ledger-${randomUUID()}`;
      await append(streamId, [
        { type: 'Credited', data: { amount: 100 }, metadata: { actor: 'teller' } },
        { type: 'Debited', data: { amount: 40 }, metadata: { actor: 'teller' } },
        { type: 'Credited', data: { amount: 5 }, metadata: { actor: 'teller' } },
      ]);
      const [, victim] = await api.server.runtime.eventStore.readStream(streamId);
      const position = victim!.position.toString();
      await db.query(
        `UPDATE qcat_events SET data = jsonb_set(data, '{amount}', '4') WHERE position = $1`,
        [position],
      );
      try {
        const answer = await verify();
        expect(answer.ok).toBe(false);
        expect(answer.digest).toBeNull();
        expect(answer.firstBroken).toMatchObject({
          reason: 'hash_mismatch',
          position,
          streamId,
          revision: '1',
          eventId: victim!.eventId,
          found: victim!.hash,
        });
        expect(answer.firstBroken!.expected).toMatch(/^[0-9a-f]{64}$/);
        expect(answer.firstBroken!.expected).not.toBe(victim!.hash);

        const cli = await cliVerify(api.database.url, ['--json']);
        expect(cli.code).toBe(2);
        const report = JSON.parse(cli.stdout) as VerifyAnswer;
        expect(report.firstBroken).toEqual({
          ...answer.firstBroken,
          detail: expect.any(String) as string,
        });
        const text = await cliVerify(api.database.url);
        expect(text.code).toBe(2);
        expect(text.stdout).toContain(`BROKEN at position ${position} ('${streamId}'@1`);
        expect(text.stdout).toContain('hash_mismatch');
      } finally {
        await db.query(
          `UPDATE qcat_events SET data = jsonb_set(data, '{amount}', '40') WHERE position = $1`,
          [position],
        );
      }
      expect((await verify()).ok).toBe(true);
    }, 120_000);

    it('names a forged hash, a deleted event and a deleted tail', async () => {
      const streamId = `ledger-${randomUUID()}`;
      await append(streamId, [
        { type: 'Credited', data: { amount: 1 }, metadata: { actor: 'teller' } },
        { type: 'Credited', data: { amount: 2 }, metadata: { actor: 'teller' } },
      ]);
      const [first, second] = await api.server.runtime.eventStore.readStream(streamId);
      const at = (event: RecordedEvent) => event.position.toString();

      await db.query(`UPDATE qcat_events SET hash = repeat('0', 64) WHERE position = $1`, [
        at(first!),
      ]);
      expect((await verify()).firstBroken).toMatchObject({
        reason: 'hash_mismatch',
        position: at(first!),
        expected: first!.hash,
        found: '0'.repeat(64),
      });
      await db.query('UPDATE qcat_events SET hash = $2 WHERE position = $1', [
        at(first!),
        first!.hash,
      ]);

      // Delete the stream's first event: a hole in the positions right there.
      const saved = await db.query('SELECT * FROM qcat_events WHERE position = $1', [at(first!)]);
      await db.query('DELETE FROM qcat_events WHERE position = $1', [at(first!)]);
      expect((await verify()).firstBroken).toMatchObject({
        reason: 'position_gap',
        position: (first!.position + 1n).toString(),
        expected: at(first!),
      });
      const row = saved.rows[0] as Record<string, unknown>;
      const columns = Object.keys(row);
      await db.query(
        `INSERT INTO qcat_events (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        columns.map((column) => row[column]),
      );
      expect((await verify()).ok).toBe(true);

      // Delete the last event of the log while its head still says otherwise.
      const head = await api.server.runtime.eventStore.headPosition();
      expect(head).toBe(second!.position);
      await db.query('DELETE FROM qcat_events WHERE position = $1', [at(second!)]);
      expect((await verify()).firstBroken).toMatchObject({
        reason: 'log_truncated',
        position: head.toString(),
        expected: head.toString(),
        found: (head - 1n).toString(),
      });
    }, 120_000);
  });
});
