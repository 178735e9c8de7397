import {
  approvalStream,
  approvals,
  type ApprovalEvent,
  type Party,
} from '../../core/approvals/approval.js';
import type { DomainEvent } from '../../core/decider.js';
import { categoryOf } from '../../core/eventstore/append-validation.js';
import type { JsonObject, RecordedEvent } from '../../core/eventstore/event-store.js';
import {
  KILL_SWITCH_STREAM,
  KILL_SWITCH_SUBJECT,
  limitsStream,
  RISK_SCOPE_TYPES,
  tradingStateStream,
  type RiskScope,
} from '../../core/risk/common.js';
import {
  strategies,
  strategyStream,
  type StrategyCommand,
  type StrategyEvent,
} from '../../core/strategies/strategy.js';

/** Who the approval flow acts as: it withdraws the requests of a retired strategy as an admin. */
export const APPROVAL_FLOW_ACTOR = 'system:approval-flow';
const FLOW_PARTY: Party = { id: APPROVAL_FLOW_ACTOR, role: 'admin' };

/**
 * One command the flow issues in answer to an event: on an approval request, a strategy or a risk
 * stream; `refuse` is a request the flow cannot apply, recorded as refused with its code.
 */
export type Step =
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

/**
 * The approval flow's decision (pure): what it does in answer to one event, nothing for most. A
 * strategy's request opens an approval request; an approval's outcome drives the strategy; an
 * approved risk request (limits, a trading state's reset, the kill switch's release) becomes the
 * risk decider's command on its stream, at the approval's recorded time.
 */
export function approvalFlowSteps(event: RecordedEvent): Step[] {
  const domain: DomainEvent = { type: event.type, data: event.data as JsonObject };
  const category = categoryOf(event.streamId);
  if (category === 'strategy')
    return strategySteps(strategies.parseEvent(domain), event.recordedAt.toISOString());
  if (category === 'approval') return approvalSteps(approvals.parseEvent(domain), event.recordedAt);
  return [];
}

/** A strategy's request opens an approval request; its retirement withdraws those still open. */
function strategySteps(parsed: StrategyEvent, now: string): Step[] {
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

/** An approval's outcome drives its strategy, or becomes the risk decider's command. */
function approvalSteps(parsed: ApprovalEvent, recordedAt: Date): Step[] {
  if (parsed.type === 'ApprovalRequested' || parsed.type === 'ApprovalGranted') return [];
  if (RISK_SUBJECTS.has(parsed.data.subject.type)) return riskSteps(parsed, recordedAt.getTime());
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
  return [];
}

/** The events the flow answers (every other one it passes over). */
export const APPROVAL_FLOW_HANDLES = [
  'StrategySubmittedForReview',
  'StrategyPromotionRequested',
  'StrategyParameterChangeRequested',
  'StrategyRetired',
  'ApprovalApproved',
  'ApprovalRejected',
  'ApprovalWithdrawn',
  'ApprovalExpired',
] as const;
