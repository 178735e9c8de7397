import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { partySchema, refuse, requireApproval } from '../risk/common.js';
import type { Party } from '../approvals/approval.js';

/**
 * Capability 7's record of one strategy (`elimination-<strategyId>`): watched, suspended (paused,
 * positions closed) since when and why, proposed for retirement (an approval request), retired.
 * The process manager automation/elimination decides; this decider keeps it honest: one
 * suspension at a time, a proposal only for a suspended strategy, a retirement only with an
 * approved `strategy_retirement` request (four eyes). docs/automation.md#7-strategy-elimination.
 */
export const eliminationStream = (strategyId: string): string => `elimination-${strategyId}`;

/** The rolling figures a decision was taken on (null: not enough days to say). */
export interface EliminationFigures extends JsonObject {
  from: string;
  to: string;
  days: number;
  sharpe: number | null;
  drawdown: number;
  losingWeeksInARow: number;
}

export type EliminationStatus = 'watching' | 'suspended' | 'retirement_proposed' | 'retired';

export type EliminationState = {
  status: EliminationStatus;
  /** Figures are taken from this day on (after a recovery or a person's resume); null: any. */
  watchFrom: string | null;
  suspendedAt: string | null;
  breaches: string[];
  requestId: string | null;
};

type Ref = { strategyId: string; at: string };
export type EliminationEvent =
  | DomainEvent<'StrategySuspended', Ref & { figures: EliminationFigures; breaches: string[] }>
  | DomainEvent<
      'StrategySuspensionCleared',
      Ref & { outcome: 'recovered' | 'resumed' | 'kept' | 'retired'; reason: string }
    >
  | DomainEvent<
      'StrategyRetirementProposed',
      Ref & { requestId: string; figures: EliminationFigures; breaches: string[] }
    >
  | DomainEvent<'StrategyRetirementApproved', Ref & { requestId: string; approvers: Party[] }>;

export type EliminationCommand =
  | ({ type: 'Suspend'; figures: EliminationFigures; breaches: string[] } & Ref)
  | ({
      type: 'ClearSuspension';
      outcome: 'recovered' | 'resumed' | 'kept' | 'retired';
      reason: string;
    } & Ref)
  | ({
      type: 'ProposeRetirement';
      requestId: string;
      figures: EliminationFigures;
      breaches: string[];
    } & Ref)
  | ({ type: 'ConfirmRetirement'; requestId: string; approvers: Party[] } & Ref);

const figures = z.object({
  from: z.string(),
  to: z.string(),
  days: z.number(),
  sharpe: z.number().nullable(),
  drawdown: z.number(),
  losingWeeksInARow: z.number(),
});
const ref = { strategyId: z.string(), at: z.string() };
const eventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('StrategySuspended'),
    data: z.object({ ...ref, figures, breaches: z.array(z.string()) }),
  }),
  z.object({
    type: z.literal('StrategySuspensionCleared'),
    data: z.object({
      ...ref,
      outcome: z.enum(['recovered', 'resumed', 'kept', 'retired']),
      reason: z.string(),
    }),
  }),
  z.object({
    type: z.literal('StrategyRetirementProposed'),
    data: z.object({ ...ref, requestId: z.string(), figures, breaches: z.array(z.string()) }),
  }),
  z.object({
    type: z.literal('StrategyRetirementApproved'),
    data: z.object({ ...ref, requestId: z.string(), approvers: z.array(partySchema) }),
  }),
]);

const day = (at: string): string => at.slice(0, 10);

export const elimination: Decider<EliminationState, EliminationCommand, EliminationEvent> = {
  initialState: () => ({
    status: 'watching',
    watchFrom: null,
    suspendedAt: null,
    breaches: [],
    requestId: null,
  }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'StrategySuspended':
        return {
          ...state,
          status: 'suspended',
          suspendedAt: event.data.at,
          breaches: event.data.breaches,
        };
      case 'StrategySuspensionCleared':
        return {
          status: event.data.outcome === 'retired' ? 'retired' : 'watching',
          watchFrom: day(event.data.at),
          suspendedAt: null,
          breaches: [],
          requestId: null,
        };
      case 'StrategyRetirementProposed':
        return {
          ...state,
          status: 'retirement_proposed',
          requestId: event.data.requestId,
          breaches: event.data.breaches,
        };
      case 'StrategyRetirementApproved':
        return { ...state, status: 'retired' };
    }
  },
  decide: (command, state) => {
    const { strategyId, at } = command;
    switch (command.type) {
      case 'Suspend':
        if (state.status !== 'watching')
          return refuse('ELIMINATION_STATE', `strategy ${strategyId} is ${state.status}`, {
            currentState: state.status,
          });
        if (command.breaches.length === 0)
          return refuse('NO_BREACH', 'a suspension names the figures that breached the policy');
        return [
          {
            type: 'StrategySuspended',
            data: { strategyId, at, figures: command.figures, breaches: command.breaches },
          },
        ];
      case 'ClearSuspension':
        if (state.status !== 'suspended' && state.status !== 'retirement_proposed') return [];
        return [
          {
            type: 'StrategySuspensionCleared',
            data: { strategyId, at, outcome: command.outcome, reason: command.reason },
          },
        ];
      case 'ProposeRetirement':
        if (state.status !== 'suspended')
          return refuse(
            'ELIMINATION_STATE',
            `only a suspended strategy is proposed for retirement; ${strategyId} is ${state.status}`,
            { currentState: state.status },
          );
        return [
          {
            type: 'StrategyRetirementProposed',
            data: {
              strategyId,
              at,
              requestId: command.requestId,
              figures: command.figures,
              breaches: command.breaches,
            },
          },
        ];
      case 'ConfirmRetirement':
        if (state.status === 'retired') return [];
        if (state.status !== 'retirement_proposed' || state.requestId !== command.requestId)
          return refuse(
            'ELIMINATION_STATE',
            `strategy ${strategyId} has no retirement proposal ${command.requestId}`,
            { currentState: state.status },
          );
        requireApproval('strategy_retirement', command.requestId, command.approvers);
        return [
          {
            type: 'StrategyRetirementApproved',
            data: { strategyId, at, requestId: command.requestId, approvers: command.approvers },
          },
        ];
    }
  },
  parseEvent: (event) => eventSchema.parse(event),
};
