import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import {
  APPROVAL_RULES,
  APPROVAL_TTL_MS,
  approvalBlocker,
  approvals,
  type ApprovalEvent,
  type ApprovalKind,
  type Party,
} from './approval.js';

const NOW = '2026-11-26T10:00:00.000Z';
const LATER = '2026-11-26T11:00:00.000Z';
const EXPIRES = new Date(Date.parse(NOW) + APPROVAL_TTL_MS).toISOString();
const subject = { type: 'strategy', id: 's1' };

const trader: Party = { id: 'apikey:trader1', role: 'trader' };
const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const admin: Party = { id: 'apikey:admin1', role: 'admin' };
const analyst: Party = { id: 'apikey:analyst1', role: 'analyst' };
const viewer: Party = { id: 'apikey:viewer1', role: 'viewer' };

const requested = (kind: ApprovalKind, requester: Party = trader): ApprovalEvent => ({
  type: 'ApprovalRequested',
  data: {
    requestId: 'r1',
    kind,
    subject,
    requester,
    rule: APPROVAL_RULES[kind],
    payload: {},
    reason: 'please',
    requestedAt: NOW,
    expiresAt: EXPIRES,
  },
});
const granted = (approver: Party, comment = ''): ApprovalEvent => ({
  type: 'ApprovalGranted',
  data: { requestId: 'r1', approver, comment },
});
const outcome = (kind: ApprovalKind) => ({ requestId: 'r1', kind, subject });

const grant = (approver: Party, now = LATER) =>
  ({ type: 'GrantApproval', requestId: 'r1', approver, comment: 'ok', now }) as const;

describe('approvals: request', () => {
  it('given nothing, when requested, then the rule of the kind is copied in with an expiry', () => {
    given(approvals, [])
      .when({
        type: 'RequestApproval',
        requestId: 'r1',
        kind: 'strategy_activation',
        subject,
        requester: trader,
        payload: {},
        reason: 'please',
        now: NOW,
      })
      .then([requested('strategy_activation')]);
  });

  it('given a request, when the same id is requested again, then nothing is written', () => {
    given(approvals, [requested('strategy_activation')])
      .when({
        type: 'RequestApproval',
        requestId: 'r1',
        kind: 'strategy_activation',
        subject,
        requester: trader,
        payload: {},
        reason: 'please',
        now: LATER,
      })
      .then([]);
  });
});

describe('approvals: four eyes', () => {
  it('refuses the requester approving their own request', () => {
    given(approvals, [requested('strategy_activation', admin)])
      .when(grant(admin))
      .thenRefuses('SELF_APPROVAL_FORBIDDEN', /four eyes/);
  });

  it('refuses a role the rule does not name, naming the eligible ones', () => {
    given(approvals, [requested('strategy_activation')])
      .when(grant(viewer))
      .thenRefuses('APPROVER_ROLE_NOT_ELIGIBLE', /eligible: risk_officer, admin/);
  });

  it('given one approver needed, when another eligible person grants, then it is approved', () => {
    given(approvals, [requested('strategy_activation')])
      .when(grant(risk))
      .then([
        { type: 'ApprovalGranted', data: { requestId: 'r1', approver: risk, comment: 'ok' } },
        {
          type: 'ApprovalApproved',
          data: { ...outcome('strategy_activation'), payload: {}, approvers: [risk] },
        },
      ]);
  });

  it('promotion to live: one grant is not enough', () => {
    given(approvals, [requested('mode_change')])
      .when(grant(admin))
      .then([
        { type: 'ApprovalGranted', data: { requestId: 'r1', approver: admin, comment: 'ok' } },
      ]);
  });

  it('promotion to live: the same person cannot count twice', () => {
    given(approvals, [requested('mode_change'), granted(risk)])
      .when(grant(risk))
      .thenRefuses('ALREADY_APPROVED');
  });

  it('promotion to live: the second approver must be a risk officer when the first was not', () => {
    given(approvals, [requested('mode_change'), granted(admin)])
      .when(grant(analyst))
      .thenRefuses('APPROVAL_NEEDS_ROLE', /risk_officer/);
  });

  it('promotion to live: two distinct approvers including a risk officer approve it', () => {
    given(approvals, [requested('mode_change'), granted(admin)])
      .when(grant(risk))
      .then([
        { type: 'ApprovalGranted', data: { requestId: 'r1', approver: risk, comment: 'ok' } },
        {
          type: 'ApprovalApproved',
          data: { ...outcome('mode_change'), payload: {}, approvers: [admin, risk] },
        },
      ]);
  });

  it('promotion to live: two risk officers also satisfy the rule', () => {
    const events = given(approvals, [requested('mode_change'), granted(risk)])
      .when(grant(risk2))
      .then([
        { type: 'ApprovalGranted', data: { requestId: 'r1', approver: risk2, comment: 'ok' } },
        {
          type: 'ApprovalApproved',
          data: { ...outcome('mode_change'), payload: {}, approvers: [risk, risk2] },
        },
      ]);
    expect(events).toHaveLength(2);
  });

  it('the queue check and the decider agree', () => {
    const state = given(approvals, [requested('mode_change'), granted(admin)]).state;
    if (state.status === 'none') throw new Error('expected a request');
    expect(approvalBlocker(state, analyst)?.code).toBe('APPROVAL_NEEDS_ROLE');
    expect(approvalBlocker(state, risk)).toBeUndefined();
    expect(approvalBlocker(state, trader)?.code).toBe('SELF_APPROVAL_FORBIDDEN');
  });
});

describe('approvals: ends', () => {
  it('refuses granting after the expiry instant', () => {
    given(approvals, [requested('strategy_activation')])
      .when(grant(risk, EXPIRES))
      .thenRefuses('APPROVAL_EXPIRED');
  });

  it('refuses granting an approval that does not exist', () => {
    given(approvals, []).when(grant(risk)).thenRefuses('APPROVAL_NOT_FOUND');
  });

  it('refuses granting a request that was rejected, naming its state', () => {
    given(approvals, [
      requested('strategy_activation'),
      {
        type: 'ApprovalRejected',
        data: { ...outcome('strategy_activation'), by: risk, reason: 'no' },
      },
    ])
      .when(grant(admin))
      .thenRefuses('APPROVAL_NOT_PENDING', /already rejected/);
  });

  it('an eligible approver rejects, with the reason', () => {
    given(approvals, [requested('strategy_activation')])
      .when({ type: 'RejectApproval', requestId: 'r1', by: risk, reason: 'too risky', now: LATER })
      .then([
        {
          type: 'ApprovalRejected',
          data: { ...outcome('strategy_activation'), by: risk, reason: 'too risky' },
        },
      ]);
  });

  it('the requester cannot reject (they withdraw)', () => {
    given(approvals, [requested('strategy_activation', admin)])
      .when({ type: 'RejectApproval', requestId: 'r1', by: admin, reason: 'x', now: LATER })
      .thenRefuses('SELF_REJECTION_FORBIDDEN');
  });

  it('an ineligible role cannot reject', () => {
    given(approvals, [requested('strategy_activation')])
      .when({ type: 'RejectApproval', requestId: 'r1', by: analyst, reason: 'x', now: LATER })
      .thenRefuses('APPROVER_ROLE_NOT_ELIGIBLE');
  });

  it('the requester withdraws', () => {
    given(approvals, [requested('strategy_activation')])
      .when({ type: 'WithdrawApproval', requestId: 'r1', by: trader, reason: 'changed my mind' })
      .then([
        {
          type: 'ApprovalWithdrawn',
          data: { ...outcome('strategy_activation'), by: trader, reason: 'changed my mind' },
        },
      ]);
  });

  it('someone else (not an admin) cannot withdraw', () => {
    given(approvals, [requested('strategy_activation')])
      .when({ type: 'WithdrawApproval', requestId: 'r1', by: risk, reason: 'x' })
      .thenRefuses('NOT_REQUESTER');
  });

  it('withdrawing a request that already ended writes nothing', () => {
    given(approvals, [
      requested('strategy_activation'),
      granted(risk),
      {
        type: 'ApprovalApproved',
        data: { ...outcome('strategy_activation'), payload: {}, approvers: [risk] },
      },
    ])
      .when({ type: 'WithdrawApproval', requestId: 'r1', by: trader, reason: 'x' })
      .then([]);
  });

  it('expires once due, and not before', () => {
    given(approvals, [requested('parameter_change')])
      .when({ type: 'ExpireApproval', requestId: 'r1', now: LATER })
      .thenRefuses('APPROVAL_NOT_DUE');
    given(approvals, [requested('parameter_change')])
      .when({ type: 'ExpireApproval', requestId: 'r1', now: EXPIRES })
      .then([
        { type: 'ApprovalExpired', data: { ...outcome('parameter_change'), expiredAt: EXPIRES } },
      ]);
  });

  it('risk-limit changes are approved by a risk officer only', () => {
    given(approvals, [requested('risk_limit_change')])
      .when(grant(admin))
      .thenRefuses('APPROVER_ROLE_NOT_ELIGIBLE');
  });
});
