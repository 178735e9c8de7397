import pg from 'pg';
import { Observable } from 'rxjs';
import type {
  AppendResult,
  EventStore,
  NewEvent,
  Position,
  ReadAllOptions,
  RecordedEvent,
  SubscribeOptions,
} from '../core/eventstore/event-store.js';

/**
 * The design ADR 001 rejects, kept only to prove the gap test catches it: positions from a
 * `bigserial`, each append its own transaction, concurrent writers free to commit in any order.
 * `inTransactionDelayMs` stands for the work and network time a real append spends between taking
 * its position and committing.
 */
export class NaiveBigserialEventStore implements EventStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly inTransactionDelayMs: number,
  ) {}

  static async connect(
    connectionString: string,
    inTransactionDelayMs = 2,
  ): Promise<NaiveBigserialEventStore> {
    const pool = new pg.Pool({ connectionString, max: 4 });
    // An idle client ended by the test database's drop must not surface as an unhandled error.
    pool.on('error', () => undefined);
    await pool.query(`CREATE TABLE IF NOT EXISTS naive_events (
      position bigserial PRIMARY KEY, stream_id text NOT NULL, event_id uuid NOT NULL, type text NOT NULL,
      data jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    return new NaiveBigserialEventStore(pool, inTransactionDelayMs);
  }

  async appendToStream(streamId: string, events: readonly NewEvent[]): Promise<AppendResult> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      let position = 0n;
      for (const event of events) {
        const { rows } = await client.query<{ position: string }>(
          'INSERT INTO naive_events (stream_id, event_id, type, data) VALUES ($1, $2, $3, $4) RETURNING position',
          [streamId, event.eventId ?? crypto.randomUUID(), event.type, JSON.stringify(event.data)],
        );
        position = BigInt(rows[0]!.position);
      }
      await client.query('SELECT pg_sleep($1)', [
        (Math.random() * this.inTransactionDelayMs) / 1000,
      ]);
      await client.query('COMMIT');
      return { nextExpectedRevision: 0n, position };
    } finally {
      client.release();
    }
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const { rows } = await this.pool.query<{
      position: string;
      stream_id: string;
      event_id: string;
      type: string;
    }>(
      'SELECT position, stream_id, event_id, type FROM naive_events WHERE position > $1 ORDER BY position LIMIT $2',
      [String(options.after ?? 0n), options.maxCount ?? 1000],
    );
    return rows.map((row) => ({
      eventId: row.event_id,
      type: row.type,
      data: null,
      metadata: { actor: 'naive' },
      streamId: row.stream_id,
      revision: 0n,
      position: BigInt(row.position),
      recordedAt: new Date(),
      // A stand-in for the gap test, which reads ids and positions only: no hash chain.
      hash: '',
    }));
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      let checkpoint = options.after ?? 0n;
      const poll = async (): Promise<void> => {
        while (!subscriber.closed) {
          const events = await this.readAll({ after: checkpoint });
          for (const event of events) {
            checkpoint = event.position;
            subscriber.next(event);
          }
          if (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 2));
        }
      };
      poll().catch((error: unknown) => {
        subscriber.error(error);
      });
    });
  }

  async headPosition(): Promise<Position> {
    const { rows } = await this.pool.query<{ head: string | null }>(
      'SELECT max(position) AS head FROM naive_events',
    );
    return BigInt(rows[0]?.head ?? '0');
  }

  readStream(): Promise<RecordedEvent[]> {
    return Promise.reject(new Error('not part of the naive design'));
  }

  positionAt(): Promise<Position> {
    return Promise.reject(new Error('not part of the naive design'));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
