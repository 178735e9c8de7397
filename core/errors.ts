/**
 * Errors with a stable `code`. Every layer maps these to its own surface (HTTP problem+json,
 * CLI exit codes) by `code`, never by message text.
 */
export class QcatError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Input that breaks a rule of the API it was given to. Nothing was changed. */
export class ValidationError extends QcatError {}

/** The stream moved on since the caller read it (optimistic concurrency). */
export class ConcurrencyConflictError extends QcatError {
  constructor(
    readonly streamId: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      'CONCURRENCY_CONFLICT',
      `stream '${streamId}' expected revision ${expected} but is at ${actual}`,
      { streamId, expected, actual },
    );
  }
}

export const isQcatError = (error: unknown): error is QcatError => error instanceof QcatError;

/** Whatever was thrown, as an Error (libraries and user code can throw anything). */
export const toError = (thrown: unknown): Error =>
  thrown instanceof Error ? thrown : new Error(String(thrown));
