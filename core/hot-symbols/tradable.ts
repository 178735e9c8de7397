import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { partySchema, refuse } from '../risk/common.js';

/**
 * A hot symbol's way onto the tradable list (capability 10, docs/hot-symbols.md), one stream per
 * symbol (`hotsymbol-<SYMBOL>`): an analyst proposes a symbol the latest ranking recommended,
 * while the recommendation holds (RECOMMENDATION_HOURS after its ranking); a risk officer other
 * than the proposer approves it (four eyes) or rejects it; approved, it is tradable until
 * `tradableUntil` (the policy's `expiryDays` later) and then expires off the list unless a new
 * recommendation is proposed and approved again. Times are epoch ms and arrive in the commands.
 */

export const hotSymbolStream = (symbol: string): string => `hotsymbol-${symbol}`;

/** How long a ranking's recommendation can be proposed and approved. */
export const RECOMMENDATION_HOURS = 24;
const HOUR = 3_600_000;

const PROPOSERS: readonly Party['role'][] = ['analyst', 'admin'];
const APPROVERS: readonly Party['role'][] = ['risk_officer', 'admin'];

const recommendation = {
  symbol: z.string(),
  proposalId: z.string(),
  /** The HotSymbolsRanked event (its log position) that recommended the symbol. */
  rankingPosition: z.string(),
  rankedAt: z.number(),
  score: z.number().nullable(),
  /** No approval after this instant (epoch ms). */
  recommendationExpiresAt: z.number(),
};
const proposedData = z.object({
  ...recommendation,
  reason: z.string(),
  proposedBy: partySchema,
  at: z.number(),
});
const approvedData = z.object({
  symbol: z.string(),
  proposalId: z.string(),
  approvedBy: partySchema,
  comment: z.string(),
  tradableUntil: z.number(),
  at: z.number(),
});
const rejectedData = z.object({
  symbol: z.string(),
  proposalId: z.string(),
  rejectedBy: partySchema,
  reason: z.string(),
  at: z.number(),
});

export type HotSymbolEvent =
  | DomainEvent<'HotSymbolProposed', z.infer<typeof proposedData>>
  | DomainEvent<'HotSymbolApproved', z.infer<typeof approvedData>>
  | DomainEvent<'HotSymbolRejected', z.infer<typeof rejectedData>>;

export type HotSymbolCommand =
  | ({ type: 'ProposeHotSymbol' } & z.infer<typeof proposedData>)
  | {
      type: 'ApproveHotSymbol';
      symbol: string;
      proposalId: string;
      by: Party;
      comment: string;
      expiryDays: number;
      at: number;
    }
  | {
      type: 'RejectHotSymbol';
      symbol: string;
      proposalId: string;
      by: Party;
      reason: string;
      at: number;
    };

type Proposal = z.infer<typeof proposedData>;
export type HotSymbolState = {
  /** The proposal waiting for a decision, if any. */
  pending: Proposal | null;
  /** On the tradable list until this instant (epoch ms); null: never approved. */
  tradableUntil: number | null;
  proposals: string[];
};

/** On the tradable list at `now`? */
export const isTradable = (state: HotSymbolState, now: number): boolean =>
  state.tradableUntil !== null && now < state.tradableUntil;

const pendingOf = (state: HotSymbolState, command: { symbol: string; proposalId: string }) => {
  const pending = state.pending;
  if (!pending || pending.proposalId !== command.proposalId)
    return refuse(
      'HOT_SYMBOL_NOT_PENDING',
      `${command.symbol} has no pending proposal ${command.proposalId}${pending ? ` (pending: ${pending.proposalId})` : ''}`,
      { field: 'proposalId' },
    );
  return pending;
};

export const hotSymbols: Decider<HotSymbolState, HotSymbolCommand, HotSymbolEvent> = {
  initialState: () => ({ pending: null, tradableUntil: null, proposals: [] }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'HotSymbolProposed':
        return {
          ...state,
          pending: event.data,
          proposals: [...state.proposals, event.data.proposalId],
        };
      case 'HotSymbolApproved':
        return { ...state, pending: null, tradableUntil: event.data.tradableUntil };
      case 'HotSymbolRejected':
        return { ...state, pending: null };
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'ProposeHotSymbol': {
        const { type: _type, ...data } = command;
        if (state.proposals.includes(data.proposalId)) return [];
        if (!PROPOSERS.includes(data.proposedBy.role))
          refuse(
            'HOT_SYMBOL_ROLE_REQUIRED',
            `only an analyst or an admin proposes a symbol; ${data.proposedBy.id} is ${data.proposedBy.role}`,
          );
        if (data.at >= data.recommendationExpiresAt)
          refuse(
            'RECOMMENDATION_EXPIRED',
            `the recommendation of ${data.symbol} expired at ${new Date(data.recommendationExpiresAt).toISOString()}`,
            { field: 'symbol' },
          );
        if (state.pending && state.pending.recommendationExpiresAt > data.at)
          refuse(
            'HOT_SYMBOL_PROPOSAL_PENDING',
            `${data.symbol} is already proposed (${state.pending.proposalId}) and waits for a risk officer`,
            { field: 'symbol' },
          );
        return [{ type: 'HotSymbolProposed', data }];
      }
      case 'ApproveHotSymbol': {
        const pending = pendingOf(state, command);
        if (!APPROVERS.includes(command.by.role))
          refuse(
            'RISK_ROLE_REQUIRED',
            `only a risk officer or an admin approves a symbol onto the tradable list; ${command.by.id} is ${command.by.role}`,
          );
        if (command.by.id === pending.proposedBy.id)
          refuse(
            'SELF_APPROVAL_FORBIDDEN',
            `${command.by.id} proposed ${command.symbol}: a second person approves it (four eyes)`,
          );
        if (command.at >= pending.recommendationExpiresAt)
          refuse(
            'RECOMMENDATION_EXPIRED',
            `the recommendation of ${command.symbol} expired at ${new Date(pending.recommendationExpiresAt).toISOString()}; propose it again from a newer ranking`,
            { field: 'proposalId' },
          );
        return [
          {
            type: 'HotSymbolApproved',
            data: {
              symbol: command.symbol,
              proposalId: command.proposalId,
              approvedBy: command.by,
              comment: command.comment,
              tradableUntil: command.at + command.expiryDays * 24 * HOUR,
              at: command.at,
            },
          },
        ];
      }
      case 'RejectHotSymbol': {
        pendingOf(state, command);
        if (!APPROVERS.includes(command.by.role))
          refuse(
            'RISK_ROLE_REQUIRED',
            `only a risk officer or an admin rejects a proposed symbol; ${command.by.id} is ${command.by.role}`,
          );
        const { symbol, proposalId, reason, at } = command;
        return [
          {
            type: 'HotSymbolRejected',
            data: { symbol, proposalId, rejectedBy: command.by, reason, at },
          },
        ];
      }
    }
  },
  parseEvent: (event) =>
    z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('HotSymbolProposed'), data: proposedData }),
        z.object({ type: z.literal('HotSymbolApproved'), data: approvedData }),
        z.object({ type: z.literal('HotSymbolRejected'), data: rejectedData }),
      ])
      .parse(event),
};

/** When a ranking's recommendation stops being approvable. */
export const recommendationExpiry = (rankedAt: number): number =>
  rankedAt + RECOMMENDATION_HOURS * HOUR;
