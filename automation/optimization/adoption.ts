import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../../core/approvals/approval.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationRun,
} from '../../core/optimization/optimization.js';
import {
  OPTIMIZATION_POLICY_STREAM,
  optimizationPolicy,
  standingApprovalFor,
  type OptimizationPolicy,
} from '../../core/optimization/policy.js';
import { outOfBounds } from '../../core/strategies/parameter-bounds.js';
import { strategies, strategyStream, type Strategy } from '../../core/strategies/strategy.js';
import { automationActor, intent, type Intent, type ProcessManager } from '../process-manager.js';

/** Adoption (capability 2) acts as this process manager. */
export const ADOPTION = 'optimization-adoption';

/** The party the adoption requests in: an analyst's rights, so four eyes still apply. */
export const ADOPTION_PARTY: Party = { id: automationActor(ADOPTION), role: 'analyst' };

const REQUEST_NAMESPACE = '7a1c2d9e-4b3f-4e8a-9c6d-5f2e1b0a8c74';

/** The approval request's id (or the direct change's), derived from the optimization. */
export const adoptionRequestId = (optimizationId: string): string =>
  uuidv5(`adopt:${optimizationId}`, REQUEST_NAMESPACE);

/** What the decision reads besides the run: the strategy now and the standing approvals. */
export interface AdoptionContext {
  strategy: Strategy | undefined;
  policy: OptimizationPolicy;
  now: Date;
}

/**
 * The decision, pure: a completed optimization of a strategy whose result passed the gate
 * adopts its best parameters.
 *   - Inside a standing approval in force for the strategy (every parameter within its bounds of
 *     the live value, computed from the live version), they apply at once, with no second
 *     person: `ApplyParametersUnderStandingApproval`, the standing approval as the authority.
 *   - Otherwise they are proposed as a new parameter version through the approval flow
 *     (`RequestParameterChange`, a four-eyes approval request).
 * A result that failed the gate changes nothing (its verdict records why); nor does a run of a
 * bare strategy kind (no strategy).
 */
export function adoptionIntents(
  run: OptimizationRun,
  context: AdoptionContext = { strategy: undefined, policy: { standing: {} }, now: new Date(0) },
): Intent[] {
  const outcome = run.outcome;
  if (run.status !== 'completed' || !outcome?.verdict.passed) return [];
  if (run.strategyId === null || outcome.bestParameters === null) return [];
  const stream = strategyStream(run.strategyId);
  const requestId = adoptionRequestId(run.optimizationId);
  const { strategy } = context;
  const standing = standingApprovalFor(context.policy, run.strategyId, context.now);
  if (
    standing &&
    strategy &&
    run.strategyParameterVersion === strategy.parameterVersion &&
    strategy.pending.parameterChange === null &&
    outOfBounds(strategy.parameters, outcome.bestParameters, standing.maxRelativeChange).length ===
      0
  )
    return [
      intent(strategies, stream, {
        type: 'ApplyParametersUnderStandingApproval',
        strategyId: run.strategyId,
        changeId: requestId,
        by: ADOPTION_PARTY,
        parameters: outcome.bestParameters,
        fromVersion: strategy.parameterVersion,
        authority: {
          type: 'standing_approval',
          standingApprovalId: standing.standingApprovalId,
          maxRelativeChange: standing.maxRelativeChange,
          grantedBy: standing.approvers,
          optimizationId: run.optimizationId,
        },
      }),
    ];
  return [
    intent(strategies, stream, {
      type: 'RequestParameterChange',
      strategyId: run.strategyId,
      requestId,
      by: ADOPTION_PARTY,
      parameters: outcome.bestParameters,
    }),
  ];
}

/** On OptimizationCompleted: reads the run, the strategy and the standing approvals, decides. */
export const optimizationAdoption = (commands: CommandHandler): ProcessManager => ({
  name: ADOPTION,
  capability: 'adopt_parameters',
  handles: ['OptimizationCompleted'],
  async react(event: RecordedEvent) {
    const id = (event.data as { optimizationId?: unknown }).optimizationId;
    if (typeof id !== 'string') return [];
    const { state } = await commands.load(optimizations, optimizationStream(id));
    if (state.status === 'none') return [];
    if (state.strategyId === null) return adoptionIntents(state);
    const [strategy, policy] = await Promise.all([
      commands.load(strategies, strategyStream(state.strategyId)),
      commands.load(optimizationPolicy, OPTIMIZATION_POLICY_STREAM),
    ]);
    return adoptionIntents(state, {
      strategy: strategy.state.status === 'none' ? undefined : strategy.state,
      policy: policy.state,
      // The standing approval must be in force when the result came, not when a replay reads it.
      now: event.recordedAt,
    });
  },
});
