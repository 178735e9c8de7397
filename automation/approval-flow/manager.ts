import { approvals } from '../../core/approvals/approval.js';
import { QcatError } from '../../core/errors.js';
import { riskDeciderOf } from '../../core/risk/aggregate.js';
import { strategies } from '../../core/strategies/strategy.js';
import { intent, type Intent, type ProcessManager } from '../process-manager.js';
import {
  APPROVAL_FLOW_ACTOR,
  APPROVAL_FLOW_HANDLES,
  approvalFlowSteps,
  type Step,
} from './decision.js';

/** A step as the runner issues it: through the decider of its stream. */
export function intentOf(step: Step): Intent {
  switch (step.target) {
    case 'approval':
      return intent(approvals, step.streamId, step.command);
    case 'strategy':
      return intent(strategies, step.streamId, step.command);
    case 'risk':
      return intent(riskDeciderOf(step.streamId), step.streamId, step.command);
    case 'refuse':
      // Nothing to write: the runner records the refusal, with its code, as an outcome.
      return {
        streamId: step.streamId,
        command: step.command,
        issue: () => Promise.reject(new QcatError(step.code, step.detail)),
      };
  }
}

/**
 * The process manager between approvals and their subjects (ADR 010, ADR 027): its decision is
 * `approvalFlowSteps`, pure; the runner issues each step as `system:approval-flow` with the event
 * as causation, its correlation carried on, and ids and idempotency keys derived from the event,
 * so handling an event again (after a crash) writes nothing new. Each step's outcome (applied,
 * unchanged, refused) is in `qcat_process_outcomes`, where the approval API reads it.
 */
export const approvalFlow = (): ProcessManager => ({
  name: 'approval-flow',
  actor: APPROVAL_FLOW_ACTOR,
  handles: APPROVAL_FLOW_HANDLES,
  react: (event) => Promise.resolve(approvalFlowSteps(event).map(intentOf)),
});
