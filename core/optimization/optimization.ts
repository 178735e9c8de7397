import { z } from 'zod';
import { ROLES } from '../access/roles.js';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import type { Statistics } from '../trading/statistics.js';
import type { Verdict } from './gate.js';
import type { DeflatedSharpe, Pbo } from './overfitting.js';
import {
  checkOptimizationRequest,
  type OptimizationRequestInput,
  type OptimizationSpec,
} from './request.js';
import type { FoldResult, TrialRecord } from './search.js';

/**
 * An optimization run as an aggregate: requested (fully specified, defaults filled in), progressed
 * in batches of trials (one event per batch, not per trial), then completed (the choice, the
 * walk-forward, the overfitting statistics and the gate's verdict), failed or cancelled. The
 * runner (automation/optimization/) does the work; people cancel.
 */

export const OPTIMIZATION_STATUSES = [
  'requested',
  'running',
  'completed',
  'failed',
  'cancelled',
] as const;
export type OptimizationStatus = (typeof OPTIMIZATION_STATUSES)[number];

/** Stream of one run: `optimization-<optimizationId>`. */
export const optimizationStream = (optimizationId: string): string =>
  `optimization-${optimizationId}`;

export interface OptimizationOutcome extends JsonObject {
  trialsRun: number;
  stoppedBy: 'budget' | 'grid' | 'wallTime';
  bestTrial: number | null;
  bestParameters: JsonObject | null;
  inSample: (Statistics & JsonObject) | null;
  outOfSample: (Statistics & JsonObject) | null;
  folds: FoldResult[];
  /** Stitched out-of-sample equity at the end of each UTC day. */
  equity: { date: string; equity: number }[];
  deflatedSharpe: (DeflatedSharpe & JsonObject) | null;
  pbo: (Pbo & JsonObject) | null;
  verdict: Verdict;
  durationMs: number;
}

export interface OptimizationProgress extends JsonObject {
  /** 0, 1, 2, … in order; a batch recorded twice is recorded once. */
  batch: number;
  trials: TrialRecord[];
  trialsDone: number;
  bestTrial: number | null;
  bestScore: number | null;
}

type Id = { optimizationId: string };

export type OptimizationEvent =
  | DomainEvent<'OptimizationRequested', OptimizationSpec & Id & { requestedBy: Party }>
  | DomainEvent<'OptimizationProgressed', OptimizationProgress & Id>
  | DomainEvent<'OptimizationCompleted', OptimizationOutcome & Id>
  | DomainEvent<'OptimizationFailed', Id & { reason: string }>
  | DomainEvent<'OptimizationCancelled', Id & { cancelledBy: Party; reason: string }>;

export type OptimizationCommand =
  | ({
      type: 'RequestOptimization';
      optimizationId: string;
      requestedBy: Party;
    } & OptimizationRequestInput)
  | ({ type: 'RecordOptimizationProgress'; optimizationId: string } & OptimizationProgress)
  | { type: 'CompleteOptimization'; optimizationId: string; outcome: OptimizationOutcome }
  | { type: 'FailOptimization'; optimizationId: string; reason: string }
  | { type: 'CancelOptimization'; optimizationId: string; cancelledBy: Party; reason: string };

export interface OptimizationRun extends OptimizationSpec {
  optimizationId: string;
  status: OptimizationStatus;
  requestedBy: Party;
  nextBatch: number;
  trialsDone: number;
  bestTrial: number | null;
  bestScore: number | null;
  outcome: OptimizationOutcome | null;
  failureReason: string | null;
  cancelledBy: Party | null;
}

export type OptimizationState = { status: 'none' } | OptimizationRun;

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const id = { optimizationId: z.string() };
const json = z.record(z.string(), z.json());
const nullableNumber = z.number().nullable();
const optimizationEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('OptimizationRequested'),
    data: z.looseObject({ ...id, kind: z.string(), requestedBy: party, space: json }),
  }),
  z.object({
    type: z.literal('OptimizationProgressed'),
    data: z.object({
      ...id,
      batch: z.number(),
      trials: z.array(z.looseObject({ trial: z.number(), score: nullableNumber })),
      trialsDone: z.number(),
      bestTrial: nullableNumber,
      bestScore: nullableNumber,
    }),
  }),
  z.object({
    type: z.literal('OptimizationCompleted'),
    data: z.looseObject({
      ...id,
      trialsRun: z.number(),
      bestParameters: json.nullable(),
      verdict: z.object({ passed: z.boolean(), reasons: z.array(z.string()), gate: json }),
    }),
  }),
  z.object({
    type: z.literal('OptimizationFailed'),
    data: z.object({ ...id, reason: z.string() }),
  }),
  z.object({
    type: z.literal('OptimizationCancelled'),
    data: z.object({ ...id, cancelledBy: party, reason: z.string() }),
  }),
]);

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};

function existing(state: OptimizationState, optimizationId: string): OptimizationRun {
  if (state.status === 'none')
    refuse('OPTIMIZATION_NOT_FOUND', `optimization ${optimizationId} does not exist`);
  return state as OptimizationRun;
}

const finished = (run: OptimizationRun): boolean =>
  run.status === 'completed' || run.status === 'failed' || run.status === 'cancelled';

/** The run if it may still end as `outcome`; null when it already did (a repeat: no event). */
function open(
  state: OptimizationState,
  optimizationId: string,
  outcome: OptimizationStatus,
): OptimizationRun | null {
  const run = existing(state, optimizationId);
  if (run.status === outcome) return null;
  if (finished(run))
    refuse(
      'OPTIMIZATION_FINISHED',
      `optimization ${optimizationId} is ${run.status} already; it cannot be ${outcome}`,
      { currentState: run.status },
    );
  return run;
}

function evolve(state: OptimizationState, event: OptimizationEvent): OptimizationState {
  if (event.type === 'OptimizationRequested')
    return {
      ...event.data,
      status: 'requested',
      nextBatch: 0,
      trialsDone: 0,
      bestTrial: null,
      bestScore: null,
      outcome: null,
      failureReason: null,
      cancelledBy: null,
    };
  if (state.status === 'none') return state;
  switch (event.type) {
    case 'OptimizationProgressed':
      return {
        ...state,
        status: 'running',
        nextBatch: event.data.batch + 1,
        trialsDone: event.data.trialsDone,
        bestTrial: event.data.bestTrial,
        bestScore: event.data.bestScore,
      };
    case 'OptimizationCompleted': {
      const { optimizationId: _id, ...outcome } = event.data;
      return { ...state, status: 'completed', outcome, trialsDone: outcome.trialsRun };
    }
    case 'OptimizationFailed':
      return { ...state, status: 'failed', failureReason: event.data.reason };
    case 'OptimizationCancelled':
      return { ...state, status: 'cancelled', cancelledBy: event.data.cancelledBy };
  }
}

function decide(command: OptimizationCommand, state: OptimizationState): OptimizationEvent[] {
  const { optimizationId } = command;
  switch (command.type) {
    case 'RequestOptimization': {
      if (state.status !== 'none')
        refuse('OPTIMIZATION_EXISTS', `optimization ${optimizationId} was requested already`);
      const { type: _t, requestedBy, optimizationId: _id, ...input } = command;
      const spec = checkOptimizationRequest(optimizationId, requestedBy, input);
      return [{ type: 'OptimizationRequested', data: { optimizationId, ...spec, requestedBy } }];
    }
    case 'RecordOptimizationProgress': {
      const run = existing(state, optimizationId);
      if (finished(run))
        refuse('OPTIMIZATION_FINISHED', `optimization ${optimizationId} is ${run.status}`, {
          currentState: run.status,
        });
      if (command.batch < run.nextBatch) return [];
      if (command.batch > run.nextBatch)
        refuse(
          'OPTIMIZATION_BATCH_OUT_OF_ORDER',
          `optimization ${optimizationId} expects batch ${run.nextBatch}, not ${command.batch}`,
        );
      const { type: _t, ...data } = command;
      return [{ type: 'OptimizationProgressed', data }];
    }
    case 'CompleteOptimization':
      if (!open(state, optimizationId, 'completed')) return [];
      return [{ type: 'OptimizationCompleted', data: { optimizationId, ...command.outcome } }];
    case 'FailOptimization':
      if (!open(state, optimizationId, 'failed')) return [];
      return [{ type: 'OptimizationFailed', data: { optimizationId, reason: command.reason } }];
    case 'CancelOptimization': {
      const run = existing(state, optimizationId);
      if (finished(run))
        refuse(
          'OPTIMIZATION_FINISHED',
          `optimization ${optimizationId} is ${run.status} already; it cannot be cancelled`,
          { currentState: run.status },
        );
      return [
        {
          type: 'OptimizationCancelled',
          data: { optimizationId, cancelledBy: command.cancelledBy, reason: command.reason },
        },
      ];
    }
  }
}

export const optimizations: Decider<OptimizationState, OptimizationCommand, OptimizationEvent> = {
  initialState: () => ({ status: 'none' }),
  evolve,
  decide,
  // The schema checks the envelope of each type; the writer (decide) is the only producer.
  parseEvent: (event) => optimizationEvent.parse(event) as OptimizationEvent,
};
