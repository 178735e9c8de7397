import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../monitoring/metrics.js';
import type { ReadModelVersion, ReadModelWatch } from '../projections/read-model-watch.js';
import { readCache } from './read-cache.js';

/**
 * The cache's rule (ADR 009, ADR 027): an answer stays while its read model holds the same rows —
 * a checkpoint moved over events the read model does not handle keeps it; a change of its rows
 * (even one that leaves the checkpoint where it was: an archive run) or of its generation drops it. The watch is a stand-in whose version the test sets.
 */
describe('read-model answer cache: emptied only when the read model changed', () => {
  it('keeps answers across a checkpoint that changed nothing, drops them on a change', async () => {
    let current: ReadModelVersion | undefined;
    const watch = { version: () => current } as unknown as ReadModelWatch;
    const fastify = Fastify();
    await fastify.register(readCache, {
      watch,
      projections: { knownCheckpoint: () => undefined },
      maxBytes: 1 << 20,
      metrics: new Metrics(),
    });
    let runs = 0;
    fastify.get('/things', { config: { readModel: 'things' } }, () => ({ runs: ++runs }));
    await fastify.ready();
    const read = async (query = '') => {
      const response = await fastify.inject({ method: 'GET', url: `/things${query}` });
      return [response.headers['x-qcat-read-cache'], response.json<{ runs: number }>().runs];
    };
    const version = (
      checkpoint: bigint,
      changed: bigint,
      generation = 1,
      rows = Number(changed),
    ): ReadModelVersion => ({ name: 'things', generation, checkpoint, changed, rows });

    current = version(10n, 10n);
    expect(await read()).toEqual(['miss', 1]);
    expect(await read()).toEqual(['hit', 1]);
    expect(await read('?minPosition=10')).toEqual(['miss', 2]);
    // The log moved on over events the read model does not handle: the same rows.
    current = version(20n, 10n);
    expect(await read()).toEqual(['hit', 1]);
    expect(await read('?minPosition=10')).toEqual(['hit', 2]);
    // Its rows changed.
    current = version(30n, 30n);
    expect(await read()).toEqual(['miss', 3]);
    expect(await read()).toEqual(['hit', 3]);
    // Its rows moved to the archive (ADR 032): a change notice, the checkpoint where it was.
    current = version(30n, 30n, 1, 31);
    expect(await read()).toEqual(['miss', 4]);
    expect(await read()).toEqual(['hit', 4]);
    // A rebuild switched the generation.
    current = version(30n, 30n, 2);
    expect(await read()).toEqual(['miss', 5]);
    await fastify.close();
  });
});
