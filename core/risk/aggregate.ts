import type { Aggregate } from '../aggregates.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import type { RiskSnapshot } from './checks.js';
import { scopeKey } from './common.js';
import { exits, exitsKey, type ExitsEvent } from './exits.js';
import { killSwitch, type KillSwitchEvent } from './kill-switch.js';
import { limits, type LimitsEvent } from './limits.js';
import { foldTradingState, tradingStates, type TradingStateEvent } from './trading-state.js';

/**
 * The `risk` stream category as one whole: which decider owns a stream, one aggregate that folds
 * any risk stream (for the audit API: register it as `risk` in core/aggregates.ts), and the fold
 * of every risk event into the engine's RiskSnapshot.
 */

export type RiskEvent = LimitsEvent | TradingStateEvent | KillSwitchEvent | ExitsEvent;

/** The deciders by the part of the stream id after `risk-`. */
const DECIDERS = {
  limits,
  state: tradingStates,
  killswitch: killSwitch,
  exits,
} as const;
export type RiskStreamKind = keyof typeof DECIDERS;

const EVENT_KIND: Readonly<Record<RiskEvent['type'], RiskStreamKind>> = {
  LimitsSet: 'limits',
  LimitsChanged: 'limits',
  RiskTriggerFired: 'state',
  TradingStateChanged: 'state',
  TradingStateReset: 'state',
  KillSwitchEngaged: 'killswitch',
  KillSwitchReleased: 'killswitch',
  ExitRulesSet: 'exits',
  ExitLevelsMoved: 'exits',
  ExitTriggered: 'exits',
};
export const RISK_EVENT_TYPES = Object.keys(EVENT_KIND) as RiskEvent['type'][];

/** The kind of a risk stream id (`risk-limits-…` → limits), or undefined for another stream. */
export function riskStreamKind(streamId: string): RiskStreamKind | undefined {
  const match = /^risk-(limits|state|killswitch|exits)-./.exec(streamId);
  return match ? (match[1] as RiskStreamKind) : undefined;
}

/** The decider of a risk stream, for the command handler. */
export function riskDeciderOf(streamId: string): Decider<unknown, unknown, DomainEvent> {
  const kind = riskStreamKind(streamId);
  if (!kind) throw new QcatError('UNKNOWN_RISK_STREAM', `${streamId} is not a risk stream`);
  return DECIDERS[kind];
}

/** Narrows any stored risk event (throws on an unknown type or shape). */
export function parseRiskEvent(event: DomainEvent): RiskEvent {
  const kind = (EVENT_KIND as Record<string, RiskStreamKind | undefined>)[event.type];
  if (!kind) throw new QcatError('UNKNOWN_RISK_EVENT', `${event.type} is not a risk event`);
  return DECIDERS[kind].parseEvent(event);
}

export type RiskStreamState = { kind: 'none' } | { kind: RiskStreamKind; state: unknown };

/** Folds any risk stream: the state is that of the stream's decider, tagged with its kind. */
export const riskAggregate: Aggregate<RiskStreamState> = {
  name: 'risk',
  initialState: () => ({ kind: 'none' }),
  evolve: (current, event) => {
    const parsed = parseRiskEvent(event);
    const kind = EVENT_KIND[parsed.type];
    const decider: Decider<unknown, unknown, DomainEvent> = DECIDERS[kind];
    const state = current.kind === kind ? current.state : decider.initialState();
    return { kind, state: decider.evolve(state, parsed) };
  },
};

/**
 * One risk event more in the snapshot (a new object; the input is not changed). The engine folds
 * the `risk` category into it and hands it to createRiskCheck / evaluateBreakers / evaluateExit.
 * RiskTriggerFired and ExitTriggered change nothing here (their effects have events of their own).
 */
export function evolveSnapshot(snapshot: RiskSnapshot, event: RiskEvent): RiskSnapshot {
  switch (event.type) {
    case 'LimitsSet':
    case 'LimitsChanged': {
      const key = scopeKey({ type: event.data.scopeType, id: event.data.scopeId });
      return { ...snapshot, limits: { ...snapshot.limits, [key]: event.data.limits } };
    }
    case 'TradingStateChanged':
    case 'TradingStateReset': {
      const key = scopeKey({ type: event.data.scopeType, id: event.data.scopeId });
      const current = snapshot.states[key] ?? { base: 'ACTIVE', temporary: null, resetAt: null };
      const state = foldTradingState(current, event);
      return state ? { ...snapshot, states: { ...snapshot.states, [key]: state } } : snapshot;
    }
    case 'KillSwitchEngaged': {
      const was = snapshot.killSwitch;
      return {
        ...snapshot,
        killSwitch: {
          engaged: true,
          flatten: was.engaged ? was.flatten || event.data.flatten : event.data.flatten,
          since: was.engaged ? was.since : event.data.time,
        },
      };
    }
    case 'KillSwitchReleased':
      return { ...snapshot, killSwitch: { engaged: false, flatten: false, since: null } };
    case 'ExitRulesSet':
    case 'ExitLevelsMoved': {
      const { portfolioId, strategyId, symbol } = event.data;
      const key = exitsKey(portfolioId, strategyId, symbol);
      const was = snapshot.exits[key] ?? { rules: null, levels: null };
      const next =
        event.type === 'ExitRulesSet'
          ? { ...was, rules: event.data.rules }
          : {
              ...was,
              levels: {
                openedAt: event.data.openedAt,
                stopPrice: event.data.stopPrice,
                takeProfitPrice: event.data.takeProfitPrice,
              },
            };
      return { ...snapshot, exits: { ...snapshot.exits, [key]: next } };
    }
    case 'RiskTriggerFired':
    case 'ExitTriggered':
      return snapshot;
  }
}
