import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Vitest's order (failed first, then longest by the last run's durations, or largest file when
 * there is no last run, as on a fresh clone in CI), with the end-to-end files dealt in between the
 * others from the start: they are the longest (real processes, outages, crash loops), so with
 * several files at a time the run ends soonest when they start early; interleaved, not all at
 * once, so that their CPU-heavy process starts do not pile up on the two cores together.
 */
export default class EndToEndInterleaved extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const e2e = (file: TestSpecification): boolean => file.moduleId.endsWith('.e2e.spec.ts');
    const ends = sorted.filter(e2e);
    const rest = sorted.filter((file) => !e2e(file));
    const order: TestSpecification[] = [];
    while (ends.length > 0 || rest.length > 0) {
      const end = ends.shift();
      if (end) order.push(end);
      const other = rest.shift();
      if (other) order.push(other);
    }
    return order;
  }
}
