import type pg from 'pg';
import type { Subscription } from 'rxjs';
import { PgNotifications } from '../core/adapters/postgres/pg-notifications.js';

/**
 * One state of a read model as this process last heard of it. A new object for every change
 * notice: holders compare by identity ("has anything changed since I looked?").
 */
export interface ReadModelVersion {
  readonly name: string;
  readonly generation: number;
  /** The checkpoint the notice named: the read model holds at least this much of the log. */
  readonly checkpoint: bigint;
  /**
   * The checkpoint of the last notice that may have changed its tables (ADR 027): two versions
   * with the same generation and `changed` hold the same rows, whatever their checkpoints.
   */
  readonly changed: bigint;
  /**
   * A number of its own for every notice that may have changed its tables, and for every re-read:
   * rows can change without the checkpoint moving (the retention job moves them to the archive,
   * ADR 032), and such a change must still make a version whose rows are not the same.
   */
  readonly rows: number;
}

/** Whether two versions of a read model hold the same rows (the later one may be further on). */
export const sameRows = (
  a: ReadModelVersion | undefined,
  b: ReadModelVersion | undefined,
): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.name === b.name &&
    a.generation === b.generation &&
    a.changed === b.changed &&
    a.rows === b.rows);

/**
 * Follows every projection's live generation and checkpoint through the `qcat_read_model`
 * notices that a trigger on `qcat_projections` sends at each commit that moves one (migration 6,
 * ADR 009), whichever process made the change, and that the retention job sends at each batch of
 * rows it moves to the archive (same checkpoint, rows changed: ADR 032).
 *
 * The guarantee users build on: a result read from a read model after `version(name)` answered V
 * reflects every change up to V, and if the read model changes after that, `version(name)` stops
 * answering V (the notice of the change arrives after its commit). While the notices cannot be
 * heard (not connected yet, connection lost) `version()` answers undefined for every read model:
 * nothing may be trusted then, since notices sent meanwhile are lost.
 */
export class ReadModelWatch {
  private readonly versions = new Map<string, ReadModelVersion>();
  private readonly notices: PgNotifications;
  private readonly subscriptions: Subscription[] = [];
  /** Bumped at each loss of the connection: a re-read begun before it must not take effect. */
  private epoch = 0;
  private live = false;
  /** The last `rows` number given out. */
  private rowChanges = 0;

  constructor(
    private readonly pool: pg.Pool,
    connectionString: string,
    private readonly log?: (message: string) => void,
  ) {
    this.notices = new PgNotifications(connectionString, 'qcat_read_model');
  }

  start(): void {
    this.subscriptions.push(
      this.notices.messages.subscribe((payload) => {
        this.notice(payload);
      }),
      this.notices.listening.subscribe((listening) => {
        this.epoch++;
        this.live = false;
        this.versions.clear();
        if (listening) void this.reread(this.epoch);
      }),
    );
    this.notices.start();
  }

  /** What is known of `name` now; undefined while nothing can be trusted. */
  version(name: string): ReadModelVersion | undefined {
    return this.live ? this.versions.get(name) : undefined;
  }

  async stop(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.live = false;
    this.versions.clear();
    await this.notices.stop();
  }

  /** After LISTEN took effect: every row as it is now; notices after it replace these. */
  private async reread(epoch: number): Promise<void> {
    try {
      const { rows } = await this.pool.query<{
        name: string;
        generation: number;
        checkpoint: string;
      }>('SELECT name, generation, checkpoint FROM qcat_projections');
      if (epoch !== this.epoch) return;
      for (const row of rows) {
        // A notice that came in while the query ran is at least as new: keep it.
        if (this.versions.has(row.name)) continue;
        this.set(row.name, row.generation, BigInt(row.checkpoint));
      }
      this.live = true;
    } catch (error) {
      this.log?.(`read model watch: reading qcat_projections failed: ${String(error)}`);
      // Try again later; until then nothing is trusted.
      setTimeout(() => {
        if (epoch === this.epoch) void this.reread(epoch);
      }, 1000).unref();
    }
  }

  private notice(payload: string): void {
    // `:same`: the checkpoint moved over events the read model does not handle (migration 16).
    const match = /^(.+):(\d+):(\d+)(:same)?$/.exec(payload);
    if (!match?.[1] || !match[2] || !match[3]) return;
    this.set(match[1], Number(match[2]), BigInt(match[3]), match[4] !== undefined);
  }

  private set(name: string, generation: number, checkpoint: bigint, same = false): void {
    const previous = this.versions.get(name);
    // Unchanged only after a version heard on this connection, of the same generation.
    if (same && previous?.generation === generation) {
      this.versions.set(name, { ...previous, checkpoint });
      return;
    }
    this.versions.set(name, {
      name,
      generation,
      checkpoint,
      changed: checkpoint,
      rows: ++this.rowChanges,
    });
  }
}
