import { v5 as uuidv5 } from 'uuid';

/** What an idempotency key may be (the `Idempotency-Key` header, `--idempotency-key`). */
export const IDEMPOTENCY_KEY = /^[\w.:-]{8,128}$/;

const ID_NAMESPACE = '0d6f2a4e-93c1-4b8e-a7d5-2c9e8f1b3a60';

/**
 * The id of what a command creates (a strategy, an approval request, a proposal), derived from
 * who asks, for what and their idempotency key: a retry with the same key names the very same
 * thing, so the decider sees a repeat, not a second one. The API's `newId` and the CLI share it.
 */
export const derivedId = (partyId: string, purpose: string, key: string): string =>
  uuidv5(`${partyId}:${purpose}:${key}`, ID_NAMESPACE);
