/**
 * A small seeded pseudo-random source for the synthetic market: xoshiro128** (Blackman and
 * Vigna), seeded through cyrb128 and splitmix32 from a text key, with Box–Muller normals. Pure
 * 32-bit integer arithmetic, so a key gives the same sequence on every platform and Node version.
 */

/** cyrb128: four 32-bit words from a string (public domain, bryc). */
function cyrb128(key: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < key.length; i++) {
    const k = key.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** splitmix32 step: spreads a word so that no seed leaves xoshiro's state all zero. */
function splitmix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const TWO_POW_32 = 4294967296;

/** Where a stream is: its four state words and the spare normal of Box–Muller, if one waits. */
export type RandomState = { words: [number, number, number, number]; spare: number | null };

export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0;
  private hasSpare = false;

  /** A stream determined by `key` alone (e.g. `"42:BTCUSDT"`). */
  constructor(key: string) {
    const [a, b, c, d] = cyrb128(key);
    this.s0 = splitmix32(a);
    this.s1 = splitmix32(b ^ this.s0);
    this.s2 = splitmix32(c ^ this.s1);
    this.s3 = splitmix32(d ^ this.s2);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Where the stream is now: `Random.resume` of it draws exactly what this one draws next. */
  state(): RandomState {
    return {
      words: [this.s0, this.s1, this.s2, this.s3],
      spare: this.hasSpare ? this.spare : null,
    };
  }

  /** The stream from a saved `state()`. */
  static resume(state: RandomState): Random {
    const random = new Random('');
    [random.s0, random.s1, random.s2, random.s3] = state.words;
    random.hasSpare = state.spare !== null;
    random.spare = state.spare ?? 0;
    return random;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1): never 0, so `Math.log(uniform())` is finite. */
  uniform(): number {
    return (this.nextUint32() + 0.5) / TWO_POW_32;
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    this.hasSpare = true;
    return radius * Math.cos(angle);
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
