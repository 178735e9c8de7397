import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from './auth/api-key-service.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

type Json = Record<string, unknown>;
interface Row {
  backupId: string;
  kind: string | null;
  verification: { status: string; at: string | null };
  problem: string | null;
}

/** GET /backups and /backups/drills over a real backup folder the server's own jobs wrote. */
describe('backups over HTTP: the folder, the scheduled verify and the last restore drill', () => {
  let api: TestServer;
  let scratch: TestDatabase;
  let dir: string;
  const read = async (path: string, token = api.tokens.operator) => {
    const response = await api.request('GET', `/api/v1${path}`, { token });
    return { status: response.status, body: (await response.json()) as Json };
  };
  const rows = async (): Promise<Row[]> => (await read('/backups')).body['backups'] as Row[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qcat-backups-api-'));
    scratch = await createTestDatabase('backups_api_drill');
    api = await startTestServer('backups_api', {
      QCAT_BACKUP_DIR: dir,
      QCAT_RESTORE_DRILL_URL: scratch.url,
    });
  });
  afterAll(async () => {
    await api.stop();
    await scratch.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says "never" for every job and lists nothing before any backup', async () => {
    const { status, body } = await read('/backups');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      backups: [],
      nextCursor: null,
      partials: 0,
      verify: { outcome: 'never', at: null },
      copy: { outcome: 'never' },
    });
    expect((await read('/backups/drills')).body).toMatchObject({
      outcome: 'never',
      lastSuccess: null,
      configured: true,
    });
  });

  it('lists the backups newest first with what the scheduled verify found, and the drill', async () => {
    const { backups, maintenance } = api.server.runtime;
    const full = (await backups.run('full')).manifest;
    await new ApiKeyService(api.server.runtime.commands).issue('more', 'viewer', 'test-setup');
    const incremental = (await backups.run('incremental')).manifest;
    // Not verified yet: nothing has checked them.
    expect((await rows()).map((r) => [r.backupId, r.kind, r.verification.status])).toEqual([
      [incremental.backupId, 'incremental', 'unverified'],
      [full.backupId, 'full', 'unverified'],
    ]);
    expect(await maintenance.verify()).toBe(true);
    expect(await maintenance.drill()).toBe(true);
    const verified = await read('/backups');
    expect(verified.body['verify']).toMatchObject({ outcome: 'succeeded', lastProblem: null });
    expect((verified.body['backups'] as Row[]).map((r) => r.verification.status)).toEqual([
      'verified',
      'verified',
    ]);
    const drill = (await read('/backups/drills')).body;
    expect(drill).toMatchObject({ outcome: 'succeeded', lastFailure: null, configured: true });
    expect(Date.parse(drill['lastSuccess'] as string)).toBeGreaterThan(Date.now() - 600_000);
    // A page of one, then the next.
    const first = await read('/backups?limit=1');
    expect((first.body['backups'] as Row[]).map((r) => r.backupId)).toEqual([incremental.backupId]);
    const next = await read(`/backups?limit=1&after=${first.body['nextCursor'] as string}`);
    expect((next.body['backups'] as Row[]).map((r) => r.backupId)).toEqual([full.backupId]);
    expect(next.body['nextCursor']).toBeNull();
  });

  it('names the damaged backup after a failed verify, and a folder without a manifest', async () => {
    const [incremental, full] = await rows();
    const folder = join(dir, incremental!.backupId);
    const segment = readdirSync(folder).find((name) => name.startsWith('segment-'))!;
    appendFileSync(join(folder, segment), 'tampered');
    mkdirSync(join(dir, '20260101T000000000Z-full-abcd'));
    expect(await api.server.runtime.maintenance.verify()).toBe(false);
    const { body } = await read('/backups', api.tokens.auditor);
    expect(body['verify']).toMatchObject({ outcome: 'failed' });
    const byId = new Map((body['backups'] as Row[]).map((r) => [r.backupId, r]));
    expect(byId.get(incremental!.backupId)).toMatchObject({
      verification: { status: 'failed' },
      problem: expect.stringContaining(segment) as string,
    });
    expect(byId.get(full!.backupId)?.verification.status).toBe('verified');
    expect(byId.get('20260101T000000000Z-full-abcd')).toMatchObject({
      verification: { status: 'unreadable' },
      problem: expect.stringContaining('manifest.json: missing') as string,
    });
  });

  it('is for operators, auditors and admins; a bad cursor is refused naming the field', async () => {
    for (const role of ['trader', 'viewer', 'risk_officer'] as const) {
      expect((await read('/backups', api.tokens[role])).status, role).toBe(403);
      expect((await read('/backups/drills', api.tokens[role])).status, role).toBe(403);
    }
    expect((await read('/backups/drills', api.tokens.admin)).status).toBe(200);
    const bad = await read('/backups?after=yesterday');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('after');
  });
});
