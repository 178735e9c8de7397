import { describe, expect, it } from 'vitest';
import { assertInDomain, instantMs, instantProblem, outOfDomain } from './domain-bounds.js';
import { ValidationError } from './errors.js';

describe('domain bounds', () => {
  it('accepts ISO instants with a time zone from 1970 to 9999', () => {
    for (const value of [
      '1970-01-01T00:00:00Z',
      '2025-06-01T12:30:00.123+02:00',
      '9999-12-31T23:59:59.999Z',
    ])
      expect(instantProblem(value), value).toBeNull();
  });

  it('refuses instants outside the range, without a zone or not real', () => {
    for (const value of [
      '0000-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '+010000-01-01T00:00:00.000Z',
      '2025-01-01T00:00:00',
      '2025-13-01T00:00:00Z',
      'yesterday',
    ])
      expect(instantProblem(value), value).not.toBeNull();
    expect(() => instantMs('from', '0000-01-01T00:00:00Z')).toThrow(ValidationError);
    expect(() => instantMs('from', '0000-01-01T00:00:00Z')).toThrow(/^from: .*outside/);
  });

  it('finds non-finite numbers, instant strings and epoch ms under instant names out of range', () => {
    expect(
      outOfDomain({
        fine: { time: 1_700_000_000_000, at: 5, windowMs: -1, text: 'on 0000-01-01T00:00Z' },
        price: Number.POSITIVE_INFINITY,
        from: '0000-01-01T00:00:00.000Z',
        nested: [{ openedAt: -1 }, { since: 1e300 }],
      }).sort(),
    ).toEqual([
      "data.from '0000-01-01T00:00:00.000Z' is outside the range between 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z",
      'data.nested[0].openedAt (epoch ms -1) is outside the range between 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z',
      'data.nested[1].since (epoch ms 1e+300) is outside the range between 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z',
      'data.price is not a finite number',
    ]);
    expect(() => {
      assertInDomain([{ type: 'X', data: { time: -5 } }]);
    }).toThrow(/OUT_OF_DOMAIN|X\.time/);
    expect(() => {
      assertInDomain([{ type: 'X', data: { time: 5 } }]);
    }).not.toThrow();
  });
});
