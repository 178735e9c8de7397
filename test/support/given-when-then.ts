import { expect } from 'vitest';
import type { Decider, DomainEvent } from '../../core/decider.js';
import { QcatError } from '../../core/errors.js';

/**
 * Decider tests in given/when/then form: `given(decider, past).when(command).then(expected)` or
 * `.thenRefuses(code)`. The past events are parsed as stored events are, so a test cannot hand the
 * decider something the log could not hold.
 */
export function given<State, Command, Event extends DomainEvent>(
  decider: Decider<State, Command, Event>,
  past: readonly Event[],
) {
  const state = past.reduce(
    (folded, event) => decider.evolve(folded, decider.parseEvent(event)),
    decider.initialState(),
  );
  return {
    state,
    when(command: Command) {
      const run = (): Event[] => decider.decide(command, state);
      return {
        then(expected: readonly Event[]): Event[] {
          const events = run();
          expect(events).toEqual(expected);
          for (const event of events) decider.parseEvent(event);
          return events;
        },
        thenRefuses(code: string, message?: RegExp): QcatError {
          let refusal: unknown;
          try {
            run();
          } catch (error) {
            refusal = error;
          }
          expect(refusal).toBeInstanceOf(QcatError);
          const error = refusal as QcatError;
          expect(error.code).toBe(code);
          if (message) expect(error.message).toMatch(message);
          return error;
        },
      };
    },
  };
}
