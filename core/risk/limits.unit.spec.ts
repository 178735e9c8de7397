import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import {
  APPROVAL_RULES,
  approvals,
  type ApprovalEvent,
  type ApprovalKind,
  type Party,
} from '../approvals/approval.js';
import { ValidationError } from '../errors.js';
import { limitsStream } from './common.js';
import {
  DEFAULT_LIMITS,
  atLeastAsStrict,
  limits,
  limitsOf,
  validateLimitChanges,
  type LimitsEvent,
} from './limits.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const admin: Party = { id: 'apikey:admin1', role: 'admin' };
const trader: Party = { id: 'apikey:trader1', role: 'trader' };
const scope = { type: 'portfolio', id: 'p1' } as const;
const ref = { scopeType: 'portfolio', scopeId: 'p1' } as const;
const T = 1_700_000_000_000;

const set: LimitsEvent = {
  type: 'LimitsSet',
  data: { ...ref, limits: { ...DEFAULT_LIMITS.portfolio }, by: risk, time: T },
};

const change = (changes: object, approvers: Party[] = [risk], requestId = 'r1') =>
  ({
    type: 'ApplyApprovedLimitChange',
    scope,
    requestId,
    approvers,
    changes,
    time: T + 1,
  }) as const;

describe('limits: defaults and streams', () => {
  it('has the defaults of the issue', () => {
    expect(DEFAULT_LIMITS.portfolio).toMatchObject({
      maxPositionShareOfEquity: 0.2,
      maxLeverage: 10,
      dailyLossLimit: 0.05,
      maxDrawdown: 0.15,
    });
    expect(DEFAULT_LIMITS.strategy.maxDrawdown).toBe(0.1);
    expect(DEFAULT_LIMITS.symbol.priceBreaker).toEqual({
      maxMove: 0.1,
      windowMs: 3_600_000,
      cooldownMs: 3_600_000,
    });
    expect(limitsStream(scope)).toBe('risk-limits-portfolio-p1');
    expect(limitsOf(limits.initialState(), 'strategy')).toEqual(DEFAULT_LIMITS.strategy);
  });
});

describe('limits: SetLimits', () => {
  it('given nothing, sets the defaults', () => {
    given(limits, []).when({ type: 'SetLimits', scope, by: risk, time: T }).then([set]);
  });

  it('a stricter value needs no approval; a looser one does', () => {
    given(limits, [])
      .when({
        type: 'SetLimits',
        scope,
        limits: { maxLeverage: 5, maxOrderNotional: 1000 },
        by: risk,
        time: T,
      })
      .then([
        {
          type: 'LimitsSet',
          data: {
            ...ref,
            limits: { ...DEFAULT_LIMITS.portfolio, maxLeverage: 5, maxOrderNotional: 1000 },
            by: risk,
            time: T,
          },
        },
      ]);
    given(limits, [])
      .when({ type: 'SetLimits', scope, limits: { maxLeverage: 20 }, by: risk, time: T })
      .thenRefuses('LIMIT_LOOSER_THAN_DEFAULT', /maxLeverage/);
    given(limits, [])
      .when({ type: 'SetLimits', scope, limits: { maxDrawdown: null }, by: risk, time: T })
      .thenRefuses('LIMIT_LOOSER_THAN_DEFAULT', /maxDrawdown/);
  });

  it('only a risk officer or an admin sets limits', () => {
    given(limits, [])
      .when({ type: 'SetLimits', scope, by: admin, time: T })
      .then([{ ...set, data: { ...set.data, by: admin } }]);
    given(limits, [])
      .when({ type: 'SetLimits', scope, by: trader, time: T })
      .thenRefuses('RISK_ROLE_REQUIRED');
  });

  it('once set: the same again writes nothing, other values need an approval', () => {
    given(limits, [set]).when({ type: 'SetLimits', scope, by: risk, time: T }).then([]);
    given(limits, [set])
      .when({ type: 'SetLimits', scope, limits: { maxLeverage: 5 }, by: risk, time: T })
      .thenRefuses('LIMITS_ALREADY_SET');
  });

  it('refuses a scope without an id', () => {
    given(limits, [])
      .when({ type: 'SetLimits', scope: { type: 'portfolio', id: '' }, by: risk, time: T })
      .thenRefuses('INVALID_SCOPE');
  });
});

describe('limits: ApplyApprovedLimitChange', () => {
  it('applies an approved change, recording what the limits were', () => {
    given(limits, [set])
      .when(change({ maxLeverage: 3, orderRate: { maxOrders: 10, windowMs: 60_000 } }))
      .then([
        {
          type: 'LimitsChanged',
          data: {
            ...ref,
            requestId: 'r1',
            approvers: [risk],
            changes: { maxLeverage: 3, orderRate: { maxOrders: 10, windowMs: 60_000 } },
            previous: { maxLeverage: 10, orderRate: null },
            limits: {
              ...DEFAULT_LIMITS.portfolio,
              maxLeverage: 3,
              orderRate: { maxOrders: 10, windowMs: 60_000 },
            },
            time: T + 1,
          },
        },
      ]);
  });

  it('loosens too, and on a scope never set it starts from the defaults', () => {
    const [event] = given(limits, [])
      .when(change({ maxDrawdown: null, maxLeverage: 20 }))
      .then([
        {
          type: 'LimitsChanged',
          data: {
            ...ref,
            requestId: 'r1',
            approvers: [risk],
            changes: { maxDrawdown: null, maxLeverage: 20 },
            previous: { maxDrawdown: 0.15, maxLeverage: 10 },
            limits: { ...DEFAULT_LIMITS.portfolio, maxDrawdown: null, maxLeverage: 20 },
            time: T + 1,
          },
        },
      ]);
    // The same request again (a replayed approval flow) writes nothing.
    given(limits, [event!])
      .when(change({ maxLeverage: 20 }))
      .then([]);
  });

  it('needs the approval of a risk officer', () => {
    given(limits, [set])
      .when(change({ maxLeverage: 3 }, [admin]))
      .thenRefuses('APPROVAL_INCOMPLETE');
    given(limits, [set])
      .when(change({ maxLeverage: 3 }, []))
      .thenRefuses('APPROVAL_INCOMPLETE');
    given(limits, [set])
      .when(change({ maxLeverage: 3 }, [risk], ''))
      .thenRefuses('APPROVAL_INCOMPLETE');
  });

  it('refuses invalid values and limits the scope does not have', () => {
    given(limits, [set])
      .when(change({ dailyLossLimit: 1.5 }))
      .thenRefuses('INVALID_LIMITS');
    given(limits, [set])
      .when(change({ maxLeverage: -1 }))
      .thenRefuses('INVALID_LIMITS');
    given(limits, [set])
      .when(change({ nonsense: 1 }))
      .thenRefuses('INVALID_LIMITS');
    given(limits, [set])
      .when(change({ priceBreaker: { maxMove: 0.1, windowMs: 1, cooldownMs: 1 } }))
      .thenRefuses('LIMIT_NOT_APPLICABLE', /symbol/);
  });
});

describe('limits: validation', () => {
  it('checks names, ranges and the scope, with a specific code', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).code;
      }
      return 'accepted';
    };
    expect(code(() => validateLimitChanges('portfolio', {}))).toBe('INVALID_LIMITS');
    expect(
      code(() =>
        validateLimitChanges('portfolio', { orderRate: { maxOrders: 101, windowMs: 1000 } }),
      ),
    ).toBe('INVALID_LIMITS');
    expect(code(() => validateLimitChanges('symbol', { maxDrawdown: 0.2 }))).toBe(
      'LIMIT_NOT_APPLICABLE',
    );
    expect(validateLimitChanges('symbol', { maxOrderNotional: 500 })).toEqual({
      maxOrderNotional: 500,
    });
  });

  it('knows which value is stricter', () => {
    expect(atLeastAsStrict('maxLeverage', 5, 10)).toBe(true);
    expect(atLeastAsStrict('maxLeverage', 11, 10)).toBe(false);
    expect(atLeastAsStrict('maxOrderNotional', 100, null)).toBe(true);
    expect(atLeastAsStrict('maxDrawdown', null, 0.1)).toBe(false);
    const breaker = { maxMove: 0.1, windowMs: 60_000, cooldownMs: 60_000 };
    expect(atLeastAsStrict('priceBreaker', { ...breaker, maxMove: 0.05 }, breaker)).toBe(true);
    expect(atLeastAsStrict('priceBreaker', { ...breaker, cooldownMs: 1 }, breaker)).toBe(false);
    const rate = { maxOrders: 10, windowMs: 60_000 };
    expect(atLeastAsStrict('orderRate', { maxOrders: 5, windowMs: 120_000 }, rate)).toBe(true);
    expect(atLeastAsStrict('orderRate', { maxOrders: 5, windowMs: 1_000 }, rate)).toBe(false);
  });
});

describe('approval rules of risk requests', () => {
  const NOW = '2026-01-01T00:00:00.000Z';
  const requested = (kind: ApprovalKind, requester: Party): ApprovalEvent => ({
    type: 'ApprovalRequested',
    data: {
      requestId: 'r1',
      kind,
      subject: { type: 'risk_limits', id: 'portfolio:p1' },
      requester,
      rule: APPROVAL_RULES[kind],
      payload: { changes: { maxLeverage: 3 } },
      reason: 'tighten',
      requestedAt: NOW,
      expiresAt: '2026-01-08T00:00:00.000Z',
    },
  });
  const grant = (approver: Party) =>
    ({ type: 'GrantApproval', requestId: 'r1', approver, comment: '', now: NOW }) as const;

  it.each(['risk_limit_change', 'risk_reset'] as const)(
    '%s: four eyes, and the approver is a risk officer',
    (kind) => {
      expect(APPROVAL_RULES[kind].mustInclude).toEqual(['risk_officer']);
      given(approvals, [requested(kind, risk)])
        .when(grant(risk))
        .thenRefuses('SELF_APPROVAL_FORBIDDEN');
      given(approvals, [requested(kind, risk)])
        .when(grant(admin))
        .thenRefuses('APPROVER_ROLE_NOT_ELIGIBLE');
      const events = given(approvals, [requested(kind, risk)])
        .when(grant(risk2))
        .then([
          { type: 'ApprovalGranted', data: { requestId: 'r1', approver: risk2, comment: '' } },
          {
            type: 'ApprovalApproved',
            data: {
              requestId: 'r1',
              kind,
              subject: { type: 'risk_limits', id: 'portfolio:p1' },
              payload: { changes: { maxLeverage: 3 } },
              approvers: [risk2],
            },
          },
        ]);
      expect(events).toHaveLength(2);
    },
  );
});
