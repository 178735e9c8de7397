import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { tokenFingerprint } from './api-key-secrets.js';

/** How long a key that authenticated keeps working from an address locked out for failures. */
const RECENT_SUCCESS_SECONDS = 3600;

/**
 * Failed authentications per client address and minute, one count for HTTP and WebSocket alike,
 * shared by every process through Redis when it is configured. An address over the limit is
 * refused, except with a key that authenticated successfully in the last hour (from anywhere):
 * someone guessing keys behind the same NAT cannot lock out everyone else's valid keys.
 */
export class FailureCounter {
  private window = 0;
  private readonly counts = new Map<string, number>();
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly shared?: { redis: Redis; prefix: string },
    private readonly now: () => number = Date.now,
  ) {}

  private minute(): number {
    return Math.floor(this.now() / 60_000);
  }

  private roll(): void {
    const minute = this.minute();
    if (minute !== this.window) {
      this.window = minute;
      this.counts.clear();
    }
  }

  private failuresKey(address: string): string {
    return `${this.shared?.prefix ?? ''}authfail:${this.minute().toString()}:${address}`;
  }

  private successKey(token: string): string {
    return `${this.shared?.prefix ?? ''}authok:${tokenFingerprint(token)}`;
  }

  /** True when `address` is locked out and `token` is not a key that worked recently. */
  async refused(address: string, token: string | null): Promise<boolean> {
    if (!(await this.overLimit(address))) return false;
    return token === null || token === '' || !(await this.workedRecently(token));
  }

  async record(address: string): Promise<void> {
    this.roll();
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
    if (!this.shared) return;
    const key = this.failuresKey(address);
    // Without Redis the process's own count stands in (it was counted above).
    await this.shared.redis
      .multi()
      .incr(key)
      .expire(key, 120)
      .exec()
      .catch(() => undefined);
  }

  /** A key authenticated: it keeps working from an address later locked out. */
  async succeeded(token: string): Promise<void> {
    const until = this.now() + RECENT_SUCCESS_SECONDS * 1000;
    this.recent.set(tokenFingerprint(token), until);
    if (this.recent.size > 10_000) this.forgetExpired();
    if (!this.shared) return;
    await this.shared.redis
      .set(this.successKey(token), '1', 'EX', RECENT_SUCCESS_SECONDS)
      .catch(() => undefined);
  }

  private async overLimit(address: string): Promise<boolean> {
    this.roll();
    const local = this.counts.get(address) ?? 0;
    if (local >= this.limit) return true;
    if (!this.shared) return false;
    const shared = await this.shared.redis.get(this.failuresKey(address)).catch(() => null);
    return Number(shared ?? 0) >= this.limit;
  }

  private async workedRecently(token: string): Promise<boolean> {
    const until = this.recent.get(tokenFingerprint(token));
    if (until !== undefined && until > this.now()) return true;
    if (!this.shared) return false;
    return (await this.shared.redis.exists(this.successKey(token)).catch(() => 0)) === 1;
  }

  private forgetExpired(): void {
    const at = this.now();
    for (const [fingerprint, until] of this.recent)
      if (until <= at) this.recent.delete(fingerprint);
  }
}

/** The bearer token of a request: null without an Authorization header, '' for a malformed one. */
export const bearer = (request: FastifyRequest): string | null => {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? '';
};
