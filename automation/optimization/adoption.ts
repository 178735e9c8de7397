import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../../core/approvals/approval.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import {
  optimizations,
  optimizationStream,
  type OptimizationRun,
} from '../../core/optimization/optimization.js';
import { strategies, strategyStream } from '../../core/strategies/strategy.js';
import { automationActor, intent, type Intent, type ProcessManager } from '../process-manager.js';

/** Adoption (capability 2) acts as this process manager. */
export const ADOPTION = 'optimization-adoption';

/** The party the adoption requests in: an analyst's rights, so four eyes still apply. */
export const ADOPTION_PARTY: Party = { id: automationActor(ADOPTION), role: 'analyst' };

const REQUEST_NAMESPACE = '7a1c2d9e-4b3f-4e8a-9c6d-5f2e1b0a8c74';

/** The approval request's id, derived from the optimization: one cause, one request. */
export const adoptionRequestId = (optimizationId: string): string =>
  uuidv5(`adopt:${optimizationId}`, REQUEST_NAMESPACE);

/**
 * The decision, pure: a completed optimization of a strategy whose result passed the gate
 * proposes its best parameters as a new parameter version through the approval flow (the
 * strategy's RequestParameterChange, which opens a four-eyes approval request). A result that
 * failed the gate changes nothing: its verdict already records why. A run of a bare strategy kind
 * (no strategy) has nothing to adopt.
 */
export function adoptionIntents(run: OptimizationRun): Intent[] {
  const outcome = run.outcome;
  if (run.status !== 'completed' || !outcome?.verdict.passed) return [];
  if (run.strategyId === null || outcome.bestParameters === null) return [];
  return [
    intent(strategies, strategyStream(run.strategyId), {
      type: 'RequestParameterChange',
      strategyId: run.strategyId,
      requestId: adoptionRequestId(run.optimizationId),
      by: ADOPTION_PARTY,
      parameters: outcome.bestParameters,
    }),
  ];
}

/** On OptimizationCompleted: reads the run, decides with `adoptionIntents`. */
export const optimizationAdoption = (commands: CommandHandler): ProcessManager => ({
  name: ADOPTION,
  capability: 'adopt_parameters',
  handles: ['OptimizationCompleted'],
  async react(event: RecordedEvent) {
    const id = (event.data as { optimizationId?: unknown }).optimizationId;
    if (typeof id !== 'string') return [];
    const { state } = await commands.load(optimizations, optimizationStream(id));
    return state.status === 'none' ? [] : adoptionIntents(state);
  },
});
