import { describe, expect, it } from 'vitest';
import { DEFAULT_GATE } from '../../core/optimization/gate.js';
import type { OptimizationRun } from '../../core/optimization/optimization.js';
import type { OptimizationPolicy } from '../../core/optimization/policy.js';
import type { Strategy } from '../../core/strategies/strategy.js';
import { ADOPTION_PARTY, adoptionIntents, adoptionRequestId } from './adoption.js';
import { toStart } from './runner.js';
import { standingApprovalIntents } from './standing-approvals.js';

const run = (overrides: Partial<OptimizationRun> = {}, passed = true): OptimizationRun =>
  ({
    optimizationId: 'o1',
    status: 'completed',
    strategyId: 's1',
    outcome: {
      bestParameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
      verdict: {
        passed,
        reasons: passed ? [] : ['DSR_BELOW_GATE: dsr=0.4, min=0.95'],
        gate: DEFAULT_GATE,
      },
    },
    ...overrides,
  }) as unknown as OptimizationRun;

describe('adoption (capability 2)', () => {
  it('given a completed run of a strategy that passed the gate, proposes its parameters for approval', () => {
    const [only, ...rest] = adoptionIntents(run());
    expect(rest).toEqual([]);
    expect(only?.streamId).toBe('strategy-s1');
    expect(only?.command).toEqual({
      type: 'RequestParameterChange',
      strategyId: 's1',
      requestId: adoptionRequestId('o1'),
      by: ADOPTION_PARTY,
      parameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
    });
    expect(adoptionRequestId('o1')).toBe(adoptionRequestId('o1'));
    expect(adoptionRequestId('o2')).not.toBe(adoptionRequestId('o1'));
  });

  it('given a result that failed the gate, changes nothing', () => {
    expect(adoptionIntents(run({}, false))).toEqual([]);
  });

  it('given a run of a bare kind (no strategy), or one not completed, changes nothing', () => {
    expect(adoptionIntents(run({ strategyId: null }))).toEqual([]);
    expect(adoptionIntents(run({ status: 'cancelled' }))).toEqual([]);
  });
});

describe('adoption inside a standing approval (capability 2)', () => {
  const risk = { id: 'apikey:risk1', role: 'risk_officer' as const };
  const risk2 = { id: 'apikey:risk2', role: 'risk_officer' as const };
  const strategy = {
    strategyId: 's1',
    parameters: { fastPeriod: 9, slowPeriod: 45, positionFraction: 0.5 },
    parameterVersion: 2,
    pending: { activation: null, promotion: null, parameterChange: null },
  } as unknown as Strategy;
  const policy = (strategyId: string | null, maxRelativeChange = 0.25): OptimizationPolicy => ({
    standing: {
      sa1: {
        standingApprovalId: 'sa1',
        requestId: 'r1',
        strategyId,
        maxRelativeChange,
        expiresAt: '2026-04-01T00:00:00.000Z',
        requestedBy: risk,
        reason: 'tune',
        status: 'active',
        approvers: [risk2],
        endedBecause: null,
      },
    },
  });
  const now = new Date('2026-03-01T00:00:00.000Z');
  const ofVersion2 = run({ strategyParameterVersion: 2 });

  it('given one in force and a change within its bounds, applies it at once with the standing approval as authority', () => {
    const [only] = adoptionIntents(ofVersion2, { strategy, policy: policy('s1'), now });
    expect(only?.command).toEqual({
      type: 'ApplyParametersUnderStandingApproval',
      strategyId: 's1',
      changeId: adoptionRequestId('o1'),
      by: ADOPTION_PARTY,
      parameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
      fromVersion: 2,
      authority: {
        type: 'standing_approval',
        standingApprovalId: 'sa1',
        maxRelativeChange: 0.25,
        grantedBy: [risk2],
        optimizationId: 'o1',
      },
    });
  });

  it('given a change beyond its bounds, an expired one, another strategy or an older version, asks four eyes', () => {
    const fourEyes = (context: Parameters<typeof adoptionIntents>[1], r = ofVersion2) =>
      adoptionIntents(r, context)[0]?.command['type'];
    expect(fourEyes({ strategy, policy: policy('s1', 0.05), now })).toBe('RequestParameterChange');
    expect(
      fourEyes({ strategy, policy: policy('s1'), now: new Date('2026-05-01T00:00:00Z') }),
    ).toBe('RequestParameterChange');
    expect(fourEyes({ strategy, policy: policy('s2'), now })).toBe('RequestParameterChange');
    expect(fourEyes({ strategy, policy: policy(null), now })).toBe(
      'ApplyParametersUnderStandingApproval',
    );
    expect(
      fourEyes({ strategy, policy: policy('s1'), now }, run({ strategyParameterVersion: 1 })),
    ).toBe('RequestParameterChange');
  });

  it('given a result that failed the gate, changes nothing even inside one', () => {
    expect(
      adoptionIntents(run({ strategyParameterVersion: 2 }, false), {
        strategy,
        policy: policy('s1'),
        now,
      }),
    ).toEqual([]);
  });
});

describe('the standing approvals bridge (four eyes)', () => {
  const at = new Date('2026-03-01T00:00:00.000Z');
  const risk = { id: 'apikey:risk1', role: 'risk_officer' };
  it('a requested standing approval opens a standing_approval request; its approval grants it', () => {
    const [open] = standingApprovalIntents({
      type: 'StandingApprovalRequested',
      data: {
        standingApprovalId: 'sa1',
        requestId: 'r1',
        strategyId: null,
        maxRelativeChange: 0.25,
        expiresAt: '2026-03-31T00:00:00.000Z',
        requestedBy: risk,
        reason: 'tune',
        requestedAt: at.toISOString(),
      },
      recordedAt: at,
    });
    expect(open?.streamId).toBe('approval-r1');
    expect(open?.command).toMatchObject({
      type: 'RequestApproval',
      kind: 'standing_approval',
      subject: { type: 'standing_approval', id: 'sa1' },
      requester: risk,
    });
    const outcome = {
      requestId: 'r1',
      kind: 'standing_approval',
      subject: { type: 'standing_approval', id: 'sa1' },
    };
    const [grant] = standingApprovalIntents({
      type: 'ApprovalApproved',
      data: { ...outcome, payload: {}, approvers: [{ id: 'apikey:risk2', role: 'risk_officer' }] },
      recordedAt: at,
    });
    expect(grant?.command).toMatchObject({
      type: 'GrantStandingApproval',
      standingApprovalId: 'sa1',
    });
    const [decline] = standingApprovalIntents({
      type: 'ApprovalRejected',
      data: { ...outcome, by: { id: 'apikey:risk2', role: 'risk_officer' }, reason: 'no' },
      recordedAt: at,
    });
    expect(decline?.command).toMatchObject({
      type: 'DeclineStandingApproval',
      outcome: 'rejected',
    });
  });

  it('the outcome of another kind of request decides nothing', () => {
    expect(
      standingApprovalIntents({
        type: 'ApprovalApproved',
        data: {
          requestId: 'r2',
          kind: 'parameter_change',
          subject: { type: 'strategy', id: 's1' },
          payload: {},
          approvers: [],
        },
        recordedAt: at,
      }),
    ).toEqual([]);
  });
});

describe('the optimizer', () => {
  it('starts unfinished runs not running here, up to its capacity, oldest first', () => {
    expect(toStart(['a', 'b', 'c'], new Set(), 1)).toEqual(['a']);
    expect(toStart(['a', 'b', 'c'], new Set(['a']), 2)).toEqual(['b']);
    expect(toStart(['a', 'b'], new Set(['x', 'y']), 2)).toEqual([]);
  });
});
