import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// The boundary is enforced by lint (eslint.config.mjs); this proves the rule bites. Only that
// rule runs, without type information: building the project's TypeScript program for the typed
// rules took ~10 s of CPU, for a rule that reads import statements.
describe('core/ domain boundary', () => {
  const eslint = new ESLint({
    cwd: new URL('..', import.meta.url).pathname,
    ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
  const messagesFor = async (filePath: string, code: string): Promise<string[]> => {
    const [result] = await eslint.lintText(code, { filePath });
    return (result?.messages ?? [])
      .filter((m) => m.ruleId === 'no-restricted-imports')
      .map((m) => m.message);
  };

  it.each([
    'node:fs',
    'fs',
    'crypto',
    'pg',
    'ioredis',
    'fastify',
    '@eventstore/db-client',
    '../adapters/postgres/migrations.js',
    '../../automation/registry.js',
  ])('refuses an import of %s in domain code', async (module) => {
    const messages = await messagesFor('core/eventstore/read-stream.ts', `import '${module}';\n`);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/core\/ domain code must not/);
  });

  it('refuses an import of automation/ in a read model (ADR 010)', async () => {
    const [result] = await eslint.lintText(`import '../automation/registry.js';\n`, {
      filePath: 'projections/strategies.ts',
    });
    const messages = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports');
    expect(messages).toHaveLength(1);
    expect(messages[0]?.message).toMatch(/projections\/ must not import automation\//);
  });

  it('lets adapters import infrastructure', async () => {
    expect(await messagesFor('core/adapters/postgres/migrations.ts', `import 'pg';\n`)).toEqual([]);
  });
});
