import { defineConfig } from 'vitest/config';
import EndToEndInterleaved from './test/support/sequencer.js';

/**
 * QCAT_TEST_FIXTURES=1 runs the fixture specs under test/fixtures/ instead of the suite: specs
 * that fail on purpose, run by test/exit-codes.e2e.spec.ts as a child `vitest` to check the test
 * command's exit code. Otherwise they are never collected.
 */
const fixtures = process.env['QCAT_TEST_FIXTURES'] === '1';
const exclude = ['node_modules/**', 'dist/**', ...(fixtures ? [] : ['test/fixtures/**'])];
const only = (globs: string[]): string[] =>
  fixtures ? globs.map((glob) => `test/fixtures/${glob}`) : globs;

export default defineConfig({
  test: {
    reporters: ['default'],
    // Files run in parallel, three at a time (vitest's default on two cores is one). Integration
    // files spend most of their time waiting (on PostgreSQL, on processes they start, on outages
    // they stage), and each works in its own database, Redis prefix and ports. Not more: each
    // QCAT server holds about 15 PostgreSQL connections, and the server allows 100. ADR 020.
    maxWorkers: 3,
    sequence: { sequencer: EndToEndInterleaved },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: only(['**/*.unit.spec.ts']),
          exclude,
          // Unit specs touch no process-wide state (no module mocks, stubs or fake timers), so a
          // worker keeps the modules it imported for its next file instead of importing them
          // again: 26 s -> 15 s for the unit tier, CPU 52 s -> 31 s. A spec that needs such state
          // belongs in a project of its own with `isolate: true` (neither tier is isolated).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'int',
          include: only(['**/*.int.spec.ts', '**/*.e2e.spec.ts']),
          exclude,
          // A worker keeps its modules from one file to the next (imports: 108 s -> 25 s summed
          // over a run). Every file still makes its own databases, Redis prefixes, servers and
          // processes (test/support), and no spec stubs globals or the environment (ADR 020).
          isolate: false,
          globalSetup: [
            'test/support/environment-setup.ts',
            'test/support/postgres-global-setup.ts',
            'test/support/qcat-build.ts',
            'test/support/console-build-setup.ts',
          ],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
