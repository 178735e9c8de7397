import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { transform } from 'esbuild';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The product compiled to JavaScript for this run ('' when not built: then tsx). */
    qcatBuild: string;
  }
}

const root = new URL('../..', import.meta.url).pathname;

/**
 * The specs that run `qcat` as a real process (serve, CLI commands) start it dozens of times a
 * run. Under `--import tsx` each start costs about twice the CPU of plain JavaScript (the loader's
 * hooks and transforms), so the integration tier compiles the product once per run: every file of
 * tsconfig.build.json's folders, transformed by esbuild (what tsx itself uses, same settings:
 * ES2023, verbatim module syntax), with inline source maps, into a temporary folder beside a link
 * to node_modules. Not for the fixture runs (QCAT_TEST_FIXTURES=1): they start no qcat.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  if (process.env['QCAT_TEST_FIXTURES'] === '1') {
    project.provide('qcatBuild', '');
    return () => undefined;
  }
  const out = mkdtempSync(join(tmpdir(), 'qcat-test-build-'));
  await buildQcat(out);
  project.provide('qcatBuild', out);
  return () => {
    rmSync(out, { recursive: true, force: true });
  };
}

async function buildQcat(out: string): Promise<void> {
  const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
  };
  const sources = include.flatMap((folder) =>
    readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
      .filter((file) => !file.endsWith('.d.ts') && !file.includes('node_modules'))
      .map((file) => join(folder, file)),
  );
  await Promise.all(
    sources.map(async (source) => {
      const path = join(root, source);
      const { code } = await transform(readFileSync(path, 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: 'node20',
        sourcefile: path,
        sourcemap: 'inline',
        tsconfigRaw: { compilerOptions: { target: 'ES2023', verbatimModuleSyntax: true } },
      });
      const target = join(out, source.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(target), { recursive: true });
      await writeFile(target, code);
    }),
  );
  await writeFile(join(out, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'), 'dir');
}

/**
 * Node's arguments to run `qcat <args>` as a process, by absolute paths (any working folder): the
 * run's build when there is one, else the sources through tsx's loader (a spec run outside the
 * integration tier).
 */
export function qcatNodeArgs(...args: string[]): string[] {
  const build = inject('qcatBuild') as string | undefined;
  return build
    ? ['--enable-source-maps', join(build, 'ops/cli.js'), ...args]
    : [
        '--import',
        join(root, 'node_modules/tsx/dist/loader.mjs'),
        join(root, 'ops/cli.ts'),
        ...args,
      ];
}
