import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import { refuse } from '../risk/common.js';

/**
 * The hot-symbol rankings, one stream (`hotsymbols-ranking`): each `HotSymbolsRanked` keeps every
 * symbol's score and every dimension's value, the weights used and what was recommended, so the
 * audit trail shows why a symbol was (not) recommended at that hour.
 */
export const HOT_SYMBOLS_STREAM = 'hotsymbols-ranking';

const dimension = z.object({
  z: z.number().nullable(),
  rank: z.number().nullable(),
  missing: z.string().optional(),
});
const scoreSchema = z.object({
  symbol: z.string(),
  score: z.number().nullable(),
  dimensions: z.object({
    volumeJump: dimension,
    turnover: dimension,
    openInterest: dimension,
    funding: dimension,
    regime: dimension,
  }),
});
export const rankedData = z.object({
  /** The market up to this instant (epoch ms). */
  at: z.number(),
  trigger: z.enum(['schedule', 'manual']),
  weights: z.record(z.string(), z.number()),
  topN: z.number().int(),
  minScore: z.number(),
  scores: z.array(scoreSchema),
  recommended: z.array(z.string()),
});

export type HotSymbolsRankedData = z.infer<typeof rankedData>;
export type HotSymbolsEvent = DomainEvent<'HotSymbolsRanked', HotSymbolsRankedData>;
export type HotSymbolsCommand = { type: 'RecordHotSymbolsRanking' } & HotSymbolsRankedData;
export type HotSymbolsState = { lastAt: number | null };

export const hotSymbolsRanking: Decider<HotSymbolsState, HotSymbolsCommand, HotSymbolsEvent> = {
  initialState: () => ({ lastAt: null }),
  evolve: (_state, event) => ({ lastAt: event.data.at }),
  decide: (command, state) => {
    const { type: _type, ...data } = command;
    if (state.lastAt !== null && data.at <= state.lastAt)
      refuse(
        'RANKING_NOT_NEWER',
        `a ranking of the market up to ${new Date(state.lastAt).toISOString()} is already recorded`,
        { field: 'at' },
      );
    if (data.scores.length === 0)
      refuse('NO_SYMBOLS', 'no symbol has candles to score', { field: 'scores' });
    return [{ type: 'HotSymbolsRanked', data }];
  },
  parseEvent: (event) =>
    z.object({ type: z.literal('HotSymbolsRanked'), data: rankedData }).parse(event),
};
