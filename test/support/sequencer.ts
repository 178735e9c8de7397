import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Vitest's order (failed first, then longest by the last run's durations, or largest file when
 * there is no last run, as on a fresh clone in CI), with the end-to-end files moved to the front:
 * they are the longest (real processes, outages, crash loops), and with several files at a time
 * the run ends soonest when the longest start first rather than last.
 */
export default class EndToEndFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const e2e = (file: TestSpecification): boolean => file.moduleId.endsWith('.e2e.spec.ts');
    return [...sorted.filter(e2e), ...sorted.filter((file) => !e2e(file))];
  }
}
