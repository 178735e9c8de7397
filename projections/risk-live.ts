import { scopeKey, type RiskScopeType, type TradingState } from '../core/risk/common.js';
import { foldTradingState, type Temporary } from '../core/risk/trading-state.js';
import type { RiskEvent } from '../core/risk/aggregate.js';
import type { RedisProjection } from './projection.js';
import { at, riskEventOf, stateRow, type StateEvent } from './risk.js';

/** The row of `risk_states` / `risk:states`: the base state and the temporary one. */
export interface LiveRiskState {
  scopeType: RiskScopeType;
  scopeId: string;
  base: TradingState;
  temporary: Temporary | null;
  /** Epoch ms of the last approved reset, or null. */
  resetAt: number | null;
  reason: string;
  /** Epoch ms of the change. */
  time: number;
  position: string;
}

/** Keys of the live view under its generation's prefix. */
export const liveRiskKeys = (keyPrefix: string) => ({
  /** Hash: field `<scopeType>:<id>` → JSON LiveRiskState. */
  states: `${keyPrefix}risk:states`,
  /**
   * Hash: engaged ('true' | 'false'), flatten, since (ISO, while engaged), by, reason, position;
   * after a release: releasedAt, releaseRequestId.
   */
  killSwitch: `${keyPrefix}risk:killswitch`,
});

const stateScopeKey = (event: StateEvent): string =>
  scopeKey({ type: event.data.scopeType, id: event.data.scopeId });

/**
 * The live risk state in Redis, for dashboards and the engine's hot path: `risk:states` (one field
 * per scope that ever changed) and `risk:killswitch`. States are folded with foldTradingState from
 * the rows `load` read, like `risk_states`. An engagement sets `since` only when the switch was off
 * (HSETNX after a release deleted the hash), so an escalation keeps it.
 */
export const liveRiskView: RedisProjection<Map<string, LiveRiskState>> = {
  kind: 'redis',
  name: 'live_risk',
  version: 2,
  handles: [
    'TradingStateChanged',
    'TradingStateReset',
    'KillSwitchEngaged',
    'KillSwitchReleased',
  ] satisfies RiskEvent['type'][],
  async load(redis, keyPrefix, events) {
    const scopes = new Set<string>();
    for (const event of events) {
      const risk = riskEventOf(event);
      if (risk?.type === 'TradingStateChanged' || risk?.type === 'TradingStateReset')
        scopes.add(stateScopeKey(risk));
    }
    const rows = new Map<string, LiveRiskState>();
    if (scopes.size === 0) return rows;
    const fields = [...scopes];
    const values = await redis.hmget(liveRiskKeys(keyPrefix).states, ...fields);
    fields.forEach((field, index) => {
      const value = values[index];
      if (value) rows.set(field, JSON.parse(value) as LiveRiskState);
    });
    return rows;
  },
  apply(multi, keyPrefix, events, loaded) {
    const keys = liveRiskKeys(keyPrefix);
    const rows = new Map(loaded);
    for (const event of events) {
      const risk = riskEventOf(event);
      if (!risk) continue;
      const position = event.position.toString();
      switch (risk.type) {
        case 'TradingStateChanged':
        case 'TradingStateReset': {
          const d = risk.data;
          const field = stateScopeKey(risk);
          const current = rows.get(field) ?? { base: 'ACTIVE', temporary: null, resetAt: null };
          const folded = foldTradingState(current, risk);
          if (!folded) break;
          const state: LiveRiskState = {
            scopeType: d.scopeType,
            scopeId: d.scopeId,
            ...folded,
            reason: stateRow(risk).reason,
            time: d.time,
            position,
          };
          rows.set(field, state);
          multi.hset(keys.states, { [field]: JSON.stringify(state) });
          break;
        }
        case 'KillSwitchEngaged': {
          const d = risk.data;
          multi.hsetnx(keys.killSwitch, 'since', at(d.time).toISOString());
          multi.hset(keys.killSwitch, {
            engaged: 'true',
            flatten: String(d.flatten),
            by: event.metadata.actor,
            reason: d.reason,
            position,
          });
          multi.hdel(keys.killSwitch, 'releasedAt', 'releaseRequestId');
          break;
        }
        case 'KillSwitchReleased': {
          const d = risk.data;
          multi.del(keys.killSwitch);
          multi.hset(keys.killSwitch, {
            engaged: 'false',
            flatten: 'false',
            releasedAt: at(d.time).toISOString(),
            releaseRequestId: d.requestId,
            position,
          });
          break;
        }
        default:
          break;
      }
    }
  },
};
