import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph between QCAT's folders (ADR 027), read with the TypeScript compiler's own
 * pre-processor: every `import`, `import type`, `export … from` and `import()` of a relative path
 * in a source file (specs, test/ and bench/ are not sources: they may import anything). A folder
 * is a top-level directory, except that `core/adapters/` counts apart from `core/`.
 */
export const SOURCE_FOLDERS = [
  'api',
  'automation',
  'backup',
  'console',
  'core',
  'monitoring',
  'ops',
  'projections',
] as const;

/** One import from a file in one folder of a file in another. */
export interface FolderEdge {
  from: string;
  to: string;
  /** `file → imported path`, for the message. */
  via: string;
}

const isSource = (name: string): boolean =>
  /\.tsx?$/.test(name) && !name.endsWith('.d.ts') && !/\.spec\.tsx?$/.test(name);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.'))
      return [];
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : isSource(entry.name) ? [path] : [];
  });
}

/** `core/adapters` for files under it, else the top-level directory; undefined outside. */
export function folderOf(root: string, file: string): string | undefined {
  const parts = relative(root, file).split(sep);
  const top = parts[0];
  if (!top || !(SOURCE_FOLDERS as readonly string[]).includes(top)) return undefined;
  return top === 'core' && parts[1] === 'adapters' ? 'core/adapters' : top;
}

/**
 * Every edge between two folders. `extra` adds (or replaces) files by path relative to `root`,
 * to check a variant of the tree without writing it.
 */
export function folderEdges(root: string, extra: Record<string, string> = {}): FolderEdge[] {
  const texts = new Map<string, string>();
  for (const folder of SOURCE_FOLDERS)
    for (const file of sourceFiles(join(root, folder))) texts.set(file, readFileSync(file, 'utf8'));
  for (const [path, text] of Object.entries(extra)) texts.set(resolve(root, path), text);
  const edges: FolderEdge[] = [];
  for (const [file, text] of texts) {
    const from = folderOf(root, file);
    if (!from) continue;
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const to = folderOf(root, resolve(dirname(file), fileName));
      if (to && to !== from) edges.push({ from, to, via: `${relative(root, file)} → ${fileName}` });
    }
  }
  return edges;
}

/**
 * The cycles of the folder graph: per set of folders that reach each other, their names and one
 * cycle through them, with one import for each step (none: the graph is a DAG). Found as the strongly connected components with more
 * than one folder (Tarjan), each walked once from its first folder.
 */
export function folderCycles(edges: readonly FolderEdge[]): string[][] {
  const next = new Map<string, Map<string, string>>();
  for (const edge of edges) {
    const out = next.get(edge.from) ?? new Map<string, string>();
    if (!out.has(edge.to)) out.set(edge.to, edge.via);
    next.set(edge.from, out);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    for (const to of next.get(node)?.keys() ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (stack.includes(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop()!;
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => describeCycle(component, next));
}

/** A component's folders, then one cycle through it as `a → b (file → path)` steps. */
function describeCycle(component: string[], next: Map<string, Map<string, string>>): string[] {
  const inside = new Set(component);
  const start = component[0]!;
  // Breadth-first from start back to start, inside the component.
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of next.get(node)?.keys() ?? []) {
      if (!inside.has(to) || previous.has(to)) continue;
      previous.set(to, node);
      if (to === start) queue.length = 0;
      else queue.push(to);
    }
  }
  const path = [start];
  for (let node = previous.get(start)!; node !== start; node = previous.get(node)!)
    path.unshift(node);
  path.unshift(start);
  return [
    `folders in one cycle: ${component.join(', ')}`,
    ...path
      .slice(0, -1)
      .map((from, i) => `${from} → ${path[i + 1]!} (${next.get(from)!.get(path[i + 1]!)!})`),
  ];
}
