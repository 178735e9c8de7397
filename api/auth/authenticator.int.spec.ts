import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { ApiKeyService } from './api-key-service.js';
import { Authenticator } from './authenticator.js';

/**
 * The verified-key cache against a real api_keys read model. Time is a hand-moved clock: the
 * bounds are checked by moving it, never by waiting.
 */
describe('Authenticator: verified-key cache and revocation', () => {
  const RECHECK_MS = 5000;
  let api: TestServer;
  let keys: ApiKeyService;
  let clock = 0;
  const now = (): number => clock;

  beforeAll(async () => {
    api = await startTestServer('authenticator');
    keys = new ApiKeyService(api.server.runtime.commands);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await api.stop();
  });

  /** A new key, visible in the read model. */
  const issue = async (name: string) => {
    const issued = await keys.issue(name, 'auditor', 'spec');
    await api.server.runtime.projections.waitFor('api_keys', issued.result.position, 10_000);
    return issued;
  };
  const revoke = async (keyId: string): Promise<void> => {
    const { position } = await keys.revoke(keyId, 'spec', 'spec');
    await api.server.runtime.projections.waitFor('api_keys', position, 10_000);
  };

  it('checks a token once for many concurrent requests', async () => {
    const { keyId, token } = await issue('concurrent');
    const authenticator = new Authenticator(api.server.runtime.pool, RECHECK_MS, now);
    const query = vi.spyOn(api.server.runtime.pool, 'query');
    const principals = await Promise.all(
      Array.from({ length: 20 }, () => authenticator.authenticate(token)),
    );
    const lookups = query.mock.calls.filter(
      ([sql]) => typeof sql === 'string' && sql.includes('FROM qcat_private.api_keys WHERE key_id'),
    );
    query.mockRestore();
    expect(principals.every((principal) => principal?.keyId === keyId)).toBe(true);
    expect(lookups).toHaveLength(1);
  });

  it('a key revoked elsewhere stops working once its cached check is recheckMs old', async () => {
    const { keyId, token } = await issue('elsewhere');
    clock = 1_000_000;
    const elsewhere = new Authenticator(api.server.runtime.pool, RECHECK_MS, now);
    expect((await elsewhere.authenticate(token))?.keyId).toBe(keyId);

    await revoke(keyId);
    clock += RECHECK_MS - 1;
    expect((await elsewhere.authenticate(token))?.keyId).toBe(keyId); // the documented bound
    clock += 1;
    expect(await elsewhere.authenticate(token)).toBeNull();
  });

  it('in the process that revoked it, a key stops working once the read model has the revocation, even after a racing request', async () => {
    const { keyId, token } = await issue('here');
    clock = 2_000_000;
    const here = new Authenticator(api.server.runtime.pool, RECHECK_MS, now);
    expect((await here.authenticate(token))?.keyId).toBe(keyId);

    // The revoking route forgets the key first; a request that arrives before the read model has
    // the revocation still reads an active row, and must not make it cached again.
    here.forget(keyId);
    expect((await here.authenticate(token))?.keyId).toBe(keyId);
    await revoke(keyId);
    expect(await here.authenticate(token)).toBeNull();
  });

  it('a rotated key: the old token fails at once where it was rotated, the new one works', async () => {
    const { keyId, token: oldToken } = await issue('rotated');
    clock = 3_000_000;
    const here = new Authenticator(api.server.runtime.pool, RECHECK_MS, now);
    expect((await here.authenticate(oldToken))?.keyId).toBe(keyId);

    const rotated = await keys.rotate(keyId, 'spec');
    here.forget(keyId);
    await api.server.runtime.projections.waitFor('api_keys', rotated.result.position, 10_000);
    expect(await here.authenticate(oldToken)).toBeNull();
    expect((await here.authenticate(rotated.token))?.keyId).toBe(keyId);
    expect((await here.authenticate(rotated.token))?.keyId).toBe(keyId);
  });
});
