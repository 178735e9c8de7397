import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import { refuse } from '../risk/common.js';

/**
 * Capability 8's ledger (`newstrategies-ledger`): which template was tried on which symbol,
 * and which strategies it created, by week. The caps of the automation policy (`perWeek`,
 * `total`) are enforced here, so a restart or a second leader can never create one too many: a
 * creation beyond them is refused with the cap and the count. docs/automation.md.
 */
export const NEW_STRATEGIES_STREAM = 'newstrategies-ledger';

export type NewStrategiesState = {
  /** `<template>:<symbol>` → the optimization that tried it. */
  tried: Record<string, string>;
  /** Strategies created, with the week (its Monday, `YYYY-MM-DD`) each was created in. */
  created: { strategyId: string; week: string }[];
};

export type NewStrategiesEvent =
  | DomainEvent<
      'NewStrategyCandidateTried',
      { template: string; symbol: string; optimizationId: string; week: string }
    >
  | DomainEvent<
      'NewStrategyReserved',
      { strategyId: string; optimizationId: string; week: string; perWeek: number; total: number }
    >;

export type NewStrategiesCommand =
  | { type: 'TryCandidate'; template: string; symbol: string; optimizationId: string; week: string }
  | {
      type: 'ReserveNewStrategy';
      strategyId: string;
      optimizationId: string;
      week: string;
      perWeek: number;
      total: number;
    };

const eventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('NewStrategyCandidateTried'),
    data: z.object({
      template: z.string(),
      symbol: z.string(),
      optimizationId: z.string(),
      week: z.string(),
    }),
  }),
  z.object({
    type: z.literal('NewStrategyReserved'),
    data: z.object({
      strategyId: z.string(),
      optimizationId: z.string(),
      week: z.string(),
      perWeek: z.number(),
      total: z.number(),
    }),
  }),
]);

export const candidateKey = (template: string, symbol: string): string => `${template}:${symbol}`;

export const newStrategies: Decider<NewStrategiesState, NewStrategiesCommand, NewStrategiesEvent> =
  {
    initialState: () => ({ tried: {}, created: [] }),
    evolve: (state, event) =>
      event.type === 'NewStrategyCandidateTried'
        ? {
            ...state,
            tried: {
              ...state.tried,
              [candidateKey(event.data.template, event.data.symbol)]: event.data.optimizationId,
            },
          }
        : {
            ...state,
            created: [
              ...state.created,
              { strategyId: event.data.strategyId, week: event.data.week },
            ],
          },
    decide: (command, state) => {
      if (command.type === 'TryCandidate') {
        const { template, symbol, optimizationId, week } = command;
        if (state.tried[candidateKey(template, symbol)] !== undefined) return [];
        return [
          { type: 'NewStrategyCandidateTried', data: { template, symbol, optimizationId, week } },
        ];
      }
      const { strategyId, optimizationId, week, perWeek, total } = command;
      if (state.created.some((c) => c.strategyId === strategyId)) return [];
      if (state.created.length >= total)
        return refuse(
          'NEW_STRATEGIES_TOTAL_REACHED',
          `${state.created.length} strategies created already; the policy allows ${total} in total`,
          { field: 'total', created: state.created.length },
        );
      const thisWeek = state.created.filter((c) => c.week === week).length;
      if (thisWeek >= perWeek)
        return refuse(
          'NEW_STRATEGIES_WEEK_REACHED',
          `${thisWeek} strategies created in the week of ${week}; the policy allows ${perWeek} a week`,
          { field: 'perWeek', created: thisWeek },
        );
      return [
        { type: 'NewStrategyReserved', data: { strategyId, optimizationId, week, perWeek, total } },
      ];
    },
    parseEvent: (event) => eventSchema.parse(event),
  };
