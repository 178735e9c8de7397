import { describe, expect, it } from 'vitest';
import { AGGREGATES, aggregateOf, foldEvents } from './aggregates.js';
import type { RecordedEvent } from './eventstore/event-store.js';

const recorded = (type: string, data: RecordedEvent['data'], revision: bigint): RecordedEvent => ({
  eventId: `00000000-0000-4000-8000-00000000000${revision.toString()}`,
  type,
  data,
  metadata: { actor: 'u' },
  streamId: 'apikey-k1',
  revision,
  position: revision + 1n,
  recordedAt: new Date(0),
  hash: '0'.repeat(64),
});

describe('aggregate registry', () => {
  it('finds the aggregate of a stream by its category', () => {
    expect(aggregateOf('apikey-0123456789abcdef')).toBe(AGGREGATES['apikey']);
    expect(aggregateOf('widget-1')).toBeUndefined();
    // Only own entries: a category that names an Object.prototype member is not an aggregate.
    expect(aggregateOf('constructor-1')).toBeUndefined();
  });

  it('folds an API key stream, and its state holds no secret', () => {
    const apiKey = AGGREGATES['apikey']!;
    const state = foldEvents(apiKey, [
      recorded('ApiKeyIssued', { keyId: 'k1', name: 'n', role: 'trader', secretHash: 's1' }, 0n),
      recorded('ApiKeyRotated', { keyId: 'k1', secretHash: 's2' }, 1n),
      recorded('ApiKeyRevoked', { keyId: 'k1', reason: 'r' }, 2n),
    ]);
    expect(state).toEqual({ status: 'revoked', name: 'n', role: 'trader' });
    expect(JSON.stringify(state)).not.toMatch(/s1|s2|secret/);
    expect(foldEvents(apiKey, [])).toEqual({ status: 'none' });
  });

  it('names the event it cannot fold', () => {
    expect(() => foldEvents(AGGREGATES['apikey']!, [recorded('ApiKeyExploded', {}, 0n)])).toThrow(
      expect.objectContaining({ code: 'UNFOLDABLE_EVENT' }) as Error,
    );
  });
});
