import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

describe('command conventions: ETag, If-Match, Idempotency-Key, minPosition', () => {
  let api: TestServer;
  beforeAll(async () => {
    api = await startTestServer('conventions');
  });
  afterAll(async () => {
    await api.stop();
  });

  const issue = async (name: string): Promise<{ keyId: string; revision: string }> => {
    const response = await api.request('POST', '/api/v1/keys', { body: { name, role: 'viewer' } });
    expect(response.status).toBe(201);
    return (await response.json()) as { keyId: string; revision: string };
  };

  it('answers 412 when If-Match names a revision the stream has moved past, and writes nothing', async () => {
    const key = await issue('stale-reader');
    const head = await api.server.runtime.eventStore.headPosition();
    const stale = await api.request('DELETE', `/api/v1/keys/${key.keyId}`, {
      headers: { 'if-match': '"7"' },
    });
    expect(stale.status).toBe(412);
    expect(await stale.json()).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412 });
    expect(await api.server.runtime.eventStore.headPosition()).toBe(head);

    const fresh = await api.request('DELETE', `/api/v1/keys/${key.keyId}`, {
      headers: { 'if-match': `"${key.revision}"` },
    });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('etag')).toBe('"1"');
  });

  it('returns the first answer for a repeated Idempotency-Key and refuses it for another command', async () => {
    const key = await issue('retrying-client');
    const headers = { 'idempotency-key': 'revoke-retry-0001' };
    const first = await api.request('DELETE', `/api/v1/keys/${key.keyId}`, { headers });
    const second = await api.request('DELETE', `/api/v1/keys/${key.keyId}`, { headers });
    expect(first.status).toBe(200);
    expect(await second.json()).toEqual(await first.json());

    const other = await issue('other-key');
    const reused = await api.request('DELETE', `/api/v1/keys/${other.keyId}`, { headers });
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('refuses malformed If-Match and Idempotency-Key headers with the field named', async () => {
    const key = await issue('bad-headers');
    const response = await api.request('DELETE', `/api/v1/keys/${key.keyId}`, {
      headers: { 'if-match': 'W/"x"', 'idempotency-key': 'no spaces allowed' },
    });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { errors: { path: string }[] };
    expect(problem.errors.map((e) => e.path).sort()).toEqual([
      'headers.idempotency-key',
      'headers.if-match',
    ]);
  });

  it('waits for minPosition, and answers 202 with Retry-After when the read model is not there yet', async () => {
    const key = await issue('reader');
    const { position } = (await (
      await api.request('DELETE', `/api/v1/keys/${key.keyId}`)
    ).json()) as { position: string };
    const ready = await api.request(
      'GET',
      `/api/v1/audit/events?streamId=apikey-${key.keyId}&minPosition=${position}`,
    );
    expect(ready.status).toBe(200);
    const ahead = await api.request(
      'GET',
      `/api/v1/audit/events?minPosition=${BigInt(position) + 1000n}`,
    );
    expect(ahead.status).toBe(202);
    expect(ahead.headers.get('retry-after')).toBe('1');
    expect(await ahead.json()).toMatchObject({ code: 'PROJECTION_BEHIND' });
  });
});
