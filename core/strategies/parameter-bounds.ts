import type { JsonObject } from '../eventstore/event-store.js';

/**
 * Whether a parameter change stays within a standing approval's bounds: every numeric parameter
 * within ± `maxRelativeChange` of its live value (a live 0 may not move), every other parameter
 * unchanged, no parameter added or removed. Answers one coded reason per parameter out of
 * bounds; none when the change is within them.
 */
export function outOfBounds(
  live: JsonObject,
  proposed: JsonObject,
  maxRelativeChange: number,
): string[] {
  const reasons: string[] = [];
  for (const name of [...new Set([...Object.keys(live), ...Object.keys(proposed)])].sort()) {
    const from = live[name];
    const to = proposed[name];
    if (typeof from === 'number' && typeof to === 'number') {
      const allowed = Math.abs(from) * maxRelativeChange;
      // A hair of tolerance: 0.1 × 1.25 is not exactly 0.125 in binary.
      if (Math.abs(to - from) > allowed + 1e-12 * Math.max(1, Math.abs(from)))
        reasons.push(
          `PARAMETER_OUT_OF_BOUNDS: ${name}=${to}, live=${from}, max change=±${maxRelativeChange * 100}%`,
        );
    } else if (JSON.stringify(from) !== JSON.stringify(to))
      reasons.push(
        `PARAMETER_CHANGED: ${name} is not numeric and may not change under a standing approval`,
      );
  }
  return reasons;
}
