import { QcatError } from '../errors.js';

/** What a command wrote: the answer an API gives and a retried request gets again. */
export interface CommandResult {
  streamId: string;
  /** Revision of the stream's last event after the command (-1 for an empty stream). */
  nextExpectedRevision: bigint;
  /** Global position of the last event written; read models that reach it show the command. */
  position: bigint;
  /** How many events the command wrote (0 when it changed nothing). */
  eventCount: number;
  /** True when this is the first result again, for a retry with the same idempotency key. */
  replayed?: boolean;
}

export type IdempotencyClaim =
  | { status: 'claimed' }
  | { status: 'completed'; result: CommandResult }
  | { status: 'mismatch' }
  | { status: 'in_progress' };

/**
 * Remembers which idempotency keys were used, for which command and with what result. A key is
 * claimed before the command runs, completed with its result, or released when the command fails
 * so the client may try again. A claim whose process died is taken over after a lease.
 */
export interface IdempotencyStore {
  claim(key: string, commandHash: string): Promise<IdempotencyClaim>;
  complete(key: string, result: CommandResult): Promise<void>;
  release(key: string): Promise<void>;
}

export class IdempotencyKeyReusedError extends QcatError {
  constructor(key: string) {
    super(
      'IDEMPOTENCY_KEY_REUSED',
      `idempotency key '${key}' was already used for a different command`,
      { key },
    );
  }
}

export class IdempotencyInProgressError extends QcatError {
  constructor(key: string) {
    super(
      'IDEMPOTENCY_IN_PROGRESS',
      `a command with idempotency key '${key}' is still running; retry shortly`,
      {
        key,
      },
    );
  }
}

/** For unit tests: the same contract without a database. */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, { hash: string; result?: CommandResult }>();

  claim(key: string, commandHash: string): Promise<IdempotencyClaim> {
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { hash: commandHash });
      return Promise.resolve({ status: 'claimed' });
    }
    if (entry.hash !== commandHash) return Promise.resolve({ status: 'mismatch' });
    return Promise.resolve(
      entry.result ? { status: 'completed', result: entry.result } : { status: 'in_progress' },
    );
  }

  complete(key: string, result: CommandResult): Promise<void> {
    const entry = this.entries.get(key);
    if (entry) entry.result = result;
    return Promise.resolve();
  }

  release(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }
}
