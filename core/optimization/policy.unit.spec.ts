import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import { outOfBounds } from '../strategies/parameter-bounds.js';
import { strategies, type StrategyEvent } from '../strategies/strategy.js';
import {
  optimizationPolicy,
  standingApprovalFor,
  type OptimizationPolicyCommand,
  type OptimizationPolicyEvent,
} from './policy.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const analyst: Party = { id: 'apikey:analyst1', role: 'analyst' };
const NOW = '2026-03-01T00:00:00.000Z';
const IN_30_DAYS = '2026-03-31T00:00:00.000Z';

const request = (
  overrides: Partial<Extract<OptimizationPolicyCommand, { type: 'RequestStandingApproval' }>> = {},
): OptimizationPolicyCommand => ({
  type: 'RequestStandingApproval',
  standingApprovalId: 'sa1',
  requestId: 'r1',
  strategyId: 's1',
  maxRelativeChange: 0.25,
  expiresAt: IN_30_DAYS,
  by: risk,
  reason: 'let the optimizer tune s1',
  now: NOW,
  ...overrides,
});
const requested: OptimizationPolicyEvent = {
  type: 'StandingApprovalRequested',
  data: {
    standingApprovalId: 'sa1',
    requestId: 'r1',
    strategyId: 's1',
    maxRelativeChange: 0.25,
    expiresAt: IN_30_DAYS,
    requestedBy: risk,
    reason: 'let the optimizer tune s1',
    requestedAt: NOW,
  },
};
const granted: OptimizationPolicyEvent = {
  type: 'StandingApprovalGranted',
  data: { standingApprovalId: 'sa1', requestId: 'r1', approvers: [risk2] },
};

describe('standing approvals (given / when / then)', () => {
  it('a risk officer requests one: pending until another risk officer approves it', () => {
    given(optimizationPolicy, []).when(request()).then([requested]);
    const state = given(optimizationPolicy, [requested]).state;
    expect(state.standing['sa1']?.status).toBe('pending');
    expect(standingApprovalFor(state, 's1', new Date(NOW))).toBeUndefined();
  });

  it('an analyst may not; bounds above ±50 %, a past or far expiry and a blank reason are refused', () => {
    given(optimizationPolicy, [])
      .when(request({ by: analyst }))
      .thenRefuses('RISK_ROLE_REQUIRED');
    given(optimizationPolicy, [])
      .when(request({ maxRelativeChange: 0.6 }))
      .thenRefuses('INVALID_STANDING_APPROVAL', /maxRelativeChange/);
    given(optimizationPolicy, [])
      .when(request({ expiresAt: NOW }))
      .thenRefuses('INVALID_STANDING_APPROVAL', /expiresAt/);
    given(optimizationPolicy, [])
      .when(request({ expiresAt: '2026-09-01T00:00:00.000Z' }))
      .thenRefuses('INVALID_STANDING_APPROVAL', /90 days/);
    given(optimizationPolicy, [])
      .when(request({ reason: ' ' }))
      .thenRefuses('INVALID_STANDING_APPROVAL', /reason/);
    given(optimizationPolicy, [requested]).when(request()).thenRefuses('STANDING_APPROVAL_EXISTS');
  });

  it('the approval request approved grants it (once); it is in force until it expires', () => {
    const grant: OptimizationPolicyCommand = {
      type: 'GrantStandingApproval',
      standingApprovalId: 'sa1',
      requestId: 'r1',
      approvers: [risk2],
    };
    given(optimizationPolicy, [requested]).when(grant).then([granted]);
    given(optimizationPolicy, [requested, granted]).when(grant).then([]);
    const state = given(optimizationPolicy, [requested, granted]).state;
    expect(standingApprovalFor(state, 's1', new Date(NOW))?.approvers).toEqual([risk2]);
    expect(standingApprovalFor(state, 's2', new Date(NOW))).toBeUndefined();
    expect(standingApprovalFor(state, 's1', new Date(IN_30_DAYS))).toBeUndefined();
  });

  it('rejected, it is declined and allows nothing', () => {
    given(optimizationPolicy, [requested])
      .when({
        type: 'DeclineStandingApproval',
        standingApprovalId: 'sa1',
        requestId: 'r1',
        outcome: 'rejected',
        reason: 'too wide',
      })
      .then([
        {
          type: 'StandingApprovalDeclined',
          data: {
            standingApprovalId: 'sa1',
            requestId: 'r1',
            outcome: 'rejected',
            reason: 'too wide',
          },
        },
      ]);
  });

  it('revoked by a risk officer, it allows nothing from then on; revoking twice is a 409', () => {
    const revoke: OptimizationPolicyCommand = {
      type: 'RevokeStandingApproval',
      standingApprovalId: 'sa1',
      by: risk,
      reason: 'market regime changed',
    };
    const [revoked] = given(optimizationPolicy, [requested, granted])
      .when(revoke)
      .then([
        {
          type: 'StandingApprovalRevoked',
          data: {
            standingApprovalId: 'sa1',
            requestId: 'r1',
            by: risk,
            reason: 'market regime changed',
          },
        },
      ]);
    const after = given(optimizationPolicy, [
      requested,
      granted,
      revoked as OptimizationPolicyEvent,
    ]);
    expect(standingApprovalFor(after.state, 's1', new Date(NOW))).toBeUndefined();
    after.when(revoke).thenRefuses('STANDING_APPROVAL_ENDED');
    given(optimizationPolicy, []).when(revoke).thenRefuses('STANDING_APPROVAL_NOT_FOUND');
  });

  it('one naming the strategy comes before one covering every strategy', () => {
    const global: OptimizationPolicyEvent[] = [
      {
        type: 'StandingApprovalRequested',
        data: {
          ...(requested.data as object),
          standingApprovalId: 'sa0',
          requestId: 'r0',
          strategyId: null,
        } as never,
      },
      {
        type: 'StandingApprovalGranted',
        data: { standingApprovalId: 'sa0', requestId: 'r0', approvers: [risk2] },
      },
    ];
    const state = given(optimizationPolicy, [...global, requested, granted]).state;
    expect(standingApprovalFor(state, 's1', new Date(NOW))?.standingApprovalId).toBe('sa1');
    expect(standingApprovalFor(state, 's9', new Date(NOW))?.standingApprovalId).toBe('sa0');
  });
});

describe('bounds of a standing approval', () => {
  const live = { fastPeriod: 20, slowPeriod: 50, positionFraction: 0.5 };
  it('each numeric parameter within ± the share of its live value; nothing else may change', () => {
    expect(
      outOfBounds(live, { fastPeriod: 25, slowPeriod: 40, positionFraction: 0.5 }, 0.25),
    ).toEqual([]);
    expect(
      outOfBounds(live, { fastPeriod: 26, slowPeriod: 50, positionFraction: 0.5 }, 0.25),
    ).toEqual(['PARAMETER_OUT_OF_BOUNDS: fastPeriod=26, live=20, max change=±25%']);
    expect(outOfBounds({ mode: 'a', x: 0 }, { mode: 'b', x: 0 }, 0.25)[0]).toMatch(
      /^PARAMETER_CHANGED: mode/,
    );
    expect(outOfBounds({ x: 0 }, { x: 0.1 }, 0.25)[0]).toMatch(/^PARAMETER_OUT_OF_BOUNDS: x/);
  });
});

describe('a strategy change under a standing approval (given / when / then)', () => {
  const owner: Party = { id: 'apikey:trader1', role: 'trader' };
  const bot: Party = { id: 'automation:optimization-adoption', role: 'analyst' };
  const history: StrategyEvent[] = [
    {
      type: 'StrategyCreated',
      data: {
        strategyId: 's1',
        name: 'n',
        description: '',
        kind: 'sma_crossover',
        symbols: ['BTCUSDT'],
        timeframe: '1h',
        parameters: { fastPeriod: 20, slowPeriod: 50, positionFraction: 0.5 },
        capitalRequest: 10_000,
        owner,
        parameterVersion: 1,
      },
    },
    {
      type: 'StrategySubmittedForReview',
      data: { strategyId: 's1', requestId: 'q1', requestedBy: owner },
    },
    { type: 'StrategyApproved', data: { strategyId: 's1', requestId: 'q1', approvers: [risk] } },
    { type: 'StrategyPaperTradingStarted', data: { strategyId: 's1' } },
  ];
  const authority = {
    type: 'standing_approval' as const,
    standingApprovalId: 'sa1',
    maxRelativeChange: 0.25,
    grantedBy: [risk2],
    optimizationId: 'o1',
  };
  const apply = (parameters: Record<string, number>, fromVersion = 1) => ({
    type: 'ApplyParametersUnderStandingApproval' as const,
    strategyId: 's1',
    changeId: 'c1',
    by: bot,
    parameters,
    fromVersion,
    authority,
  });

  it('within bounds, applies as the next version at once: no approvers, the standing approval as authority', () => {
    given(strategies, history)
      .when(apply({ fastPeriod: 24, slowPeriod: 45, positionFraction: 0.5 }))
      .then([
        {
          type: 'StrategyParametersChanged',
          data: {
            strategyId: 's1',
            requestId: 'c1',
            version: 2,
            parameters: { fastPeriod: 24, slowPeriod: 45, positionFraction: 0.5 },
            approvers: [],
            authority,
            appliedBy: bot,
          },
        },
      ]);
  });

  it('outside bounds, from an older version, or while a change awaits approval: refused', () => {
    given(strategies, history)
      .when(apply({ fastPeriod: 30, slowPeriod: 50, positionFraction: 0.5 }))
      .thenRefuses('OUTSIDE_STANDING_APPROVAL', /fastPeriod=30/);
    given(strategies, history)
      .when(apply({ fastPeriod: 24, slowPeriod: 50, positionFraction: 0.5 }, 0))
      .thenRefuses('PARAMETER_VERSION_MOVED');
    given(strategies, [
      ...history,
      {
        type: 'StrategyParameterChangeRequested',
        data: {
          strategyId: 's1',
          requestId: 'q2',
          requestedBy: owner,
          parameters: { fastPeriod: 10 },
          fromVersion: 1,
        },
      },
    ])
      .when(apply({ fastPeriod: 24, slowPeriod: 50, positionFraction: 0.5 }))
      .thenRefuses('REQUEST_ALREADY_OPEN');
  });
});
