import type pg from 'pg';
import { v5 as uuidv5 } from 'uuid';
import type { Capability } from '../core/capabilities/capabilities.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import {
  type CommandResult,
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
} from '../core/commands/idempotency.js';
import { ConcurrencyConflictError, isQcatError } from '../core/errors.js';
import { decisionStream, type AutomationDecisionEvent } from '../core/capabilities/decisions.js';
import type { EventStore, RecordedEvent } from '../core/eventstore/event-store.js';
import type { ProjectionTarget } from '../projections/projection-runner.js';
import type { AutomationGate } from './gate.js';
import {
  actorOf,
  automationActor,
  registryName,
  type Intent,
  type ProcessManager,
} from './process-manager.js';

/**
 * What became of one intent: issued, refused by its aggregate, held by the gate (kill switch,
 * HALTED, policy), or already issued before.
 */
export interface Outcome {
  manager: string;
  result: 'acted' | 'refused' | 'held' | 'repeated';
  streamId: string;
  command: string;
  cause: string;
  /** The refusal's code and message. */
  reason?: string;
}

interface JournalEntry {
  result: Outcome['result'];
  detail?: string;
  written?: CommandResult;
  causePosition?: bigint | undefined;
}

/** Namespace of command ids derived from (manager, cause, intent key). */
const COMMAND_ID_NAMESPACE = '0c6f3b1e-8e2a-4c36-b0d5-2f4f6a9d7e11';

/**
 * Feeds one process manager from the log, through the same runner as read models
 * (projections/projection-runner.ts): checkpoint in the registry after each batch, commands
 * keyed by their cause, so a batch run twice (crash before its checkpoint) issues nothing twice.
 */
export class ProcessManagerTarget implements ProjectionTarget {
  readonly name: string;
  private readonly handles: ReadonlySet<string>;

  constructor(
    private readonly pool: pg.Pool,
    readonly manager: ProcessManager,
    private readonly commands: CommandHandler,
    private readonly options: {
      /** Records refusals and holds (core/capabilities/decisions.ts); without it they are only counted. */
      eventStore?: EventStore;
      /** Consulted before a capability's intents are issued. */
      gate?: AutomationGate;
      onOutcome?: (outcome: Outcome) => void;
      /** Called each time the manager decides (a handled event, a tick): its evaluations. */
      onEvaluation?: (manager: string) => void;
    } = {},
  ) {
    this.name = registryName(manager.name);
    this.handles = new Set(manager.handles);
  }

  async checkpoint(): Promise<bigint> {
    const { rows } = await this.pool.query<{ checkpoint: string }>(
      'SELECT checkpoint FROM qcat_projections WHERE name = $1',
      [this.name],
    );
    return BigInt(rows[0]?.checkpoint ?? 0);
  }

  async apply(events: readonly RecordedEvent[]): Promise<bigint> {
    const last = events.at(-1);
    if (!last) return this.checkpoint();
    for (const event of events) {
      if (!this.handles.has(event.type)) continue;
      const intents = await this.manager.react(event);
      this.options.onEvaluation?.(this.manager.name);
      await this.issue(
        intents,
        event.eventId,
        event.metadata.correlationId ?? event.eventId,
        event.position,
      );
    }
    await this.pool.query(
      `UPDATE qcat_projections SET checkpoint = $2, error_position = NULL, error_message = NULL,
       error_at = NULL, updated_at = now() WHERE name = $1`,
      [this.name, last.position],
    );
    return last.position;
  }

  /** A tick's intents, caused by its slot: each slot acts once, whoever leads when it comes. */
  async tick(now: Date): Promise<void> {
    if (!this.manager.tick) return;
    const tick = await this.manager.tick(now);
    // A tick that answers nothing had nothing to decide (its slot done, or switched off).
    if (tick) this.options.onEvaluation?.(this.manager.name);
    if (!tick || tick.intents.length === 0) return;
    const cause = `tick:${this.manager.name}:${tick.slot}`;
    await this.issue(tick.intents, cause, cause);
  }

  /**
   * Issues intents in order. A refusal (a QcatError from the aggregate) and a hold (the gate) are
   * outcomes, recorded as events, not failures: the cause is handled. Conflicts and
   * infrastructure errors throw, and the runner tries the batch again later; the keys make the
   * retry write each command, and each record, once.
   */
  private async issue(
    intents: readonly Intent[],
    cause: string,
    correlationId: string,
    causePosition?: bigint,
  ): Promise<void> {
    // One look at the gate per capability and cause: the manager's, or the intent's own.
    const checked = new Map<Capability, Promise<string | undefined>>();
    const gate = (capability: Capability | undefined): Promise<string | undefined> => {
      if (!capability || !this.options.gate) return Promise.resolve(undefined);
      let answer = checked.get(capability);
      if (!answer) checked.set(capability, (answer = this.options.gate.check(capability)));
      return answer;
    };
    for (const [index, intent] of intents.entries()) {
      const held = await gate(intent.capability ?? this.manager.capability);
      const key = `${cause}:${intent.key ?? String(index)}`;
      const outcome = {
        manager: this.manager.name,
        streamId: intent.streamId,
        command: typeof intent.command['type'] === 'string' ? intent.command['type'] : 'command',
        cause,
      };
      const journal = (entry: JournalEntry): Promise<void> =>
        this.journal({ ...outcome, key, causePosition, ...entry });
      if (held) {
        await this.record('AutomationActionHeld', key, { ...outcome, reason: held }, correlationId);
        await journal({ result: 'held', detail: held });
        continue;
      }
      try {
        const result = await intent.issue(this.commands, {
          actor: actorOf(this.manager),
          commandId: uuidv5(`${this.manager.name}:${key}`, COMMAND_ID_NAMESPACE),
          causationId: cause,
          correlationId,
          idempotencyKey: key,
        });
        this.notify({ ...outcome, result: 'acted' });
        await journal({ result: 'acted', written: result });
      } catch (error) {
        if (error instanceof IdempotencyKeyReusedError) {
          // Decided differently the first time round (what it read has moved on): it acted then.
          this.notify({ ...outcome, result: 'repeated' });
          await journal({ result: 'repeated' });
          continue;
        }
        if (
          error instanceof ConcurrencyConflictError ||
          error instanceof IdempotencyInProgressError ||
          !isQcatError(error)
        )
          throw error;
        const reason = `${error.code}: ${error.message}`;
        await this.record('AutomationActionRefused', key, { ...outcome, reason }, correlationId);
        await journal({ result: 'refused', detail: reason });
      }
    }
  }

  /**
   * What an intent came to, with its command's result, in `qcat_process_outcomes` (migration 15):
   * read by whoever reports a manager's effect (the approval API reads the flow's). The first
   * outcome of a key stands: a cause handled again after a crash adds nothing.
   */
  private async journal(
    entry: JournalEntry & { streamId: string; command: string; cause: string; key: string },
  ): Promise<void> {
    await this.pool.query(
      `INSERT INTO qcat_process_outcomes (manager, cause, key, cause_position, stream_id, command,
                                          result, detail, events, revision, position)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (manager, cause, key) DO NOTHING`,
      [
        this.manager.name,
        entry.cause,
        entry.key,
        entry.causePosition ?? null,
        entry.streamId,
        entry.command,
        entry.result,
        entry.detail ?? null,
        entry.written?.eventCount ?? null,
        entry.written?.nextExpectedRevision ?? null,
        entry.written?.position ?? null,
      ],
    );
  }

  private notify(outcome: Outcome): void {
    this.options.onOutcome?.(outcome);
  }

  /** A refusal or hold as an event, with an id derived from the intent's key (written once). */
  private async record(
    type: AutomationDecisionEvent['type'],
    key: string,
    data: AutomationDecisionEvent['data'],
    correlationId: string,
  ): Promise<void> {
    this.notify({ ...data, result: type === 'AutomationActionHeld' ? 'held' : 'refused' });
    await this.options.eventStore?.appendToStream(
      decisionStream(this.manager.name),
      [
        {
          eventId: uuidv5(`${this.manager.name}:${key}:${type}`, COMMAND_ID_NAMESPACE),
          type,
          data,
          metadata: {
            actor: automationActor(this.manager.name),
            causationId: data.cause,
            correlationId,
          },
        },
      ],
      { expectedRevision: 'any' },
    );
  }
}
