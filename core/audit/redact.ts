import type { JsonValue } from '../eventstore/event-store.js';

/** What a redacted value reads as. */
export const REDACTED = '[redacted]';

/**
 * Member names whose values are secrets or stand-ins for them (API keys carry `secretHash`).
 * Matched case-insensitively against the whole name.
 */
const SECRET_NAMES =
  /^(secret|secrethash|secretkey|apisecret|password|passwordhash|token|privatekey)$/i;

/**
 * A copy of `value` with every secret member replaced by `[redacted]`, at any depth. The audit API
 * passes all event data, metadata and folded state through this before it leaves the process.
 */
export function redactSecrets(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const copy: { [key: string]: JsonValue } = {};
  for (const [key, member] of Object.entries(value)) {
    // defineProperty, not assignment: a member named __proto__ stays a member.
    Object.defineProperty(copy, key, {
      value: SECRET_NAMES.test(key) ? REDACTED : redactSecrets(member),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
