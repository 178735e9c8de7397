import { describe, expect, it } from 'vitest';
import { REDACTED, redactSecrets } from './redact.js';

describe('redactSecrets', () => {
  it('replaces secret members at any depth and leaves the rest as it was', () => {
    const value = {
      keyId: 'k1',
      secretHash: 'scrypt$abc',
      nested: [{ Password: 'p', token: 't', tokens: 3, note: 'secret is a word here' }],
    };
    expect(redactSecrets(value)).toEqual({
      keyId: 'k1',
      secretHash: REDACTED,
      nested: [{ Password: REDACTED, token: REDACTED, tokens: 3, note: 'secret is a word here' }],
    });
    // A copy: the original is untouched.
    expect(value.secretHash).toBe('scrypt$abc');
  });

  it('keeps a member named __proto__ a plain member', () => {
    const parsed = JSON.parse('{"__proto__":{"secret":"s","x":1}}') as Record<string, unknown>;
    const redacted = redactSecrets(parsed as never) as Record<string, unknown>;
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype);
    expect(Object.hasOwn(redacted, '__proto__')).toBe(true);
    expect(JSON.stringify(redacted)).toBe('{"__proto__":{"secret":"[redacted]","x":1}}');
  });

  it('passes scalars through', () => {
    expect(redactSecrets(null)).toBeNull();
    expect(redactSecrets('secretHash')).toBe('secretHash');
    expect(redactSecrets(4)).toBe(4);
  });
});
