import pg from 'pg';
import { BehaviorSubject, Subject } from 'rxjs';

export interface PgNotificationsOptions {
  /** How often the idle connection proves it is alive (default 10 s) … */
  heartbeatMs?: number;
  /** … and how long the proof may take before the connection counts as lost (default 5 s). */
  heartbeatTimeoutMs?: number;
}

/**
 * One LISTEN connection on one channel: its notifications' payloads, and whether it is listening.
 * Reconnects a second after losing its connection; notifications sent meanwhile are lost, so a
 * user that must not miss one watches `listening` (false → true means: re-read what you know).
 * A connection that dies silently (a dropped idle TCP connection, a failover without a reset)
 * sends no error: TCP keep-alive and a `SELECT 1` every 10 s (5 s to answer) find it out. The
 * connection is named `qcat-listen:<channel>` in pg_stat_activity.
 */
export class PgNotifications {
  readonly messages = new Subject<string>();
  /** true from the moment LISTEN took effect until the connection is lost or stopped. */
  readonly listening = new BehaviorSubject<boolean>(false);
  private client: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private starting = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly options: PgNotificationsOptions = {},
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  }

  start(): void {
    if (this.client || this.starting || this.stopped) return;
    this.starting = true;
    const client = new pg.Client({
      connectionString: this.connectionString,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: `qcat-listen:${this.channel}`,
    });
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.messages.next(message.payload ?? '');
    });
    let heartbeat: NodeJS.Timeout | undefined;
    let gone = false;
    /** This client is done for (error, end, silence): drop it and start another in a second. */
    const reconnect = (): void => {
      if (gone) return;
      gone = true;
      clearInterval(heartbeat);
      if (this.client === client) {
        this.client = undefined;
        if (this.listening.value) this.listening.next(false);
      }
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (!this.stopped)
        this.retry = setTimeout(() => {
          this.start();
        }, 1000);
    };
    client.on('error', reconnect);
    client.on('end', reconnect);
    client
      .connect()
      .then(() => client.query(`LISTEN ${this.channel}`))
      .then(() => {
        this.starting = false;
        if (this.stopped || gone) {
          void client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        heartbeat = setInterval(() => {
          const late = setTimeout(reconnect, this.options.heartbeatTimeoutMs ?? 5_000);
          late.unref();
          client.query('SELECT 1').then(
            () => {
              clearTimeout(late);
            },
            () => {
              clearTimeout(late);
              reconnect();
            },
          );
        }, this.options.heartbeatMs ?? 10_000);
        heartbeat.unref();
        this.heartbeat = heartbeat;
        this.listening.next(true);
      })
      .catch(() => {
        this.starting = false;
        reconnect();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    if (this.listening.value) this.listening.next(false);
    this.messages.complete();
    this.listening.complete();
    client?.removeAllListeners('end');
    await client?.end().catch(() => undefined);
  }
}
