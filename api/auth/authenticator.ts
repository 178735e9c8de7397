import type pg from 'pg';
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
  checkedAt: number;
}

/**
 * Resolves a bearer token to its key. The slow hash is checked once per token and process; after
 * that the key's status and hash are re-read from `qcat_read.api_keys` at most every `recheckMs`,
 * so a revoked or rotated key stops working within that time everywhere (at once in the process
 * that revoked it).
 */
export class Authenticator {
  private readonly verified = new Map<string, Cached>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly recheckMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  private async lookup(
    keyId: string,
  ): Promise<{ principal: Principal; secretHash: string } | null> {
    const { rows } = await this.pool.query<{
      name: string;
      role: string;
      secret_hash: string;
      status: string;
    }>('SELECT name, role, secret_hash, status FROM qcat_read.api_keys WHERE key_id = $1', [keyId]);
    const row = rows[0];
    if (!row || row.status !== 'active' || !isRole(row.role)) return null;
    return { principal: { keyId, name: row.name, role: row.role }, secretHash: row.secret_hash };
  }

  async authenticate(token: string): Promise<Principal | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const fingerprint = tokenFingerprint(token);
    const cached = this.verified.get(fingerprint);
    if (cached && this.now() - cached.checkedAt < this.recheckMs) return cached.principal;

    const current = await this.lookup(parsed.keyId);
    if (!current) {
      this.verified.delete(fingerprint);
      return null;
    }
    if (cached?.secretHash !== current.secretHash) {
      if (!(await verifySecret(parsed.secret, current.secretHash))) {
        this.verified.delete(fingerprint);
        return null;
      }
    }
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.set(fingerprint, { ...current, checkedAt: this.now() });
    return current.principal;
  }

  /** Drops every cached token of a key (after this process rotated or revoked it). */
  forget(keyId: string): void {
    for (const [fingerprint, cached] of this.verified) {
      if (cached.principal.keyId === keyId) this.verified.delete(fingerprint);
    }
  }
}
