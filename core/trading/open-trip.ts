/**
 * The round trip open in a book, folded from its position stream: PositionChanged carries the
 * quantity after each fill, and a round trip opens when the position leaves zero or flips
 * (core/trading/accounting.ts). Null when the book is flat.
 */
export function openTripOf(
  events: readonly { type: string; data: unknown }[],
): { openedAt: number; quantity: number } | null {
  let held = 0;
  let openedAt = 0;
  for (const event of events) {
    if (event.type !== 'PositionChanged') continue;
    const { quantity, time } = event.data as { quantity: number; time: number };
    if (quantity !== 0 && (held === 0 || Math.sign(quantity) !== Math.sign(held))) openedAt = time;
    held = quantity;
  }
  return held === 0 ? null : { openedAt, quantity: held };
}
