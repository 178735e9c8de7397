import { describe, expect, it } from 'vitest';
import { folderCycles, folderEdges } from './support/folder-graph.js';

const root = new URL('..', import.meta.url).pathname;

// ADR 027: the folders import each other without a cycle; the composition root (ops/) builds
// everything and nothing imports it back. This spec keeps it so.
describe('the folder graph', () => {
  const edges = folderEdges(root);

  it('has no cycle', () => {
    expect(folderCycles(edges)).toEqual([]);
  });

  it('has the edges it is drawn with: api/ reaches no further than automation/', () => {
    const from = (folder: string): string[] =>
      [...new Set(edges.filter((e) => e.from === folder).map((e) => e.to))].sort();
    expect(from('core')).toEqual([]);
    expect(from('core/adapters')).toEqual(['core']);
    expect(from('api')).not.toContain('ops');
    expect(from('backup')).not.toContain('ops');
    expect(edges.filter((e) => e.to === 'ops')).toEqual([]);
  });

  it('finds a cycle a route importing the runtime back would make, naming both imports', () => {
    const route = 'api/routes/market.ts';
    const broken = folderEdges(root, {
      [route]: `import type { Runtime } from '../../ops/runtime.js';\nexport type R = Runtime;\n`,
    });
    const cycles = folderCycles(broken);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]?.join('\n')).toMatch(
      /api → ops \(api\/routes\/market\.ts → \.\.\/\.\.\/ops\/runtime\.js\)/,
    );
    expect(cycles[0]?.join('\n')).toMatch(/ops → api \(/);
  });

  it('finds a cycle between two folders that are not the root: backup/ ↔ projections/', () => {
    const broken = folderEdges(root, {
      'projections/x.ts': `export { restore } from '../backup/restore.js';\n`,
    });
    expect(folderCycles(broken).map((cycle) => cycle.map((step) => step.split(' (')[0]))).toEqual([
      [
        'folders in one cycle: backup, monitoring, projections',
        'backup → projections',
        'projections → backup',
      ],
    ]);
  });
});
