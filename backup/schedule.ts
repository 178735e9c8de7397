/**
 * The backup schedule: a cron expression (croner), evaluated in UTC, run only by the QCAT process
 * that holds the backup leadership lock — a PostgreSQL session advisory lock on a dedicated
 * connection, the mechanism of projections/leadership.ts with a key of its own. A process that
 * dies loses the connection and the lock; another takes it at its next scheduled run.
 */
import { Cron } from 'croner';
import pg from 'pg';

export const SCHEDULER_LOCK_KEY = 'qcat.backup.scheduler';

/** One advisory lock, held on its own connection for as long as the process lives. */
export class SchedulerLock {
  private client: pg.Client | undefined;
  private held = false;

  constructor(
    private readonly connectionString: string,
    private readonly key: string = SCHEDULER_LOCK_KEY,
  ) {}

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({ connectionString: this.connectionString });
    const lost = (): void => {
      if (this.client !== client) return;
      this.client = undefined;
      this.held = false;
    };
    client.on('error', lost);
    client.on('end', lost);
    await client.connect();
    this.client = client;
    return client;
  }

  /** Takes the lock if nobody holds it; true while this process holds it. */
  async tryAcquire(): Promise<boolean> {
    if (this.held) return true;
    const client = await this.connection();
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [this.key],
    );
    this.held = rows[0]?.locked === true;
    return this.held;
  }

  get holds(): boolean {
    return this.held;
  }

  async release(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.held = false;
    await client?.end().catch(() => undefined);
  }
}

export interface BackupSchedulerOptions {
  expression: string;
  connectionString: string;
  /** The scheduled work; only called in the process that holds the lock. */
  run: () => Promise<void>;
  log?: (message: string) => void;
  /** The advisory lock's key; one per kind of scheduled job (default: the backups'). */
  lockKey?: string;
}

export class BackupScheduler {
  private cron: Cron | undefined;
  private readonly lock: SchedulerLock;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: BackupSchedulerOptions) {
    this.lock = new SchedulerLock(options.connectionString, options.lockKey);
  }

  /** Starts the timer; tries the lock now so the leader is known from the start. */
  async start(): Promise<void> {
    this.cron = new Cron(this.options.expression, { timezone: 'UTC', protect: true }, () => {
      this.running = this.fire();
      return this.running;
    });
    const leads = await this.lock.tryAcquire().catch(() => false);
    this.options.log?.(
      `backups: schedule '${this.options.expression}' (UTC), next ${this.cron.nextRun()?.toISOString() ?? 'never'}; ${leads ? 'this process leads it' : 'another process leads it'}`,
    );
  }

  /** One scheduled run: only in the leader; failures are the job's to report. */
  async fire(): Promise<void> {
    let leads: boolean;
    try {
      leads = await this.lock.tryAcquire();
    } catch (error) {
      this.options.log?.(`backups: leadership check failed: ${(error as Error).message}`);
      return;
    }
    if (!leads) return;
    await this.options.run();
  }

  get leads(): boolean {
    return this.lock.holds;
  }

  async stop(): Promise<void> {
    this.cron?.stop();
    await this.running.catch(() => undefined);
    await this.lock.release();
  }
}
