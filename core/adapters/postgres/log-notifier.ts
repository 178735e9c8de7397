import pg from 'pg';
import { Subject } from 'rxjs';

/**
 * One LISTEN connection per store that tells live subscribers a new head position was committed.
 * Notifications only wake readers up; correctness never depends on them (readers also poll).
 */
export class LogNotifier {
  readonly heads = new Subject<bigint>();
  private client: pg.Client | undefined;
  private starting = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly connectionString: string) {}

  start(): void {
    if (this.client || this.starting || this.stopped) return;
    this.starting = true;
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (message) => {
      if (message.payload) this.heads.next(BigInt(message.payload));
    });
    const reconnect = (): void => {
      if (this.client === client) this.client = undefined;
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (!this.stopped)
        this.retry = setTimeout(() => {
          this.start();
        }, 1000);
    };
    client.on('error', reconnect);
    client
      .connect()
      .then(() => client.query('LISTEN qcat_log'))
      .then(() => {
        this.starting = false;
        if (this.stopped) {
          void client.end();
          return;
        }
        this.client = client;
      })
      .catch(() => {
        this.starting = false;
        reconnect();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.heads.complete();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
