import type { DomainEvent } from '../decider.js';

/**
 * What automation decided not to do, and why: the actions it takes are the commands' own events
 * (actor `automation:<name>`, causation = their cause); these record the others, so the audit
 * trail also answers "why did automation not act?". One stream per process manager.
 */
export const decisionStream = (manager: string): string => `autodecision-${manager}`;

type Skipped = {
  manager: string;
  /** The causing event's id, or `tick:<manager>:<slot>`. */
  cause: string;
  streamId: string;
  command: string;
  reason: string;
};

export type AutomationDecisionEvent =
  /** The aggregate refused the command (its code and message in `reason`). */
  | DomainEvent<'AutomationActionRefused', Skipped>
  /** Not issued: the kill switch, a HALTED portfolio or the policy held it (`reason` says which). */
  | DomainEvent<'AutomationActionHeld', Skipped>;
