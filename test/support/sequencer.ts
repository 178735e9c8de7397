import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const root = new URL('../..', import.meta.url).pathname;

/**
 * Seconds each slow spec file took in one `.ci/run` (files of 3 s and more; ADR 020, third round).
 * Only an order: a stale or missing entry makes the run no less correct, at most a little longer.
 */
const durations = JSON.parse(
  readFileSync(new URL('./durations.json', import.meta.url), 'utf8'),
) as Record<string, number>;

/**
 * The longest files first, by `durations.json`, so that the run does not end waiting for one long
 * file started late (on a fresh clone, as in CI, vitest has no durations of its own and orders by
 * file size, which put the event-store contract and the gap test last). Then vitest's order (failed
 * first, then longest by the last run's durations, or largest file) for the rest, with the
 * end-to-end files dealt in between the others: interleaved, not all at once, so that their
 * CPU-heavy process starts do not pile up on the two cores together.
 */
export default class EndToEndInterleaved extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const seconds = (file: TestSpecification): number =>
      durations[relative(root, file.moduleId)] ?? 0;
    const known = sorted.filter((file) => seconds(file) > 0);
    known.sort((a, b) => seconds(b) - seconds(a));
    const e2e = (file: TestSpecification): boolean => file.moduleId.endsWith('.e2e.spec.ts');
    const unknown = sorted.filter((file) => seconds(file) === 0);
    const ends = unknown.filter(e2e);
    const rest = unknown.filter((file) => !e2e(file));
    const order: TestSpecification[] = [...known];
    while (ends.length > 0 || rest.length > 0) {
      const end = ends.shift();
      if (end) order.push(end);
      const other = rest.shift();
      if (other) order.push(other);
    }
    return order;
  }
}
