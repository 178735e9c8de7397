import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import { evolveSnapshot } from './aggregate.js';
import { emptySnapshot } from './checks.js';
import { tradingStateStream } from './common.js';
import {
  effectiveState,
  tradingStates,
  type RiskTriggerFiredData,
  type TradingStateCommand,
  type TradingStateEvent,
} from './trading-state.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const admin: Party = { id: 'apikey:admin1', role: 'admin' };
const trader: Party = { id: 'apikey:trader1', role: 'trader' };
const T = 1_700_000_000_000;
const HOUR = 3_600_000;

const strategy = { type: 'strategy', id: 's1' } as const;
const symbol = { type: 'symbol', id: 'BTCUSDT' } as const;

const drawdown: RiskTriggerFiredData = {
  triggerId: `strategy_drawdown-strategy-s1-${T}`,
  rule: 'strategy_drawdown',
  scopeType: 'strategy',
  scopeId: 's1',
  threshold: 0.1,
  observed: 0.12,
  reference: 1000,
  value: 880,
  window: { from: T - HOUR, to: T },
  action: 'HALTED',
  until: null,
  time: T,
};

const priceBreak = (time: number, until: number): RiskTriggerFiredData => ({
  triggerId: `price_breaker-symbol-BTCUSDT-${time}`,
  rule: 'price_breaker',
  scopeType: 'symbol',
  scopeId: 'BTCUSDT',
  threshold: 0.1,
  observed: 0.15,
  reference: 100,
  value: 85,
  window: { from: time - HOUR, to: time },
  action: 'HALTED',
  until,
  time,
});

const changed = (
  overrides: Partial<Extract<TradingStateEvent, { type: 'TradingStateChanged' }>['data']>,
): TradingStateEvent => ({
  type: 'TradingStateChanged',
  data: {
    scopeType: 'strategy',
    scopeId: 's1',
    from: 'ACTIVE',
    to: 'HALTED',
    base: 'HALTED',
    temporary: null,
    cause: 'trigger',
    triggerId: drawdown.triggerId,
    by: null,
    reason: 'STRATEGY_DRAWDOWN: observed=0.12, threshold=0.1',
    time: T,
    resetSeen: null,
    ...overrides,
  },
});

const halted = [{ type: 'RiskTriggerFired', data: drawdown } as const, changed({})];

describe('trading state: triggers', () => {
  it('given ACTIVE, a drawdown trigger is recorded and halts the strategy', () => {
    expect(tradingStateStream(strategy)).toBe('risk-state-strategy-s1');
    given(tradingStates, []).when({ type: 'FireTrigger', trigger: drawdown }).then(halted);
  });

  it('the same trigger again writes nothing', () => {
    given(tradingStates, halted).when({ type: 'FireTrigger', trigger: drawdown }).then([]);
  });

  it('a trigger no stricter than the state is recorded but changes nothing', () => {
    const reducing: RiskTriggerFiredData = {
      ...drawdown,
      triggerId: 'daily_loss-strategy-s1-1',
      rule: 'daily_loss',
      action: 'REDUCING',
      until: T + HOUR,
    };
    given(tradingStates, halted)
      .when({ type: 'FireTrigger', trigger: reducing })
      .then([{ type: 'RiskTriggerFired', data: reducing }]);
  });

  it('a FLATTEN trigger halts', () => {
    const flatten = { ...drawdown, triggerId: 'x', action: 'FLATTEN' as const };
    const events = given(tradingStates, [])
      .when({ type: 'FireTrigger', trigger: flatten })
      .then([{ type: 'RiskTriggerFired', data: flatten }, changed({ triggerId: 'x' })]);
    expect(events).toHaveLength(2);
  });
});

describe('trading state: temporary states (cooldowns)', () => {
  const until = T + HOUR;
  const fired = priceBreak(T, until);
  const cooling = changed({
    scopeType: 'symbol',
    scopeId: 'BTCUSDT',
    base: 'ACTIVE',
    temporary: { state: 'HALTED', until, triggerId: fired.triggerId },
    triggerId: fired.triggerId,
    reason: 'PRICE_BREAKER: observed=0.15, threshold=0.1',
  });
  const history = [{ type: 'RiskTriggerFired', data: fired } as const, cooling];

  it('a price breaker halts the symbol until its cooldown ends, then it trades by itself', () => {
    const { state } = given(tradingStates, []);
    expect(effectiveState(state, T)).toBe('ACTIVE');
    given(tradingStates, []).when({ type: 'FireTrigger', trigger: fired }).then(history);
    const after = given(tradingStates, history).state;
    expect(effectiveState(after, until - 1)).toBe('HALTED');
    expect(effectiveState(after, until)).toBe('ACTIVE');
  });

  it('EndCooldown records the end, not before it is due', () => {
    given(tradingStates, history)
      .when({ type: 'EndCooldown', scope: symbol, time: until - 1 })
      .then([]);
    given(tradingStates, history)
      .when({ type: 'EndCooldown', scope: symbol, time: until })
      .then([
        changed({
          scopeType: 'symbol',
          scopeId: 'BTCUSDT',
          from: 'HALTED',
          to: 'ACTIVE',
          base: 'ACTIVE',
          temporary: null,
          cause: 'cooldown',
          triggerId: fired.triggerId,
          reason: `COOLDOWN_ELAPSED: until=${until}`,
          time: until,
        }),
      ]);
    given(tradingStates, []).when({ type: 'EndCooldown', scope: symbol, time: until }).then([]);
  });

  it('a later breach extends the cooldown, an earlier end does not shorten it', () => {
    const shorter = priceBreak(T + 1, until - 1);
    given(tradingStates, history)
      .when({ type: 'FireTrigger', trigger: shorter })
      .then([{ type: 'RiskTriggerFired', data: shorter }]);
    const longer = priceBreak(T + 2, until + HOUR);
    const [, extended] = given(tradingStates, history)
      .when({ type: 'FireTrigger', trigger: longer })
      .then([
        { type: 'RiskTriggerFired', data: longer },
        changed({
          scopeType: 'symbol',
          scopeId: 'BTCUSDT',
          from: 'HALTED',
          to: 'HALTED',
          base: 'ACTIVE',
          temporary: { state: 'HALTED', until: until + HOUR, triggerId: longer.triggerId },
          triggerId: longer.triggerId,
          reason: 'PRICE_BREAKER: observed=0.15, threshold=0.1',
          time: T + 2,
        }),
      ]);
    expect(extended).toBeDefined();
  });

  it('after the cooldown the scope returns to its permanent state', () => {
    const reducing = changed({
      scopeType: 'symbol',
      scopeId: 'BTCUSDT',
      to: 'REDUCING',
      base: 'REDUCING',
      cause: 'manual',
      triggerId: null,
      by: risk,
      reason: 'watch',
      time: T - 1,
    });
    const events = given(tradingStates, [reducing])
      .when({ type: 'FireTrigger', trigger: fired })
      .then([
        { type: 'RiskTriggerFired', data: fired },
        changed({
          scopeType: 'symbol',
          scopeId: 'BTCUSDT',
          from: 'REDUCING',
          base: 'REDUCING',
          temporary: { state: 'HALTED', until, triggerId: fired.triggerId },
          triggerId: fired.triggerId,
          reason: 'PRICE_BREAKER: observed=0.15, threshold=0.1',
        }),
      ]);
    const state = given(tradingStates, [reducing, ...events]).state;
    expect(state.base).toBe('REDUCING');
    expect(effectiveState(state, T)).toBe('HALTED');
    expect(effectiveState(state, until)).toBe('REDUCING');
  });
});

describe('trading state: people', () => {
  const move = (to: 'ACTIVE' | 'REDUCING' | 'HALTED', by: Party = risk) =>
    ({ type: 'MoveTradingState', scope: strategy, to, by, reason: 'news', time: T + 5 }) as const;

  it('a risk officer or an admin makes it stricter', () => {
    given(tradingStates, [])
      .when(move('REDUCING'))
      .then([
        changed({
          to: 'REDUCING',
          base: 'REDUCING',
          cause: 'manual',
          triggerId: null,
          by: risk,
          reason: 'news',
          time: T + 5,
        }),
      ]);
    given(tradingStates, []).when(move('HALTED', trader)).thenRefuses('RISK_ROLE_REQUIRED');
    given(tradingStates, [])
      .when(move('HALTED', admin))
      .then([
        changed({ cause: 'manual', triggerId: null, by: admin, reason: 'news', time: T + 5 }),
      ]);
  });

  it('the same state writes nothing; a looser one is a reset that needs an approval', () => {
    given(tradingStates, halted).when(move('HALTED')).then([]);
    given(tradingStates, halted)
      .when(move('ACTIVE'))
      .thenRefuses('RESET_REQUIRES_APPROVAL', /risk_reset/);
  });
});

describe('trading state: an automatic change decided from a stale copy', () => {
  // A risk officer halts the strategy; an engine that had not seen it yet ends a cooldown or
  // fires a temporary trigger with the base it knew (ACTIVE).
  const officer = changed({ cause: 'manual', triggerId: null, by: risk, reason: 'news' });
  const stale = [
    changed({ from: 'REDUCING', to: 'ACTIVE', base: 'ACTIVE', cause: 'cooldown', time: T + 9 }),
    changed({
      to: 'REDUCING',
      base: 'ACTIVE',
      temporary: { state: 'REDUCING', until: T + HOUR, triggerId: 't' },
      time: T + 9,
    }),
  ];

  it('never loosens the base a person set, in the stream and in the snapshot', () => {
    for (const event of stale) {
      const folded = [officer, event].reduce(
        (state, e) => tradingStates.evolve(state, e),
        tradingStates.initialState(),
      );
      expect(folded.base).toBe('HALTED');
      const snapshot = [officer, event].reduce(
        (state, e) => evolveSnapshot(state, tradingStates.parseEvent(e)),
        emptySnapshot(),
      );
      expect(snapshot.states['strategy:s1']?.base).toBe('HALTED');
      expect(snapshot.states['strategy:s1']?.temporary).toEqual(
        event.type === 'TradingStateChanged' ? event.data.temporary : undefined,
      );
    }
  });

  it('an automatic change still tightens the base', () => {
    const tighten = changed({ from: 'REDUCING', to: 'HALTED', base: 'HALTED', cause: 'trigger' });
    const reducing = changed({ to: 'REDUCING', base: 'REDUCING', cause: 'manual', by: risk });
    const folded = [reducing, tighten].reduce(
      (state, e) => tradingStates.evolve(state, e),
      tradingStates.initialState(),
    );
    expect(folded.base).toBe('HALTED');
  });
});

describe('trading state: reset', () => {
  const reset = (approvers: Party[], to?: 'ACTIVE' | 'REDUCING'): TradingStateCommand => ({
    type: 'ResetTradingState',
    scope: strategy,
    requestId: 'r9',
    approvers,
    time: T + 10,
    ...(to ? { to } : {}),
  });

  it('an approved reset makes the scope ACTIVE (or REDUCING) and is remembered', () => {
    const [event] = given(tradingStates, halted)
      .when(reset([risk]))
      .then([
        {
          type: 'TradingStateReset',
          data: {
            scopeType: 'strategy',
            scopeId: 's1',
            from: 'HALTED',
            to: 'ACTIVE',
            requestId: 'r9',
            approvers: [risk],
            time: T + 10,
          },
        },
      ]);
    const state = given(tradingStates, [...halted, event!]).state;
    expect(state).toMatchObject({ base: 'ACTIVE', temporary: null, resetAt: T + 10 });
    given(tradingStates, [...halted, event!])
      .when(reset([risk]))
      .then([]);
    const [toReducing] = given(tradingStates, halted)
      .when(reset([risk], 'REDUCING'))
      .then([
        {
          type: 'TradingStateReset',
          data: {
            scopeType: 'strategy',
            scopeId: 's1',
            from: 'HALTED',
            to: 'REDUCING',
            requestId: 'r9',
            approvers: [risk],
            time: T + 10,
          },
        },
      ]);
    expect(toReducing).toBeDefined();
  });

  it('needs a risk officer among the approvers, and cannot halt', () => {
    given(tradingStates, halted)
      .when(reset([admin]))
      .thenRefuses('APPROVAL_INCOMPLETE');
    // A command from outside the type system (the API) asking to reset to HALTED.
    const toHalted = { ...reset([risk]), to: 'HALTED' } as unknown as TradingStateCommand;
    given(tradingStates, halted).when(toHalted).thenRefuses('INVALID_RESET');
  });
});

describe('trading state: an automatic change decided before the last reset', () => {
  // The strategy was halted and an approved reset released it at T + 10. An engine whose copy
  // predates the reset (resetAt null) then decides a trigger and a cooldown from it.
  const released: TradingStateEvent[] = [
    ...halted,
    {
      type: 'TradingStateReset',
      data: {
        scopeType: 'strategy',
        scopeId: 's1',
        from: 'HALTED',
        to: 'ACTIVE',
        requestId: 'r9',
        approvers: [risk],
        time: T + 10,
      },
    },
  ];
  const later = { ...drawdown, triggerId: 'strategy_drawdown-strategy-s1-later', time: T + 20 };
  const staleTrigger = given(tradingStates, [])
    .when({ type: 'FireTrigger', trigger: later })
    .then([
      { type: 'RiskTriggerFired', data: later },
      changed({ triggerId: later.triggerId, time: T + 20 }),
    ]);
  const temporaryTrigger: RiskTriggerFiredData = {
    ...later,
    triggerId: 'tmp',
    action: 'REDUCING',
    until: T + HOUR,
  };
  const fold = (events: readonly TradingStateEvent[]) => ({
    stream: events.reduce(
      (state, e) => tradingStates.evolve(state, tradingStates.parseEvent(e)),
      tradingStates.initialState(),
    ),
    snapshot: events.reduce(
      (state, e) => evolveSnapshot(state, tradingStates.parseEvent(e)),
      emptySnapshot(),
    ).states['strategy:s1'],
  });

  it('is ignored: the scope stays as the reset left it, in the stream and in the snapshot', () => {
    const temporary = given(tradingStates, [])
      .when({ type: 'FireTrigger', trigger: temporaryTrigger })
      .then([
        { type: 'RiskTriggerFired', data: temporaryTrigger },
        changed({
          triggerId: 'tmp',
          to: 'REDUCING',
          base: 'ACTIVE',
          temporary: { state: 'REDUCING', until: T + HOUR, triggerId: 'tmp' },
          time: T + 20,
          reason: 'STRATEGY_DRAWDOWN: observed=0.12, threshold=0.1',
        }),
      ]);
    const cooldown = changed({
      from: 'HALTED',
      to: 'HALTED',
      base: 'HALTED',
      cause: 'cooldown',
      time: T + 30,
    });
    for (const stale of [staleTrigger, temporary, [cooldown]]) {
      const { stream, snapshot } = fold([...released, ...stale]);
      expect(stream).toMatchObject({ base: 'ACTIVE', temporary: null, resetAt: T + 10 });
      expect(snapshot).toEqual({ base: 'ACTIVE', temporary: null, resetAt: T + 10 });
      expect(effectiveState(stream, T + 21)).toBe('ACTIVE');
    }
  });

  it('a trigger decided after the reset still halts; an event without resetSeen folds as before', () => {
    const fresh = given(tradingStates, released)
      .when({ type: 'FireTrigger', trigger: later })
      .then([
        { type: 'RiskTriggerFired', data: later },
        changed({ triggerId: later.triggerId, time: T + 20, resetSeen: T + 10 }),
      ]);
    expect(fold([...released, ...fresh]).stream.base).toBe('HALTED');
    const { resetSeen: _, ...legacy } = changed({ time: T + 20 }).data as { resetSeen?: unknown };
    const old = { type: 'TradingStateChanged', data: legacy } as TradingStateEvent;
    expect(fold([...released, old]).snapshot?.base).toBe('HALTED');
  });
});
