import type { ChainableCommander, Redis } from 'ioredis';
import type { EventStore, RecordedEvent } from '../core/eventstore/event-store.js';
import type { RebuildProgress } from './postgres-target.js';
import { handledBy, type RedisProjection } from './projection.js';

/** Keys of one generation of a Redis view. */
export const redisViewKeys = (prefix: string, name: string, generation: number) => ({
  /** Prefix under which the view's own keys live. */
  data: `${prefix}${name}:g${generation}:`,
  checkpoint: `${prefix}${name}:g${generation}:checkpoint`,
});
/** Which generation readers should use. */
export const activeGenerationKey = (prefix: string, name: string): string =>
  `${prefix}${name}:generation`;

/**
 * Where a Redis view's changes go. Each batch: WATCH the active generation and its checkpoint, skip
 * events at or below the checkpoint, then one MULTI with the view's writes and the new checkpoint.
 * If anything watched moved (a rebuild switched), nothing is written and the batch is retried.
 */
export class RedisTarget {
  /**
   * @param redis a connection of its own: WATCH belongs to the connection.
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly projection: RedisProjection,
    /** Copies the checkpoint to the registry, for status and lag (not for correctness). */
    private readonly mirror?: (checkpoint: bigint) => Promise<void>,
  ) {}

  get name(): string {
    return this.projection.name;
  }

  private async generation(): Promise<number> {
    const value = await this.redis.get(activeGenerationKey(this.prefix, this.name));
    return value === null ? 1 : Number(value);
  }

  disconnect(): void {
    this.redis.disconnect();
  }

  async checkpoint(): Promise<bigint> {
    const keys = redisViewKeys(this.prefix, this.name, await this.generation());
    return BigInt((await this.redis.get(keys.checkpoint)) ?? '0');
  }

  async apply(events: readonly RecordedEvent[]): Promise<bigint> {
    const active = activeGenerationKey(this.prefix, this.name);
    for (;;) {
      await this.redis.watch(active);
      const keys = redisViewKeys(this.prefix, this.name, await this.generation());
      await this.redis.watch(keys.checkpoint);
      const checkpoint = BigInt((await this.redis.get(keys.checkpoint)) ?? '0');
      const fresh = events.filter((event) => event.position > checkpoint);
      const last = fresh.at(-1);
      if (!last) {
        await this.redis.unwatch();
        return checkpoint;
      }
      const multi = this.redis.multi();
      await this.applyTo(multi, keys.data, fresh);
      multi.set(keys.checkpoint, last.position.toString());
      if ((await multi.exec()) !== null) {
        await this.mirror?.(last.position);
        return last.position;
      }
    }
  }

  /** Queues on `multi` what the view makes of the events it handles; none: nothing to load or queue. */
  private async applyTo(
    multi: ChainableCommander,
    keyPrefix: string,
    events: readonly RecordedEvent[],
  ): Promise<void> {
    const handled = handledBy(this.projection, events);
    if (handled.length === 0) return;
    const loaded = await this.projection.load?.(this.redis, keyPrefix, handled);
    this.projection.apply(multi, keyPrefix, handled, loaded);
  }

  /** Deletes every key of a generation (SCAN, not KEYS: never blocks the server). */
  private async clear(generation: number): Promise<void> {
    const pattern = `${redisViewKeys(this.prefix, this.name, generation).data}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await this.redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }

  /** Builds the next generation from 0, then switches readers to it once it has caught up. */
  async rebuild(
    store: EventStore,
    options: { batchSize?: number; onProgress?: (progress: RebuildProgress) => void } = {},
  ): Promise<RebuildProgress & { generation: number }> {
    const batchSize = options.batchSize ?? 5000;
    const previous = await this.generation();
    const generation = previous + 1;
    const keys = redisViewKeys(this.prefix, this.name, generation);
    await this.clear(generation);
    const progress: RebuildProgress = { checkpoint: 0n, events: 0 };
    const catchUp = async (): Promise<void> => {
      for (;;) {
        const events = await store.readAll({ after: progress.checkpoint, maxCount: batchSize });
        const last = events.at(-1);
        if (!last) return;
        const multi = this.redis.multi();
        await this.applyTo(multi, keys.data, events);
        multi.set(keys.checkpoint, last.position.toString());
        await multi.exec();
        progress.checkpoint = last.position;
        progress.events += events.length;
        options.onProgress?.({ ...progress });
      }
    };
    const active = activeGenerationKey(this.prefix, this.name);
    const liveCheckpoint = redisViewKeys(this.prefix, this.name, previous).checkpoint;
    for (;;) {
      await catchUp();
      // The live runner may write between our catch-up and the switch; then EXEC fails and we go again.
      await this.redis.watch(active, liveCheckpoint);
      const live = BigInt((await this.redis.get(liveCheckpoint)) ?? '0');
      if (live > progress.checkpoint) {
        await this.redis.unwatch();
        continue;
      }
      const switched = await this.redis.multi().set(active, String(generation)).exec();
      if (switched !== null) break;
    }
    await this.clear(previous);
    return { ...progress, generation };
  }
}
