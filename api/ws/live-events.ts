import {
  Subject,
  defer,
  map,
  retry,
  share,
  takeUntil,
  timer,
  type Observable,
  type Subscription,
} from 'rxjs';
import { isUnavailable } from '../../core/adapters/unavailable.js';
import { categoryOf } from '../../core/eventstore/append-validation.js';
import type { EventStore, Position, RecordedEvent } from '../../core/eventstore/event-store.js';
import { toWireEvent } from './protocol.js';

/** One committed event, with what every socket needs from it computed once. */
export interface LiveEvent {
  event: RecordedEvent;
  category: string;
  /** The event as the wire shows it (`WireEvent`): serialized on first use, once for all sockets. */
  json(): string;
}

export interface LiveEvents {
  /** Hot and shared: every socket subscribes here, the store sees one subscription. */
  readonly events$: Observable<LiveEvent>;
  /**
   * The last position multicast to `events$`. Delivery is synchronous, so an event after this
   * position reaches a subscriber that subscribes (or adds a channel) now; none before it does.
   */
  position(): Position;
  stop(): void;
}

export interface LiveEventsOptions {
  onError?: (error: unknown, attempt: number) => void;
  /** First retry delay after the store subscription fails; doubles up to 30 s. */
  retryDelayMs?: number;
}

/**
 * The process's one live subscription to the log, from the head at start. It stays connected
 * whether or not sockets listen, so a socket that subscribes sees what follows, not a catch-up
 * from when the process started. A failed store subscription is resumed after the last event
 * delivered: nothing is skipped and nothing is repeated.
 */
export async function startLiveEvents(
  store: EventStore,
  options: LiveEventsOptions = {},
): Promise<LiveEvents> {
  let position = await store.headPosition();
  const baseDelay = options.retryDelayMs ?? 500;
  const stop$ = new Subject<void>();
  const events$ = defer(() => store.subscribeToAll({ after: position })).pipe(
    retry({
      delay: (error: unknown, attempt: number) => {
        options.onError?.(error, attempt);
        // The database down: back within a second of its return, not after up to 30 s.
        const most = isUnavailable(error) ? 1000 : 30_000;
        return timer(Math.min(most, baseDelay * 2 ** Math.min(attempt - 1, 16)));
      },
      resetOnSuccess: true,
    }),
    map((event): LiveEvent => {
      position = event.position;
      let json: string | undefined;
      return {
        event,
        category: categoryOf(event.streamId),
        json: () => (json ??= JSON.stringify(toWireEvent(event))),
      };
    }),
    takeUntil(stop$),
    share(),
  );
  const keepAlive: Subscription = events$.subscribe();
  return {
    events$,
    position: () => position,
    stop: () => {
      stop$.next();
      stop$.complete();
      keepAlive.unsubscribe();
    },
  };
}
