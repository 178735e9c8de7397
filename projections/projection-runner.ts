import type { EventStore, RecordedEvent } from '../core/eventstore/event-store.js';
import { isUnavailable } from '../core/adapters/unavailable.js';
import { toError } from '../core/errors.js';
import type { Upcasters } from '../core/eventstore/upcasting.js';
import type { ProjectionState } from './projection.js';

/** The longest wait before trying again after the database or Redis did not answer. */
const RECONNECT_MS = 500;

/** A projection's destination: applies batches exactly once and knows its checkpoint. */
export interface ProjectionTarget {
  readonly name: string;
  checkpoint(): Promise<bigint>;
  apply(events: readonly RecordedEvent[]): Promise<bigint>;
}

export interface RunnerOptions {
  batchSize?: number;
  /** Live events waiting beyond this send the runner back to reading in batches. */
  maxQueued?: number;
  /** First wait after a handler failure; doubles up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  upcasters?: Upcasters;
  onError?: (position: bigint, error: Error) => Promise<void>;
}

/**
 * Feeds one projection from `$all`: reads in batches from its checkpoint until caught up, then
 * follows the live subscription. A failing event stops this projection only, at that event; it is
 * tried again after a growing pause (never a hot loop) and resumes from there once it succeeds.
 */
export class ProjectionRunner {
  state: ProjectionState = 'catching_up';
  checkpoint = 0n;
  error: { position: bigint; message: string; at: Date } | null = null;
  private stopping = false;
  private wake: (() => void) | undefined;
  private done: Promise<void> | undefined;

  constructor(
    private readonly store: EventStore,
    readonly target: ProjectionTarget,
    private readonly options: RunnerOptions = {},
  ) {}

  start(): void {
    this.done ??= this.run();
  }

  /** A method, not the field: it changes while the loops await. */
  private isStopping(): boolean {
    return this.stopping;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.done;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private prepare(events: readonly RecordedEvent[]): RecordedEvent[] {
    const upcasters = this.options.upcasters;
    return upcasters ? events.map((event) => upcasters.apply(event)) : [...events];
  }

  /** Applies a batch; on failure finds the failing event (applying the good ones before it). */
  private async apply(events: readonly RecordedEvent[]): Promise<void> {
    try {
      this.checkpoint = await this.target.apply(this.prepare(events));
      return;
    } catch (batchError) {
      if (events.length === 1) {
        throw Object.assign(toError(batchError), { position: events[0]?.position ?? 0n });
      }
    }
    for (const event of events) await this.apply([event]);
  }

  private async run(): Promise<void> {
    let delay = this.options.retryDelayMs ?? 1000;
    let started = false;
    while (!this.isStopping()) {
      try {
        // In the loop: the database may be down right now, and a rejection here has no reader.
        // Again after a failure: a Redis that came back empty has lost its views, which then
        // catch up from its checkpoint (0), not from where this runner was.
        if (!started) this.checkpoint = await this.target.checkpoint();
        started = true;
        await this.follow();
        delay = this.options.retryDelayMs ?? 1000;
      } catch (thrown) {
        const error = toError(thrown);
        const position =
          'position' in error && typeof error.position === 'bigint'
            ? error.position
            : this.checkpoint + 1n;
        this.state = 'stopped';
        this.error = { position, message: error.message, at: new Date() };
        started = false;
        await this.options.onError?.(position, error).catch(() => undefined);
        // A database or Redis that does not answer is waited for briefly, not for minutes.
        await this.pause(isUnavailable(error) ? Math.min(delay, RECONNECT_MS) : delay);
        delay = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 5 * 60_000);
      }
    }
  }

  /** Catch up in batches, then live; returns when stopping, throws on a failed event. */
  private async follow(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1000;
    const maxQueued = this.options.maxQueued ?? 10_000;
    while (!this.isStopping()) {
      this.state = 'catching_up';
      for (;;) {
        const events = await this.store.readAll({ after: this.checkpoint, maxCount: batchSize });
        if (events.length === 0 || this.isStopping()) break;
        await this.apply(events);
        this.error = null;
      }
      if (this.isStopping()) return;

      this.state = 'running';
      const queue: RecordedEvent[] = [];
      const failed: { error?: Error } = {};
      const subscription = this.store.subscribeToAll({ after: this.checkpoint }).subscribe({
        next: (event) => {
          queue.push(event);
          this.wake?.();
        },
        error: (error: unknown) => {
          failed.error = toError(error);
          this.wake?.();
        },
      });
      try {
        while (!this.isStopping() && queue.length <= maxQueued) {
          if (failed.error) throw failed.error;
          if (queue.length === 0) {
            await this.pause(1000);
            continue;
          }
          await this.apply(queue.splice(0, batchSize));
          this.error = null;
        }
      } finally {
        subscription.unsubscribe();
      }
    }
  }
}
