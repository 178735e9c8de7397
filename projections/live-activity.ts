import type { Redis } from 'ioredis';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { RedisProjection } from './projection.js';
import { activeGenerationKey, redisViewKeys } from './redis-target.js';

/** How many recent events each stream category keeps. */
export const ACTIVITY_PER_CATEGORY = 100;
export const activityChannel = (prefix: string): string => `${prefix}activity`;

export interface ActivityItem {
  position: string;
  recordedAt: string;
  streamId: string;
  type: string;
  actor: string;
}

/**
 * The latest events per stream category (a capped list each), for dashboards and the WebSocket
 * feed; every batch also publishes one notification naming its position range and categories.
 */
export const liveActivity = (prefix: string): RedisProjection => ({
  kind: 'redis',
  name: 'live_activity',
  version: 1,
  apply(multi, keyPrefix, events) {
    const byCategory = new Map<string, RecordedEvent[]>();
    for (const event of events) {
      const category = categoryOf(event.streamId);
      byCategory.set(category, [...(byCategory.get(category) ?? []), event]);
    }
    for (const [category, categoryEvents] of byCategory) {
      const key = `${keyPrefix}category:${category}`;
      const items = categoryEvents.slice(-ACTIVITY_PER_CATEGORY).map((event) =>
        JSON.stringify({
          position: event.position.toString(),
          recordedAt: event.recordedAt.toISOString(),
          streamId: event.streamId,
          type: event.type,
          actor: event.metadata.actor,
        } satisfies ActivityItem),
      );
      multi.lpush(key, ...items);
      multi.ltrim(key, 0, ACTIVITY_PER_CATEGORY - 1);
    }
    multi.publish(
      activityChannel(prefix),
      JSON.stringify({
        from: events[0]?.position.toString(),
        to: events.at(-1)?.position.toString(),
        count: events.length,
        categories: [...byCategory.keys()],
      }),
    );
  },
});

/** The latest activity of one category, newest first, from the live generation. */
export async function readActivity(
  redis: Redis,
  prefix: string,
  category: string,
): Promise<ActivityItem[]> {
  const generation = Number((await redis.get(activeGenerationKey(prefix, 'live_activity'))) ?? '1');
  const key = `${redisViewKeys(prefix, 'live_activity', generation).data}category:${category}`;
  const items = await redis.lrange(key, 0, -1);
  return items.map((item) => JSON.parse(item) as ActivityItem);
}
