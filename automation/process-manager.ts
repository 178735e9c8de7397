import type { CommandContext, CommandHandler } from '../core/commands/command-handler.js';
import type { CommandResult } from '../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../core/decider.js';
import type { JsonObject, RecordedEvent } from '../core/eventstore/event-store.js';
import type { Capability } from '../core/capabilities/capabilities.js';

/**
 * One command a process manager wants issued, on one stream. `key` tells apart the intents one
 * cause produces (default: their index); with the cause it makes the command's idempotency key,
 * so handling the same cause again after a crash writes nothing new (ADR 010).
 */
export interface Intent {
  streamId: string;
  command: JsonObject;
  key?: string;
  /**
   * The capability this intent serves, when it is not the manager's: the gate checks it for this
   * intent alone (a manager that also bridges human decisions gates only its own proposals).
   */
  capability?: Capability;
  /** Runs the command through the handler; made by `intent`, which keeps the decider's types. */
  issue(commands: CommandHandler, context: CommandContext): Promise<CommandResult>;
}

export function intent<State, Command extends JsonObject, Event extends DomainEvent>(
  decider: Decider<State, Command, Event>,
  streamId: string,
  command: Command,
  key?: string,
  capability?: Capability,
): Intent {
  return {
    streamId,
    command,
    ...(key === undefined ? {} : { key }),
    ...(capability === undefined ? {} : { capability }),
    issue: (commands, context) => commands.handle(decider, streamId, command, context),
  };
}

/** A scheduled cause: `slot` names the period it belongs to (e.g. `2026-12-07T02`), acted on once. */
export interface Tick {
  slot: string;
  intents: Intent[];
}

/**
 * A consumer of the log that issues commands: the approval flow, the backtest runner and every
 * automation capability. It reads what it needs, then decides with a pure function (tested
 * given/when/then); the runner issues what it decides as `automation:<name>`, with the causing
 * event as causation (docs/adr/010-process-managers.md).
 */
export interface ProcessManager {
  /** kebab-case; the actor is `automation:<name>` unless `actor` says otherwise. */
  name: string;
  /**
   * Who its commands are issued as, when not `automation:<name>`: the approval flow and the backtest
   * runner keep the actors they had as projections (`system:approval-flow`, `system:backtest-runner`).
   */
  actor?: string;
  /**
   * The automation capability it serves: the gate (kill switch, HALTED, the policy's switch)
   * holds its commands. Absent for the approval flow and the backtest runner, which always run.
   */
  capability?: Capability;
  /** Capabilities some of its intents serve (`Intent.capability`): listed under them in the API. */
  serves?: readonly Capability[];
  /** Event types it reacts to; the runner moves past every other event without calling `react`. */
  handles: readonly string[];
  react(event: RecordedEvent): Promise<Intent[]>;
  /** Optional: called by the leader every `tickMs`, for schedules and rolling checks. */
  tick?(now: Date): Promise<Tick | undefined>;
  tickMs?: number;
}

export const automationActor = (name: string): string => `automation:${name}`;

/** The actor a manager's commands are issued as. */
export const actorOf = (manager: Pick<ProcessManager, 'name' | 'actor'>): string =>
  manager.actor ?? automationActor(manager.name);

/** Its row in the registry of log consumers (`qcat_projections`, kind `process`). */
export const registryName = (name: string): string => `automation.${name}`;
