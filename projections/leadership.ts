import pg from 'pg';

export const leaderLockKey = (name: string): string => `qcat.projection.leader:${name}`;

/** SQL: is the leader lock of projection `$1` held by any session right now? */
export const LEADER_ALIVE_SQL = `EXISTS (
  SELECT 1 FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('qcat.projection.leader:' || name, 0))`;

/**
 * Which projections this process leads: a PostgreSQL session advisory lock per projection, held
 * on one dedicated connection. When the process dies its connection closes and the server frees
 * the locks, so another process takes over at its next attempt.
 */
export class Leadership {
  private client: pg.Client | undefined;
  private readonly held = new Set<string>();
  private onLost: (() => void) | undefined;

  constructor(private readonly connectionString: string) {}

  /** Called once when the lock connection is lost: every lock is gone with it. */
  whenLost(callback: () => void): void {
    this.onLost = callback;
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({ connectionString: this.connectionString });
    const lost = (): void => {
      if (this.client !== client) return;
      this.client = undefined;
      this.held.clear();
      this.onLost?.();
    };
    client.on('error', lost);
    client.on('end', lost);
    await client.connect();
    this.client = client;
    return client;
  }

  async tryAcquire(name: string): Promise<boolean> {
    if (this.held.has(name)) return true;
    const client = await this.connection();
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [leaderLockKey(name)],
    );
    const locked = rows[0]?.locked === true;
    if (locked) this.held.add(name);
    return locked;
  }

  leads(name: string): boolean {
    return this.held.has(name);
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.held.clear();
    await client?.end().catch(() => undefined);
  }
}
