import { defineConfig } from 'vitest/config';

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
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: only(['**/*.unit.spec.ts']),
          exclude,
        },
      },
      {
        extends: true,
        test: {
          name: 'int',
          include: only(['**/*.int.spec.ts', '**/*.e2e.spec.ts']),
          exclude,
          globalSetup: [
            'test/support/environment-setup.ts',
            'test/support/postgres-global-setup.ts',
            'test/support/console-build-setup.ts',
          ],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
