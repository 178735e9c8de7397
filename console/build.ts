import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Bundles the web console (ADR 023) into dist/console: one ES module with Preact and
 * lightweight-charts inside, the page and its stylesheet beside it. `npm run build` and the
 * integration tests' setup run it; QCAT serves the folder at /console/ (api/console.ts).
 */
export async function buildConsole(options: { quiet?: boolean } = {}): Promise<string> {
  const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
  const out = here('../dist/console/');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [here('src/main.tsx')],
    outfile: `${out}console.js`,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'linked',
    logLevel: options.quiet ? 'error' : 'info',
    tsconfig: here('tsconfig.json'),
  });
  for (const file of ['index.html', 'console.css'])
    await copyFile(here(`static/${file}`), `${out}${file}`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
