import type pg from 'pg';
import {
  approvalStream,
  approvals,
  type ApprovalEvent,
  type Party,
} from '../core/approvals/approval.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { DomainEvent } from '../core/decider.js';
import { QcatError } from '../core/errors.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { JsonObject, RecordedEvent } from '../core/eventstore/event-store.js';
import { riskDeciderOf } from '../core/risk/aggregate.js';
import {
  KILL_SWITCH_STREAM,
  KILL_SWITCH_SUBJECT,
  limitsStream,
  RISK_SCOPE_TYPES,
  tradingStateStream,
  type RiskScope,
} from '../core/risk/common.js';
import {
  strategies,
  strategyStream,
  type StrategyCommand,
  type StrategyEvent,
} from '../core/strategies/strategy.js';
import type { PostgresProjection } from './projection.js';

/** Who the approval flow acts as: it withdraws the requests of a retired strategy as an admin. */
export const APPROVAL_FLOW_ACTOR = 'system:approval-flow';
const FLOW_PARTY: Party = { id: APPROVAL_FLOW_ACTOR, role: 'admin' };

type Step =
  | { target: 'approval'; streamId: string; command: Parameters<typeof approvals.decide>[0] }
  | { target: 'strategy'; streamId: string; command: StrategyCommand }
  | { target: 'risk'; streamId: string; command: JsonObject & { type: string } }
  /** A request the flow cannot apply: recorded as refused. */
  | { target: 'refuse'; streamId: string; command: { type: string }; code: string; detail: string };

const RISK_SUBJECTS = new Set(['risk_limits', 'risk_state', KILL_SWITCH_SUBJECT.type]);

/** `<scopeType>:<id>` of a risk subject as a scope, or undefined. */
function scopeOfSubject(id: string): RiskScope | undefined {
  const colon = id.indexOf(':');
  const type = RISK_SCOPE_TYPES.find((t) => t === id.slice(0, colon));
  return type && colon < id.length - 1 ? { type, id: id.slice(colon + 1) } : undefined;
}

/**
 * An approved risk request → the risk decider's command on its stream (docs/risk.md, approvals).
 * Rejected, withdrawn and expired ones need nothing: the risk streams wait for no request.
 */
function riskSteps(parsed: ApprovalEvent, time: number): Step[] {
  if (parsed.type !== 'ApprovalApproved') return [];
  const { requestId, approvers, kind, subject, payload } = parsed.data;
  const refuse = (streamId: string, type: string, code: string, detail: string): Step[] => [
    { target: 'refuse', streamId, command: { type }, code, detail },
  ];
  if (subject.type === KILL_SWITCH_SUBJECT.type) {
    if (kind !== 'risk_reset' || subject.id !== KILL_SWITCH_SUBJECT.id)
      return refuse(
        KILL_SWITCH_STREAM,
        'ReleaseKillSwitch',
        'INVALID_RISK_REQUEST',
        `a ${kind} request cannot release the kill switch ${subject.id}`,
      );
    return [
      {
        target: 'risk',
        streamId: KILL_SWITCH_STREAM,
        command: { type: 'ReleaseKillSwitch', requestId, approvers, time },
      },
    ];
  }
  const scope = scopeOfSubject(subject.id);
  const limits = subject.type === 'risk_limits';
  const type = limits ? 'ApplyApprovedLimitChange' : 'ResetTradingState';
  if (!scope)
    return refuse(
      `risk-${subject.type}`,
      type,
      'INVALID_SCOPE',
      `${subject.id} is not <scopeType>:<id>`,
    );
  const streamId = limits ? limitsStream(scope) : tradingStateStream(scope);
  if (kind !== (limits ? 'risk_limit_change' : 'risk_reset'))
    return refuse(
      streamId,
      type,
      'INVALID_RISK_REQUEST',
      `a ${kind} request cannot apply to ${subject.type}`,
    );
  if (limits)
    return [
      {
        target: 'risk',
        streamId,
        command: { type, scope, requestId, approvers, changes: payload['changes'] ?? null, time },
      },
    ];
  const to = payload['to'];
  if (to !== undefined && to !== 'ACTIVE' && to !== 'REDUCING')
    return refuse(streamId, type, 'INVALID_RESET', 'a reset leaves the scope ACTIVE or REDUCING');
  return [
    {
      target: 'risk',
      streamId,
      command: { type, scope, requestId, approvers, ...(to === undefined ? {} : { to }), time },
    },
  ];
}

/** What the flow does in answer to one event (nothing for most). */
function stepsFor(event: RecordedEvent): Step[] {
  const domain: DomainEvent = { type: event.type, data: event.data as JsonObject };
  const category = categoryOf(event.streamId);
  const now = event.recordedAt.toISOString();
  if (category === 'strategy') {
    const parsed: StrategyEvent = strategies.parseEvent(domain);
    const subject = { type: 'strategy', id: parsed.data.strategyId };
    const request = (
      requestId: string,
      kind: 'strategy_activation' | 'mode_change' | 'parameter_change',
      requester: Party,
      payload: JsonObject,
      reason: string,
    ): Step[] => [
      {
        target: 'approval',
        streamId: approvalStream(requestId),
        command: {
          type: 'RequestApproval',
          requestId,
          kind,
          subject,
          requester,
          payload,
          reason,
          now,
        },
      },
    ];
    switch (parsed.type) {
      case 'StrategySubmittedForReview':
        return request(
          parsed.data.requestId,
          'strategy_activation',
          parsed.data.requestedBy,
          {},
          'activate the strategy',
        );
      case 'StrategyPromotionRequested':
        return request(
          parsed.data.requestId,
          'mode_change',
          parsed.data.requestedBy,
          { from: 'paper', to: 'live' },
          'promote the strategy from paper to live trading',
        );
      case 'StrategyParameterChangeRequested':
        return request(
          parsed.data.requestId,
          'parameter_change',
          parsed.data.requestedBy,
          { parameters: parsed.data.parameters, fromVersion: parsed.data.fromVersion },
          `change the parameters of version ${parsed.data.fromVersion.toString()}`,
        );
      case 'StrategyRetired':
        return parsed.data.openRequests.map((requestId) => ({
          target: 'approval',
          streamId: approvalStream(requestId),
          command: {
            type: 'WithdrawApproval',
            requestId,
            by: FLOW_PARTY,
            reason: 'the strategy was retired',
          },
        }));
      default:
        return [];
    }
  }
  if (category === 'approval') {
    const parsed: ApprovalEvent = approvals.parseEvent(domain);
    if (parsed.type === 'ApprovalRequested' || parsed.type === 'ApprovalGranted') return [];
    if (RISK_SUBJECTS.has(parsed.data.subject.type))
      return riskSteps(parsed, event.recordedAt.getTime());
    if (parsed.data.subject.type !== 'strategy') return [];
    const strategyId = parsed.data.subject.id;
    const { requestId } = parsed.data;
    const to = (command: StrategyCommand): Step[] => [
      { target: 'strategy', streamId: strategyStream(strategyId), command },
    ];
    switch (parsed.type) {
      case 'ApprovalApproved': {
        const { approvers } = parsed.data;
        switch (parsed.data.kind) {
          case 'strategy_activation':
            return to({ type: 'ApproveActivation', strategyId, requestId, approvers });
          case 'mode_change':
            return to({ type: 'PromoteToLive', strategyId, requestId, approvers });
          case 'parameter_change':
            return to({ type: 'ApplyParameterChange', strategyId, requestId, approvers });
          case 'risk_limit_change':
          case 'risk_reset':
          case 'allocation_change':
          case 'standing_approval':
          case 'strategy_retirement': // elimination's subject is not a strategy: never reached
            return [];
        }
        break;
      }
      case 'ApprovalRejected':
      case 'ApprovalWithdrawn':
        return to({
          type: 'DeclineRequest',
          strategyId,
          requestId,
          outcome: parsed.type === 'ApprovalRejected' ? 'rejected' : 'withdrawn',
          reason: parsed.data.reason,
        });
      case 'ApprovalExpired':
        return to({
          type: 'DeclineRequest',
          strategyId,
          requestId,
          outcome: 'expired',
          reason: `the request expired at ${parsed.data.expiredAt}`,
        });
    }
  }
  return [];
}

/**
 * The process manager between approvals and strategies: a strategy's request opens an approval
 * request, and the approval's outcome drives the strategy — each as a command through the command
 * handler, with the triggering event as its causation and its correlation id carried on. An
 * approved risk request (limits, a trading state's reset, the kill switch's release; opened by the
 * risk API) becomes the risk decider's command on its stream, at the approval's recorded time.
 *
 * It runs as a PostgreSQL projection, so it has one leader, a checkpoint and stop-on-error. Every
 * command is idempotent twice over: its idempotency key is the triggering event's id, and the
 * deciders ignore an outcome they no longer wait for, so replaying the flow (after a crash, or a
 * rebuild from position 0) writes nothing new. `approval_flow_log` records what each step did.
 */
export const approvalFlow = (commands: CommandHandler): PostgresProjection => ({
  kind: 'postgres',
  name: 'approval_flow',
  version: 1,
  tables: ['approval_flow_log'],

  async setup(client: pg.ClientBase, schema: string) {
    await client.query(`
      CREATE TABLE ${schema}.approval_flow_log (
        trigger_position bigint  NOT NULL,
        step             integer NOT NULL,
        trigger_event_id uuid    NOT NULL,
        trigger_type     text    NOT NULL,
        command          text    NOT NULL,
        stream_id        text    NOT NULL,
        outcome          text    NOT NULL,
        detail           text,
        result_revision  bigint,
        result_position  bigint,
        PRIMARY KEY (trigger_position, step)
      )`);
  },

  async apply(client: pg.ClientBase, schema: string, events: readonly RecordedEvent[]) {
    for (const event of events) {
      const steps = stepsFor(event);
      for (const [index, step] of steps.entries()) {
        const context = {
          actor: APPROVAL_FLOW_ACTOR,
          correlationId: event.metadata.correlationId ?? event.eventId,
          causationId: event.eventId,
          idempotencyKey: `flow:${event.eventId}:${index.toString()}`,
        };
        let outcome: {
          outcome: string;
          detail: string | null;
          revision?: bigint;
          position?: bigint;
        };
        try {
          if (step.target === 'refuse') throw new QcatError(step.code, step.detail);
          const result =
            step.target === 'approval'
              ? await commands.handle(approvals, step.streamId, step.command, context)
              : step.target === 'risk'
                ? await commands.handle(
                    riskDeciderOf(step.streamId),
                    step.streamId,
                    step.command,
                    context,
                  )
                : await commands.handle(strategies, step.streamId, step.command, context);
          outcome =
            result.eventCount > 0
              ? {
                  outcome: 'applied',
                  detail: null,
                  revision: result.nextExpectedRevision,
                  position: result.position,
                }
              : { outcome: 'unchanged', detail: null };
        } catch (error) {
          // A refusal is an answer, not a failure: record it and go on. Anything else stops the
          // flow at this event (the runner records why) until it is fixed.
          if (!(error instanceof QcatError)) throw error;
          outcome = { outcome: 'refused', detail: `${error.code}: ${error.message}` };
        }
        await client.query(
          `INSERT INTO ${schema}.approval_flow_log (trigger_position, step, trigger_event_id, trigger_type,
                                                    command, stream_id, outcome, detail, result_revision,
                                                    result_position)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT DO NOTHING`,
          [
            event.position,
            index,
            event.eventId,
            event.type,
            step.command.type,
            step.streamId,
            outcome.outcome,
            outcome.detail,
            outcome.revision ?? null,
            outcome.position ?? null,
          ],
        );
      }
    }
  },
});

/** Due approval requests, expired; safe to run in every process (expiring twice writes once). */
export async function expireDueApprovals(
  pool: pg.Pool,
  commands: CommandHandler,
  now: Date,
): Promise<number> {
  const { rows } = await pool.query<{ request_id: string }>(
    `SELECT request_id FROM qcat_read.approvals WHERE status = 'pending' AND expires_at <= $1
      ORDER BY expires_at LIMIT 500`,
    [now],
  );
  let expired = 0;
  for (const { request_id: requestId } of rows) {
    const result = await commands.handle(
      approvals,
      approvalStream(requestId),
      { type: 'ExpireApproval', requestId, now: now.toISOString() },
      { actor: APPROVAL_FLOW_ACTOR },
    );
    expired += result.eventCount > 0 ? 1 : 0;
  }
  return expired;
}
