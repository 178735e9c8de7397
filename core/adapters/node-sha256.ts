import * as crypto from 'node:crypto';
import type { Sha256Hex } from '../eventstore/sha256.js';

// crypto.hash (Node 20.12+) hashes in one call, without a Hash object: about 2.5× faster for the
// short texts of the hash chain. Older Node 20 releases fall back to createHash.
const oneShot = (crypto as { hash?: typeof crypto.hash }).hash;

/** SHA-256 of a string's UTF-8 bytes as lower-case hex, natively: what adapters and servers use. */
export const nodeSha256: Sha256Hex = oneShot
  ? (text) => oneShot('sha256', text, 'hex')
  : (text) => crypto.createHash('sha256').update(text).digest('hex');
