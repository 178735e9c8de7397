import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeOrder as placePaperOrder } from '../test/support/paper-orders.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';

const root = new URL('..', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `qcat keys …` and `qcat projections …` as an operator runs them: real processes against the
 * database of a running QCAT server, which leads the projections.
 */
describe('qcat keys | projections', () => {
  let qcat: TestServer;
  beforeAll(async () => {
    // The test polls with a key the server may not know yet: those 401s must not lock it out.
    qcat = await startTestServer('cli', { AUTH_FAILURES_PER_MINUTE: '100000' });
  });
  afterAll(async () => {
    await qcat.stop();
  });

  const cli = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: qcat.database.url,
        LOG_LEVEL: 'warn',
      };
      delete env['REDIS_URL'];
      execFile(
        process.execPath,
        qcatNodeArgs(...args),
        { cwd: root, env, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  const noStack = (run: Run): void => {
    expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  };

  it('creates a key whose token works over HTTP, lists it without a secret, and revokes it', async () => {
    const created = await cli('keys', 'create', '--role', 'auditor', '--name', 'cli-auditor');
    expect(created.code, created.stderr).toBe(0);
    const token = /^(qcat_([a-z0-9]{16})_[A-Za-z0-9_-]{43})$/m.exec(created.stdout);
    expect(token).not.toBeNull();
    const [, secretToken = '', keyId = ''] = token ?? [];
    // The server's read model gets the key from the log; then the token works over HTTP.
    await expect
      .poll(
        async () => (await qcat.request('GET', '/api/v1/session', { token: secretToken })).status,
        { timeout: 5000 },
      )
      .toBe(200);

    const listed = await cli('keys', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(keyId);
    expect(listed.stdout).toContain('cli-auditor');
    expect(listed.stdout).not.toContain(secretToken.slice(22));
    expect(listed.stdout).not.toMatch(/scrypt|\$/);

    const revoked = await cli('keys', 'revoke', keyId, '--reason', 'test over');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked key ${keyId}`);
    await expect
      .poll(
        async () => (await qcat.request('GET', '/api/v1/session', { token: secretToken })).status,
        { timeout: 10_000 },
      )
      .toBe(401);
    const again = await cli('keys', 'revoke', keyId);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already revoked');
  });

  it('refuses bad input with a message and exit code 1, never a stack trace, and writes nothing', async () => {
    const head = await qcat.server.runtime.eventStore.headPosition();
    const cases: [string[], RegExp][] = [
      [['keys', 'create', '--role', 'emperor', '--name', 'x'], /--role 'emperor' is not one of/],
      [['keys', 'revoke', 'NOT-A-KEY'], /is not a key id/],
      [['keys', 'revoke', 'zzzzzzzzzzzzzzzz'], /does not exist \(API_KEY_NOT_FOUND\)/],
      [['projections', 'rebuild', 'nope'], /unknown projection 'nope'; known: .*audit_trail/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(...args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toMatch(message);
      noStack(run);
    }
    expect(await qcat.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('shows every projection with its state, checkpoint and lag as JSON', async () => {
    const status = await cli('projections', 'status', '--json');
    expect(status.code, status.stderr).toBe(0);
    const rows = JSON.parse(status.stdout) as { name: string; state: string; lag: string }[];
    const names = rows.map((row) => row.name);
    expect(names).toEqual(expect.arrayContaining(['audit_trail', 'api_keys', 'strategies']));
    // The server leads them; this process only looks.
    const audit = rows.find((row) => row.name === 'audit_trail');
    expect(audit?.state).toBe('led_elsewhere');
  });

  describe('projections archive', () => {
    const DAY = 86_400_000;
    /** An order submitted `daysAgo` days ago and cancelled then (closed), or left open. */
    const placeOrder = async (id: string, daysAgo: number, closed: boolean): Promise<void> => {
      const { commands, projections } = qcat.server.runtime;
      const time = Date.now() - daysAgo * DAY;
      const position = await placePaperOrder(commands, id, time, { closed, actor: 'cli-test' });
      expect(await projections.waitFor('trading', position, 10_000)).toBe(true);
    };
    const listed = async (query = ''): Promise<{ cache: string | null; ids: string[] }> => {
      const response = await qcat.request('GET', `/api/v1/orders?limit=100${query}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { orders: { clientOrderId: string }[] };
      return {
        cache: response.headers.get('x-qcat-read-cache'),
        ids: body.orders.map((order) => order.clientOrderId),
      };
    };

    beforeAll(async () => {
      await placeOrder('o-old-closed', 400, true);
      await placeOrder('o-old-open', 400, false);
      await placeOrder('o-new-closed', 1, true);
    });

    it('refuses a bad --older-than-days with the usage exit code, naming the option, and moves nothing', async () => {
      const before = await listed();
      for (const value of ['0', '-1', '1.5', 'abc', '36501']) {
        const run = await cli('projections', 'archive', '--older-than-days', value);
        expect(run.code, value).toBe(1);
        expect(run.stderr, value).toMatch(/--older-than-days .*a whole number of days/);
        expect(run.stdout).toBe('');
        noStack(run);
      }
      expect((await listed()).ids).toEqual(before.ids);
    });

    it('moves the old closed order, and the API stops answering it from its cache at once', async () => {
      const cached = ['o-old-closed', 'o-old-open', 'o-new-closed'];
      await listed();
      expect(await listed()).toEqual({ cache: 'hit', ids: cached });

      const run = await cli('projections', 'archive', '--older-than-days', '30');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe(
        'trading: archived 1 orders, 0 fills and 0 valuations older than 30 days\n',
      );

      // The archive's change notice reaches the server: no trading event is needed.
      await expect
        .poll(async () => (await listed()).ids, { timeout: 5000 })
        .toEqual(['o-old-open', 'o-new-closed']);
      expect((await listed()).cache).toBe('hit');
      expect((await listed('&history=true')).ids).toEqual(cached);
      // Nothing left to move.
      const again = await cli('projections', 'archive', '--older-than-days', '30');
      expect(again.stdout).toContain('archived 0 orders');
    });
  });
});
