import { describe, expect, it } from 'vitest';
import { foldEvents } from '../aggregates.js';
import type { Party } from '../approvals/approval.js';
import { QcatError } from '../errors.js';
import type { RecordedEvent } from '../eventstore/event-store.js';
import {
  RISK_EVENT_TYPES,
  evolveSnapshot,
  parseRiskEvent,
  riskAggregate,
  riskDeciderOf,
  riskStreamKind,
  type RiskEvent,
} from './aggregate.js';
import { createRiskCheck, emptySnapshot, type RiskSnapshot } from './checks.js';
import { KILL_SWITCH_STREAM, exitsStream, limitsStream, tradingStateStream } from './common.js';
import { exits } from './exits.js';
import { killSwitch } from './kill-switch.js';
import { DEFAULT_LIMITS, limits } from './limits.js';
import { tradingStates } from './trading-state.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const T = 1_700_000_000_000;

const recorded = (streamId: string, event: RiskEvent, revision: number): RecordedEvent => ({
  eventId: `00000000-0000-4000-8000-${revision.toString().padStart(12, '0')}`,
  type: event.type,
  data: event.data,
  metadata: { actor: 'u' },
  streamId,
  revision: BigInt(revision),
  position: BigInt(revision + 1),
  recordedAt: new Date(T),
  hash: '0'.repeat(64),
});

describe('risk streams', () => {
  it('finds the decider of each risk stream by its id', () => {
    expect(riskStreamKind(limitsStream({ type: 'symbol', id: 'BTCUSDT' }))).toBe('limits');
    expect(riskStreamKind(tradingStateStream({ type: 'strategy', id: 's-1' }))).toBe('state');
    expect(riskStreamKind(KILL_SWITCH_STREAM)).toBe('killswitch');
    expect(riskStreamKind(exitsStream('p1', 's1', 'BTCUSDT'))).toBe('exits');
    expect(riskStreamKind('risk-other-1')).toBeUndefined();
    expect(riskStreamKind('order-1')).toBeUndefined();
    expect(riskDeciderOf('risk-limits-portfolio-p1')).toBe(limits);
    expect(riskDeciderOf('risk-state-symbol-BTCUSDT')).toBe(tradingStates);
    expect(riskDeciderOf(KILL_SWITCH_STREAM)).toBe(killSwitch);
    expect(riskDeciderOf('risk-exits-p1-s1-BTCUSDT')).toBe(exits);
    expect(() => riskDeciderOf('strategy-1')).toThrow(QcatError);
  });

  it('parses every risk event type and refuses others', () => {
    expect(RISK_EVENT_TYPES).toHaveLength(10);
    expect(() => parseRiskEvent({ type: 'OrderFilled', data: {} })).toThrow(/not a risk event/);
    expect(() => parseRiskEvent({ type: 'LimitsSet', data: { scopeType: 'x' } })).toThrow();
  });

  it('folds any risk stream into its decider state, for the audit API', () => {
    const events = killSwitch.decide(
      { type: 'EngageKillSwitch', by: risk, reason: 'crash', flatten: true, time: T },
      killSwitch.initialState(),
    );
    const state = foldEvents(
      riskAggregate,
      events.map((e, i) => recorded(KILL_SWITCH_STREAM, e, i)),
    );
    expect(state).toEqual({
      kind: 'killswitch',
      state: {
        engaged: true,
        flatten: true,
        by: risk,
        reason: 'crash',
        since: T,
        releases: [],
      },
    });
    expect(foldEvents(riskAggregate, [])).toEqual({ kind: 'none' });
  });
});

describe('the risk snapshot', () => {
  it('folds limits, states, the kill switch and exits; the check follows it live', () => {
    let snapshot: RiskSnapshot = emptySnapshot();
    const check = createRiskCheck(() => snapshot);
    const apply = (events: RiskEvent[]) => {
      snapshot = events.reduce(evolveSnapshot, snapshot);
    };
    const order = {
      clientOrderId: 'o',
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: 'BTCUSDT',
      side: 'buy' as const,
      type: 'market' as const,
      quantity: 5,
      limitPrice: null,
      stopPrice: null,
      reduceOnly: false,
    };
    const context = {
      portfolioId: 'p1',
      strategyId: 's1',
      symbol: 'BTCUSDT',
      time: T + 100,
      referencePrice: 100,
      equity: 10_000,
      cash: 10_000,
      positionQuantity: 0,
      openOrders: 0,
    };
    const portfolio = { books: [] };
    expect(check(order, context, portfolio)).toEqual({ ok: true });

    apply(
      limits.decide(
        {
          type: 'ApplyApprovedLimitChange',
          scope: { type: 'strategy', id: 's1' },
          requestId: 'r1',
          approvers: [risk2],
          changes: { maxOrderNotional: 400 },
          time: T,
        },
        limits.initialState(),
      ),
    );
    expect(snapshot.limits['strategy:s1']).toEqual({
      ...DEFAULT_LIMITS.strategy,
      maxOrderNotional: 400,
    });
    expect(check(order, context, portfolio)).toEqual({
      ok: false,
      reason: 'NOTIONAL_EXCEEDS_MAX_PER_ORDER: scope=strategy:s1, notional=500, max=400',
    });

    const small = { ...order, quantity: 1 };
    const scope = { type: 'portfolio', id: 'p1' } as const;
    const halt = tradingStates.decide(
      { type: 'MoveTradingState', scope, to: 'HALTED', by: risk, reason: 'news', time: T },
      tradingStates.initialState(),
    );
    apply(halt);
    expect(snapshot.states['portfolio:p1']).toEqual({
      base: 'HALTED',
      temporary: null,
      resetAt: null,
    });
    expect(check(small, context, portfolio)).toEqual({
      ok: false,
      reason: 'TRADING_HALTED: scope=portfolio:p1',
    });
    const halted = halt.reduce((s, e) => tradingStates.evolve(s, e), tradingStates.initialState());
    apply(
      tradingStates.decide(
        {
          type: 'ResetTradingState',
          scope,
          requestId: 'r2',
          approvers: [risk2],
          time: T + 50,
        },
        halted,
      ),
    );
    expect(snapshot.states['portfolio:p1']).toEqual({
      base: 'ACTIVE',
      temporary: null,
      resetAt: T + 50,
    });
    expect(check(small, context, portfolio)).toEqual({ ok: true });

    const engaged = killSwitch.decide(
      { type: 'EngageKillSwitch', by: risk, reason: 'crash', flatten: false, time: T + 60 },
      killSwitch.initialState(),
    );
    apply(engaged);
    expect(snapshot.killSwitch).toEqual({ engaged: true, flatten: false, since: T + 60 });
    expect(check(small, context, portfolio)).toEqual({
      ok: false,
      reason: `KILL_SWITCH_ENGAGED: since=${new Date(T + 60).toISOString()}`,
    });
    apply(
      killSwitch.decide(
        { type: 'EngageKillSwitch', by: risk2, reason: 'worse', flatten: true, time: T + 70 },
        engaged.reduce((s, e) => killSwitch.evolve(s, e), killSwitch.initialState()),
      ),
    );
    expect(snapshot.killSwitch).toEqual({ engaged: true, flatten: true, since: T + 60 });
    apply([
      { type: 'KillSwitchReleased', data: { requestId: 'r3', approvers: [risk2], time: T + 80 } },
    ]);
    expect(snapshot.killSwitch).toEqual({ engaged: false, flatten: false, since: null });
    expect(check(small, context, portfolio)).toEqual({ ok: true });

    const book = { portfolioId: 'p1', strategyId: 's1', symbol: 'BTCUSDT' };
    const stop = { stopLoss: 0.02, takeProfit: null, trailing: null, atrStop: null };
    apply([
      { type: 'ExitRulesSet', data: { ...book, rules: stop, by: risk, time: T } },
      {
        type: 'ExitLevelsMoved',
        data: {
          ...book,
          openedAt: T,
          stopPrice: 99,
          takeProfitPrice: null,
          by: risk,
          reason: 'x',
          time: T,
        },
      },
    ]);
    expect(snapshot.exits['p1:s1:BTCUSDT']).toEqual({
      rules: stop,
      levels: { openedAt: T, stopPrice: 99, takeProfitPrice: null },
    });
    // Trigger and exit records change nothing in the snapshot.
    const before = snapshot;
    apply([
      {
        type: 'ExitTriggered',
        data: {
          ...book,
          kind: 'STOP_LOSS',
          clientOrderId: 'x',
          quantity: 1,
          level: 99,
          reason: 'STOP_LOSS',
          openedAt: T,
          time: T,
        },
      },
    ]);
    expect(snapshot).toBe(before);
  });
});
