/** An event as the causation tree needs it: its id and the id of its cause. */
export interface CausedEvent {
  eventId: string;
  causationId: string | null;
}

/**
 * Events of one correlation (in position order) as a tree: an event whose causationId is another
 * event of the set is that event's child; the others hang under their cause at the roots.
 */
export function causationTree<E extends CausedEvent>(
  events: readonly E[],
): {
  eventCount: number;
  roots: { causationId: string | null; eventIds: string[] }[];
  events: (E & {
    parentEventId: string | null;
    children: string[];
    depth: number | null;
  })[];
} {
  const byId = new Map(events.map((event) => [event.eventId, event]));
  const children = new Map<string, string[]>();
  const roots = new Map<string | null, string[]>();
  const parentOf = (event: CausedEvent): string | null =>
    event.causationId !== null && event.causationId !== event.eventId && byId.has(event.causationId)
      ? event.causationId
      : null;
  const push = <K>(map: Map<K, string[]>, key: K, eventId: string): void => {
    const list = map.get(key);
    if (list) list.push(eventId);
    else map.set(key, [eventId]);
  };
  for (const event of events) {
    const parent = parentOf(event);
    if (parent === null) push(roots, event.causationId, event.eventId);
    else push(children, parent, event.eventId);
  }
  const depths = new Map<string, number | null>();
  const depthOf = (event: CausedEvent): number | null => {
    // Walk up to a root; a cycle (forged ids) has no depth.
    const seen = new Set<string>();
    let depth = 0;
    let current: CausedEvent | undefined = event;
    while (current) {
      const known = depths.get(current.eventId);
      if (known !== undefined) return known === null ? null : known + depth;
      if (seen.has(current.eventId)) return null;
      seen.add(current.eventId);
      const parent = parentOf(current);
      if (parent === null) return depth;
      depth++;
      current = byId.get(parent);
    }
    return depth;
  };
  return {
    eventCount: events.length,
    roots: [...roots].map(([causationId, eventIds]) => ({ causationId, eventIds })),
    events: events.map((event) => {
      const depth = depthOf(event);
      depths.set(event.eventId, depth);
      return {
        ...event,
        parentEventId: parentOf(event),
        children: children.get(event.eventId) ?? [],
        depth,
      };
    }),
  };
}
