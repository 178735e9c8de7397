/** Cron expressions of the backup schedule (croner), always evaluated in UTC. */
import { Cron } from 'croner';

export const DEFAULT_SCHEDULE = '0 2 * * *';

/** Why `expression` is not a cron expression croner accepts; undefined when it is. */
export function scheduleProblem(expression: string): string | undefined {
  try {
    new Cron(expression, { paused: true, timezone: 'UTC' }).stop();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The next run after `from`, or null if the expression never fires again. */
export function nextRun(expression: string, from: Date = new Date()): Date | null {
  const cron = new Cron(expression, { paused: true, timezone: 'UTC' });
  try {
    return cron.nextRun(from);
  } finally {
    cron.stop();
  }
}
