import { approvals, approvalStream, type ApprovalEvent } from '../../core/approvals/approval.js';
import type { JsonObject, RecordedEvent } from '../../core/eventstore/event-store.js';
import {
  OPTIMIZATION_POLICY_STREAM,
  optimizationPolicy,
  type OptimizationPolicyEvent,
} from '../../core/optimization/policy.js';
import { intent, type Intent, type ProcessManager } from '../process-manager.js';

/** The subject of a standing approval's approval request. */
export const STANDING_SUBJECT = 'standing_approval';

/**
 * The four-eyes bridge of standing approvals, pure: a requested standing approval opens an
 * approval request (kind `standing_approval`: another risk officer approves), and the request's
 * outcome grants or declines it. Every other event decides nothing.
 */
export function standingApprovalIntents(event: {
  type: string;
  data: JsonObject;
  recordedAt: Date;
}): Intent[] {
  if (event.type === 'StandingApprovalRequested') {
    const parsed: OptimizationPolicyEvent = optimizationPolicy.parseEvent(event);
    if (parsed.type !== 'StandingApprovalRequested') return [];
    const d = parsed.data;
    const scope = d.strategyId === null ? 'every strategy' : `strategy ${d.strategyId}`;
    return [
      intent(approvals, approvalStream(d.requestId), {
        type: 'RequestApproval',
        requestId: d.requestId,
        kind: 'standing_approval',
        subject: { type: STANDING_SUBJECT, id: d.standingApprovalId },
        requester: d.requestedBy,
        payload: {
          strategyId: d.strategyId,
          maxRelativeChange: d.maxRelativeChange,
          expiresAt: d.expiresAt,
        },
        reason: `let automation adopt optimized parameters of ${scope} within ±${d.maxRelativeChange * 100}% until ${d.expiresAt}: ${d.reason}`,
        now: event.recordedAt.toISOString(),
      }),
    ];
  }
  if (!event.type.startsWith('Approval')) return [];
  const parsed: ApprovalEvent = approvals.parseEvent(event);
  if (parsed.type === 'ApprovalRequested' || parsed.type === 'ApprovalGranted') return [];
  if (parsed.data.kind !== 'standing_approval' || parsed.data.subject.type !== STANDING_SUBJECT)
    return [];
  const ids = { standingApprovalId: parsed.data.subject.id, requestId: parsed.data.requestId };
  if (parsed.type === 'ApprovalApproved')
    return [
      intent(optimizationPolicy, OPTIMIZATION_POLICY_STREAM, {
        type: 'GrantStandingApproval',
        ...ids,
        approvers: parsed.data.approvers,
      }),
    ];
  return [
    intent(optimizationPolicy, OPTIMIZATION_POLICY_STREAM, {
      type: 'DeclineStandingApproval',
      ...ids,
      outcome:
        parsed.type === 'ApprovalRejected'
          ? 'rejected'
          : parsed.type === 'ApprovalWithdrawn'
            ? 'withdrawn'
            : 'expired',
      reason:
        parsed.type === 'ApprovalExpired'
          ? `the request expired at ${parsed.data.expiredAt}`
          : parsed.data.reason,
    }),
  ];
}

/**
 * Runs the bridge above as `automation:standing-approvals`. Not gated by a capability: it only
 * carries a four-eyes decision people made; what a standing approval allows is gated with
 * adoption (capability 2).
 */
export const standingApprovals = (): ProcessManager => ({
  name: 'standing-approvals',
  handles: [
    'StandingApprovalRequested',
    'ApprovalApproved',
    'ApprovalRejected',
    'ApprovalWithdrawn',
    'ApprovalExpired',
  ],
  react: (event: RecordedEvent) =>
    Promise.resolve(
      standingApprovalIntents({
        type: event.type,
        data: event.data as JsonObject,
        recordedAt: event.recordedAt,
      }),
    ),
});
