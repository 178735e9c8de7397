import type pg from 'pg';
import type {
  CommandResult,
  IdempotencyClaim,
  IdempotencyStore,
} from '../../commands/idempotency.js';

interface StoredResult {
  streamId: string;
  nextExpectedRevision: string;
  position: string;
  eventCount: number;
}

/**
 * Idempotency keys in PostgreSQL (table `qcat_idempotency`, migration 2). A claim left by a process
 * that died is taken over once older than the lease.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly leaseSeconds = 60,
  ) {}

  async claim(key: string, commandHash: string): Promise<IdempotencyClaim> {
    // Insert, or take over an expired claim of the same command, in one statement.
    const claimed = await this.pool.query(
      `INSERT INTO qcat_idempotency (key, command_hash) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET claimed_at = now()
         WHERE qcat_idempotency.result IS NULL
           AND qcat_idempotency.command_hash = excluded.command_hash
           AND qcat_idempotency.claimed_at < now() - make_interval(secs => $3)
       RETURNING key`,
      [key, commandHash, this.leaseSeconds],
    );
    if (claimed.rowCount === 1) return { status: 'claimed' };
    const { rows } = await this.pool.query<{ command_hash: string; result: StoredResult | null }>(
      'SELECT command_hash, result FROM qcat_idempotency WHERE key = $1',
      [key],
    );
    const row = rows[0];
    if (!row) return this.claim(key, commandHash); // released in between: try again
    if (row.command_hash !== commandHash) return { status: 'mismatch' };
    if (!row.result) return { status: 'in_progress' };
    return {
      status: 'completed',
      result: {
        streamId: row.result.streamId,
        nextExpectedRevision: BigInt(row.result.nextExpectedRevision),
        position: BigInt(row.result.position),
        eventCount: row.result.eventCount,
      },
    };
  }

  async complete(key: string, result: CommandResult): Promise<void> {
    const stored: StoredResult = {
      streamId: result.streamId,
      nextExpectedRevision: result.nextExpectedRevision.toString(),
      position: result.position.toString(),
      eventCount: result.eventCount,
    };
    await this.pool.query(
      'UPDATE qcat_idempotency SET result = $2, completed_at = now() WHERE key = $1',
      [key, JSON.stringify(stored)],
    );
  }

  async release(key: string): Promise<void> {
    await this.pool.query('DELETE FROM qcat_idempotency WHERE key = $1 AND result IS NULL', [key]);
  }
}
