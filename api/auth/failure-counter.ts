import type { FastifyRequest } from 'fastify';

/** Failed authentications per client address in the current minute. */
export class FailureCounter {
  private window = 0;
  private readonly counts = new Map<string, number>();

  constructor(private readonly limit: number) {}

  private roll(): void {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.window) {
      this.window = minute;
      this.counts.clear();
    }
  }

  blocked(address: string): boolean {
    this.roll();
    return (this.counts.get(address) ?? 0) >= this.limit;
  }

  record(address: string): void {
    this.roll();
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
  }
}

/** The bearer token of a request: null without an Authorization header, '' for a malformed one. */
export const bearer = (request: FastifyRequest): string | null => {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? '';
};
