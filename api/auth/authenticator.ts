import type pg from 'pg';
import { ApiKeyQueries } from '../../projections/api-key-queries.js';
import { isRole, type Role } from '../../core/access/roles.js';
import { parseToken, tokenFingerprint, verifySecret } from './api-key-secrets.js';

export interface Principal {
  keyId: string;
  name: string;
  role: Role;
}

interface Cached {
  principal: Principal;
  secretHash: string;
  /** When the look-up that confirmed it began. */
  checkedAt: number;
}

interface Check {
  keyId: string;
  result: Promise<Principal | null>;
}

/**
 * Resolves a bearer token to its key. The slow hash is checked once per token and process; after
 * that the key's status and hash are re-read from `qcat_private.api_keys` at most every `recheckMs`,
 * so a revoked or rotated key stops working within that time everywhere. Concurrent requests with
 * the same token share one check (one look-up, at most one hash), so a burst of them after a start
 * or at each recheck costs what one request costs.
 *
 * In the process that rotated or revoked a key (`forget`), the key is re-read on every request for
 * the next `recheckMs`, so it stops working there as soon as the read model has the change, even
 * if a request raced the change and read the old row.
 */
export class Authenticator {
  private readonly verified = new Map<string, Cached>();
  /** Checks under way, by token fingerprint. */
  private readonly checking = new Map<string, Check>();
  /** Keys this process rotated or revoked, and when. */
  private readonly forgotten = new Map<string, number>();

  private readonly keys: ApiKeyQueries;

  constructor(
    pool: pg.Pool,
    private readonly recheckMs = 5000,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new ApiKeyQueries(pool);
  }

  private async lookup(
    keyId: string,
  ): Promise<{ principal: Principal; secretHash: string } | null> {
    const row = await this.keys.credentials(keyId);
    if (!row || row.status !== 'active' || !isRole(row.role)) return null;
    return { principal: { keyId, name: row.name, role: row.role }, secretHash: row.secret_hash };
  }

  /**
   * The principal of a token verified less than `recheckMs` ago, without waiting: most requests
   * (a client sends the same token again and again) end here. undefined: ask `authenticate`.
   */
  known(token: string): Principal | undefined {
    const cached = this.verified.get(tokenFingerprint(token));
    return cached && this.now() - cached.checkedAt < this.recheckMs ? cached.principal : undefined;
  }

  async authenticate(token: string): Promise<Principal | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const fingerprint = tokenFingerprint(token);
    const cached = this.verified.get(fingerprint);
    if (cached && this.now() - cached.checkedAt < this.recheckMs) return cached.principal;

    const running = this.checking.get(fingerprint);
    if (running) return running.result;
    const result = this.check(parsed.keyId, parsed.secret, fingerprint, cached).finally(() => {
      if (this.checking.get(fingerprint)?.result === result) this.checking.delete(fingerprint);
    });
    this.checking.set(fingerprint, { keyId: parsed.keyId, result });
    return result;
  }

  private async check(
    keyId: string,
    secret: string,
    fingerprint: string,
    cached: Cached | undefined,
  ): Promise<Principal | null> {
    const startedAt = this.now();
    const current = await this.lookup(keyId);
    if (!current) {
      this.verified.delete(fingerprint);
      return null;
    }
    if (cached?.secretHash !== current.secretHash) {
      if (!(await verifySecret(secret, current.secretHash))) {
        this.verified.delete(fingerprint);
        return null;
      }
    }
    // A key forgotten since this check began, or recently, stays due for a re-read; the entry
    // still saves the hash next time if the row has not changed.
    const forgottenAt = this.forgotten.get(keyId);
    const fresh =
      forgottenAt === undefined ||
      (forgottenAt < startedAt && this.now() - forgottenAt >= this.recheckMs);
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.set(fingerprint, {
      ...current,
      checkedAt: fresh ? startedAt : Number.NEGATIVE_INFINITY,
    });
    return current.principal;
  }

  /**
   * Drops every cached token of a key and re-reads it on every request for the next `recheckMs`
   * (after this process rotated or revoked it). Requests after this call do not join a check that
   * began before it.
   */
  forget(keyId: string): void {
    const at = this.now();
    for (const [key, forgottenAt] of this.forgotten) {
      if (at - forgottenAt >= this.recheckMs) this.forgotten.delete(key);
    }
    this.forgotten.set(keyId, at);
    for (const [fingerprint, cached] of this.verified) {
      if (cached.principal.keyId === keyId) this.verified.delete(fingerprint);
    }
    for (const [fingerprint, check] of this.checking) {
      if (check.keyId === keyId) this.checking.delete(fingerprint);
    }
  }
}
