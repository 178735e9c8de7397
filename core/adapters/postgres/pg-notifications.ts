import pg from 'pg';
import { BehaviorSubject, Subject } from 'rxjs';

/**
 * One LISTEN connection on one channel: its notifications' payloads, and whether it is listening.
 * Reconnects a second after losing its connection; notifications sent meanwhile are lost, so a
 * user that must not miss one watches `listening` (false → true means: re-read what you know).
 */
export class PgNotifications {
  readonly messages = new Subject<string>();
  /** true from the moment LISTEN took effect until the connection is lost or stopped. */
  readonly listening = new BehaviorSubject<boolean>(false);
  private client: pg.Client | undefined;
  private starting = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  }

  start(): void {
    if (this.client || this.starting || this.stopped) return;
    this.starting = true;
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.messages.next(message.payload ?? '');
    });
    const reconnect = (): void => {
      if (this.client === client) this.client = undefined;
      if (this.listening.value) this.listening.next(false);
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (!this.stopped)
        this.retry = setTimeout(() => {
          this.start();
        }, 1000);
    };
    client.on('error', reconnect);
    client.on('end', () => {
      if (this.client === client) reconnect();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${this.channel}`))
      .then(() => {
        this.starting = false;
        if (this.stopped) {
          void client.end();
          return;
        }
        this.client = client;
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
    const client = this.client;
    this.client = undefined;
    if (this.listening.value) this.listening.next(false);
    this.messages.complete();
    this.listening.complete();
    await client?.end().catch(() => undefined);
  }
}
