import type pg from 'pg';
import type { Role } from '../core/access/roles.js';

/** The SQL that reads the API keys read model (projections/api-keys.ts, in qcat_private). */

export interface ApiKeyRow {
  key_id: string;
  name: string;
  role: Role;
  status: 'active' | 'revoked';
  issued_at: Date;
  issued_by: string;
  revoked_at: Date | null;
}

export class ApiKeyQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** Every key, never its secret, in issue order. */
  async list(): Promise<ApiKeyRow[]> {
    const { rows } = await this.pool.query<ApiKeyRow>(
      'SELECT key_id, name, role, status, issued_at, issued_by, revoked_at FROM qcat_private.api_keys ORDER BY issued_at, key_id',
    );
    return rows;
  }

  /** What authentication needs of one key: its name, role (unchecked), secret hash and status. */
  async credentials(
    keyId: string,
  ): Promise<{ name: string; role: string; secret_hash: string; status: string } | undefined> {
    const { rows } = await this.pool.query<{
      name: string;
      role: string;
      secret_hash: string;
      status: string;
    }>('SELECT name, role, secret_hash, status FROM qcat_private.api_keys WHERE key_id = $1', [
      keyId,
    ]);
    return rows[0];
  }
}
