import { describe, expect, it } from 'vitest';
import type { Party } from '../approvals/approval.js';
import { given } from '../../test/support/given-when-then.js';
import {
  hotSymbols,
  isTradable,
  recommendationExpiry,
  RECOMMENDATION_HOURS,
  type HotSymbolEvent,
} from './tradable.js';

const HOUR = 3_600_000;
const RANKED = Date.UTC(2026, 11, 1, 10);
const analyst: Party = { id: 'apikey:ana', role: 'analyst' };
const officer: Party = { id: 'apikey:rio', role: 'risk_officer' };
const admin: Party = { id: 'apikey:adm', role: 'admin' };

const proposal = {
  symbol: 'SOLUSDT',
  proposalId: 'hs-1',
  rankingPosition: '42',
  rankedAt: RANKED,
  score: 2.4,
  recommendationExpiresAt: recommendationExpiry(RANKED),
  reason: 'volume jump',
  proposedBy: analyst,
  at: RANKED + HOUR,
};
const proposed: HotSymbolEvent = { type: 'HotSymbolProposed', data: proposal };
const approve = (by: Party, at: number) => ({
  type: 'ApproveHotSymbol' as const,
  symbol: 'SOLUSDT',
  proposalId: 'hs-1',
  by,
  comment: 'ok',
  expiryDays: 7,
  at,
});

describe('hot symbols onto the tradable list', () => {
  it('an analyst proposes a recommendation while it holds', () => {
    given(hotSymbols, [])
      .when({ type: 'ProposeHotSymbol', ...proposal })
      .then([proposed]);
    expect(recommendationExpiry(RANKED)).toBe(RANKED + RECOMMENDATION_HOURS * HOUR);
  });

  it('refuses a proposal of an expired recommendation, by a trader, or while one waits', () => {
    given(hotSymbols, [])
      .when({ type: 'ProposeHotSymbol', ...proposal, at: proposal.recommendationExpiresAt })
      .thenRefuses('RECOMMENDATION_EXPIRED', /expired at 2026-12-02T10:00:00.000Z/);
    given(hotSymbols, [])
      .when({ type: 'ProposeHotSymbol', ...proposal, proposedBy: { id: 't', role: 'trader' } })
      .thenRefuses('HOT_SYMBOL_ROLE_REQUIRED');
    given(hotSymbols, [proposed])
      .when({ type: 'ProposeHotSymbol', ...proposal, proposalId: 'hs-2' })
      .thenRefuses('HOT_SYMBOL_PROPOSAL_PENDING');
    // The same proposal again (a retry): nothing new.
    given(hotSymbols, [proposed])
      .when({ type: 'ProposeHotSymbol', ...proposal })
      .then([]);
  });

  it('a risk officer other than the proposer approves it for expiryDays; then it expires', () => {
    const at = RANKED + 2 * HOUR;
    const [approved] = given(hotSymbols, [proposed])
      .when(approve(officer, at))
      .then([
        {
          type: 'HotSymbolApproved',
          data: {
            symbol: 'SOLUSDT',
            proposalId: 'hs-1',
            approvedBy: officer,
            comment: 'ok',
            tradableUntil: at + 7 * 24 * HOUR,
            at,
          },
        },
      ]);
    const { state } = given(hotSymbols, [proposed, approved!]);
    expect(isTradable(state, at + 7 * 24 * HOUR - 1)).toBe(true);
    expect(isTradable(state, at + 7 * 24 * HOUR)).toBe(false);
    // Approved: nothing pending any more.
    given(hotSymbols, [proposed, approved!])
      .when(approve(officer, at))
      .thenRefuses('HOT_SYMBOL_NOT_PENDING');
  });

  it('four eyes, roles, and no approval of an expired recommendation', () => {
    const adminProposed: HotSymbolEvent = {
      type: 'HotSymbolProposed',
      data: { ...proposal, proposedBy: admin },
    };
    given(hotSymbols, [adminProposed])
      .when(approve(admin, RANKED + 2 * HOUR))
      .thenRefuses('SELF_APPROVAL_FORBIDDEN');
    given(hotSymbols, [proposed])
      .when(approve(analyst, RANKED + 2 * HOUR))
      .thenRefuses('RISK_ROLE_REQUIRED');
    given(hotSymbols, [proposed])
      .when(approve(officer, proposal.recommendationExpiresAt))
      .thenRefuses('RECOMMENDATION_EXPIRED', /propose it again from a newer ranking/);
    given(hotSymbols, [proposed])
      .when({ ...approve(officer, RANKED + 2 * HOUR), proposalId: 'hs-9' })
      .thenRefuses('HOT_SYMBOL_NOT_PENDING', /pending: hs-1/);
  });

  it('a rejection closes the proposal; a later recommendation can be proposed again', () => {
    const [rejected] = given(hotSymbols, [proposed])
      .when({
        type: 'RejectHotSymbol',
        symbol: 'SOLUSDT',
        proposalId: 'hs-1',
        by: officer,
        reason: 'illiquid',
        at: RANKED + 3 * HOUR,
      })
      .then([
        {
          type: 'HotSymbolRejected',
          data: {
            symbol: 'SOLUSDT',
            proposalId: 'hs-1',
            rejectedBy: officer,
            reason: 'illiquid',
            at: RANKED + 3 * HOUR,
          },
        },
      ]);
    const later = RANKED + 30 * HOUR;
    given(hotSymbols, [proposed, rejected!])
      .when({
        type: 'ProposeHotSymbol',
        ...proposal,
        proposalId: 'hs-2',
        rankedAt: later,
        recommendationExpiresAt: recommendationExpiry(later),
        at: later + HOUR,
      })
      .then([
        {
          type: 'HotSymbolProposed',
          data: {
            ...proposal,
            proposalId: 'hs-2',
            rankedAt: later,
            recommendationExpiresAt: recommendationExpiry(later),
            at: later + HOUR,
          },
        },
      ]);
  });
});
