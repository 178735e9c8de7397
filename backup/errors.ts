/**
 * A backup or restore that cannot go on. The message is the whole answer for an operator: it names
 * the file (or backup) and the reason, and the CLI prints it without a stack trace.
 */
export class BackupError extends Error {
  constructor(
    message: string,
    /** The file or folder at fault, when there is one. */
    readonly file?: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}
