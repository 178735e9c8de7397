import { randomUUID } from 'node:crypto';
import { toError } from '../core/errors.js';
import type { EventStore, NewEvent, Position } from '../core/eventstore/event-store.js';

export interface GapTestOptions {
  /** The store the live subscriber reads from. */
  store: EventStore;
  /** An independent writer connection; each writer gets its own. */
  connect(): Promise<EventStore>;
  writers: number;
  events: number;
  /** How long to wait for the subscriber to reach the head once writing is done. */
  settleMs?: number;
}

export interface GapTestReport {
  written: number;
  received: number;
  /** Ids written but never delivered (at most 20 shown) and how many in all. */
  missing: string[];
  missingCount: number;
  duplicates: string[];
  /** Deliveries whose position was not above the one before. */
  outOfOrder: string[];
}

/**
 * The "gap" test: many writers append concurrently while one live subscriber runs. A store whose
 * transactions can commit out of position order lets the subscriber read past an uncommitted
 * position and skip the event for good.
 */
export async function runGapTest(options: GapTestOptions): Promise<GapTestReport> {
  const { store, writers, events } = options;
  const run = randomUUID().slice(0, 8);
  const category = `gap${run}`;
  const written = new Set<string>();
  const deliveries: { eventId: string; position: Position }[] = [];
  let checkpoint: Position = 0n;
  let failure: unknown;

  const start = await store.headPosition();
  const subscription = store.subscribeToAll({ after: start }).subscribe({
    next: (event) => {
      checkpoint = event.position;
      if (event.streamId.startsWith(`${category}-`))
        deliveries.push({ eventId: event.eventId, position: event.position });
    },
    error: (error: unknown) => {
      failure = error;
    },
  });

  const connections = await Promise.all(Array.from({ length: writers }, () => options.connect()));
  const perWriter = Math.ceil(events / writers);
  let head: Position = start;
  try {
    await Promise.all(
      connections.map(async (writer, w) => {
        let remaining = Math.min(perWriter, events - w * perWriter);
        let i = 0;
        while (remaining > 0) {
          // Appends of 1 to 5 events over 10 streams per writer.
          const size = Math.min(remaining, 1 + (i % 5));
          const batch: NewEvent[] = Array.from({ length: size }, () => ({
            eventId: randomUUID(),
            type: 'GapProbe',
            data: { w, i },
            metadata: { actor: 'gap-test' },
          }));
          const result = await writer.appendToStream(`${category}-w${w}s${i % 10}`, batch);
          for (const e of batch) written.add(e.eventId!);
          if (result.position > head) head = result.position;
          remaining -= size;
          i++;
        }
      }),
    );
    const deadline = Date.now() + (options.settleMs ?? 30_000);
    while (checkpoint < head && Date.now() < deadline && failure === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    subscription.unsubscribe();
    await Promise.all(connections.filter((c) => c !== store).map((c) => c.close()));
  }
  if (failure !== undefined) throw toError(failure);

  const seen = new Set<string>();
  const duplicates: string[] = [];
  const outOfOrder: string[] = [];
  deliveries.forEach((delivery, index) => {
    if (seen.has(delivery.eventId)) duplicates.push(delivery.eventId);
    seen.add(delivery.eventId);
    const previous = deliveries[index - 1];
    if (previous && delivery.position <= previous.position) {
      outOfOrder.push(`${String(previous.position)} then ${String(delivery.position)}`);
    }
  });
  const missing = [...written].filter((id) => !seen.has(id));
  return {
    written: written.size,
    received: deliveries.length,
    missing: missing.slice(0, 20),
    missingCount: missing.length,
    duplicates: duplicates.slice(0, 20),
    outOfOrder: outOfOrder.slice(0, 20),
  };
}
