import { describe, expect, it } from 'vitest';
import type { Party } from '../../core/approvals/approval.js';
import type { JsonObject, RecordedEvent } from '../../core/eventstore/event-store.js';
import { KILL_SWITCH_STREAM } from '../../core/risk/common.js';
import { APPROVAL_FLOW_HANDLES, approvalFlowSteps } from './decision.js';

const trader: Party = { id: 'apikey:trader', role: 'trader' };
const officer: Party = { id: 'apikey:risk', role: 'risk_officer' };
const AT = new Date('2026-12-07T06:00:00.000Z');

/** An event of the log, as the runner hands it to the flow. */
const given = (streamId: string, type: string, data: JsonObject): RecordedEvent => ({
  eventId: '00000000-0000-4000-8000-000000000001',
  type,
  data,
  metadata: { actor: trader.id },
  streamId,
  revision: 0n,
  position: 7n,
  recordedAt: AT,
  hash: '',
});
const then = (event: RecordedEvent) =>
  approvalFlowSteps(event).map((step) => ({
    target: step.target,
    streamId: step.streamId,
    command: step.command,
    ...(step.target === 'refuse' ? { code: step.code } : {}),
  }));

describe('approval flow (given / when / then)', () => {
  it('a strategy submitted for review → an activation request on the approval stream', () => {
    const event = given('strategy-s1', 'StrategySubmittedForReview', {
      strategyId: 's1',
      requestId: 'r1',
      requestedBy: trader,
    });
    expect(then(event)).toEqual([
      {
        target: 'approval',
        streamId: 'approval-r1',
        command: {
          type: 'RequestApproval',
          requestId: 'r1',
          kind: 'strategy_activation',
          subject: { type: 'strategy', id: 's1' },
          requester: trader,
          payload: {},
          reason: 'activate the strategy',
          now: AT.toISOString(),
        },
      },
    ]);
  });

  it('a retired strategy → each open request withdrawn, in order', () => {
    const event = given('strategy-s1', 'StrategyRetired', {
      strategyId: 's1',
      reason: 'abandoned',
      from: 'draft',
      openRequests: ['r1', 'r2'],
    });
    expect(then(event).map((s) => [s.streamId, s.command.type])).toEqual([
      ['approval-r1', 'WithdrawApproval'],
      ['approval-r2', 'WithdrawApproval'],
    ]);
  });

  it('an approved activation → the strategy approved, naming the approvers', () => {
    const event = given('approval-r1', 'ApprovalApproved', {
      requestId: 'r1',
      kind: 'strategy_activation',
      subject: { type: 'strategy', id: 's1' },
      payload: {},
      approvers: [officer],
    });
    expect(then(event)).toEqual([
      {
        target: 'strategy',
        streamId: 'strategy-s1',
        command: {
          type: 'ApproveActivation',
          strategyId: 's1',
          requestId: 'r1',
          approvers: [officer],
        },
      },
    ]);
  });

  it('an expired request → the strategy declines it, saying when', () => {
    const event = given('approval-r1', 'ApprovalExpired', {
      requestId: 'r1',
      kind: 'mode_change',
      subject: { type: 'strategy', id: 's1' },
      expiredAt: AT.toISOString(),
    });
    expect(then(event)[0]?.command).toMatchObject({
      type: 'DeclineRequest',
      outcome: 'expired',
      reason: `the request expired at ${AT.toISOString()}`,
    });
  });

  it('an approved release of the kill switch → the release, at the approval time', () => {
    const event = given('approval-r9', 'ApprovalApproved', {
      requestId: 'r9',
      kind: 'risk_reset',
      subject: { type: 'risk_killswitch', id: 'global' },
      payload: {},
      approvers: [officer],
    });
    expect(then(event)).toEqual([
      {
        target: 'risk',
        streamId: KILL_SWITCH_STREAM,
        command: {
          type: 'ReleaseKillSwitch',
          requestId: 'r9',
          approvers: [officer],
          time: AT.getTime(),
        },
      },
    ]);
  });

  it('a risk request on a malformed scope → refused with its code, nothing issued', () => {
    const event = given('approval-r5', 'ApprovalApproved', {
      requestId: 'r5',
      kind: 'risk_reset',
      subject: { type: 'risk_state', id: 'no-colon' },
      payload: {},
      approvers: [officer],
    });
    expect(then(event)).toEqual([
      {
        target: 'refuse',
        streamId: 'risk-risk_state',
        command: { type: 'ResetTradingState' },
        code: 'INVALID_SCOPE',
      },
    ]);
  });

  it('a request opened or granted by one of two → nothing yet', () => {
    const event = given('approval-r1', 'ApprovalGranted', {
      requestId: 'r1',
      approver: officer,
      comment: 'one of two',
    });
    expect(then(event)).toEqual([]);
    expect(APPROVAL_FLOW_HANDLES).not.toContain('ApprovalGranted');
  });
});
