import { domainEventOf } from '../core/eventstore/typed-events.js';
import type pg from 'pg';

import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import {
  evolveSnapshot,
  parseRiskEvent,
  RISK_EVENT_TYPES,
  type RiskEvent,
} from '../core/risk/aggregate.js';
import { emptySnapshot, type RiskSnapshot } from '../core/risk/checks.js';
import { scopeKey } from '../core/risk/common.js';
import { type FoldedTradingState } from '../core/risk/trading-state.js';
import { orderEvent } from '../core/trading/orders.js';
import type { PostgresProjection } from './projection.js';

/**
 * The risk read side (docs/risk.md, "API and read models"): the snapshot the engine reads, trading
 * states, limits, trigger history, denied orders and the kill switch, from the `risk` category and
 * the order streams' OrderDenied; plus the live view in Redis (`risk:states`, `risk:killswitch`).
 */

const RISK_TYPES: ReadonlySet<string> = new Set(RISK_EVENT_TYPES);
const ORDER_TYPES = new Set(['OrderSubmitted', 'OrderAccepted', 'OrderRejected', 'OrderDenied']);
export const at = (ms: number): Date => new Date(ms);
/** A risk event of the log, narrowed; undefined for any other event. */
export function riskEventOf(event: RecordedEvent): RiskEvent | undefined {
  if (categoryOf(event.streamId) !== 'risk' || !RISK_TYPES.has(event.type)) return undefined;
  return parseRiskEvent(domainEventOf(event));
}

/** The code of a denial reason: the part before `:` (`CODE: key=value, ...`). */
export const denialCode = (reason: string): string => {
  const colon = reason.indexOf(':');
  return (colon < 0 ? reason : reason.slice(0, colon)).trim();
};

export type StateEvent = Extract<RiskEvent, { type: 'TradingStateChanged' | 'TradingStateReset' }>;

/** Reason and request of a state event (its base and temporary state come from the fold). */
export const stateRow = (event: StateEvent): { reason: string; requestId: string | null } =>
  event.type === 'TradingStateReset'
    ? { reason: `reset by request ${event.data.requestId}`, requestId: event.data.requestId }
    : { reason: event.data.reason, requestId: null };

// eslint-disable-next-line max-lines-per-function -- one switch over the risk event types
async function applyRiskEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
  risk: RiskEvent,
  /** The scope's state after a state event, folded in the snapshot; null when it was ignored. */
  folded: FoldedTradingState | null,
): Promise<void> {
  const actor = event.metadata.actor;
  switch (risk.type) {
    case 'LimitsSet':
    case 'LimitsChanged': {
      const d = risk.data;
      const requestId = risk.type === 'LimitsChanged' ? risk.data.requestId : null;
      await client.query(
        `INSERT INTO ${schema}.risk_limits AS l (scope_type, scope_id, limits, version, request_id,
                                                 changed_by, changed_at, position)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7)
         ON CONFLICT (scope_type, scope_id) DO UPDATE SET
           limits = $3, version = l.version + 1, request_id = $4, changed_by = $5, changed_at = $6,
           position = $7`,
        [d.scopeType, d.scopeId, d.limits, requestId, actor, at(d.time), event.position],
      );
      return;
    }
    case 'TradingStateChanged':
    case 'TradingStateReset': {
      // Folded by foldTradingState (core/risk/trading-state.ts), like the snapshot and the live view.
      if (!folded) return;
      const d = risk.data;
      const row = stateRow(risk);
      await client.query(
        `INSERT INTO ${schema}.risk_states AS s (scope_type, scope_id, state, temporary, reason,
                                                 changed_by, changed_at, reset_at, request_id,
                                                 position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (scope_type, scope_id) DO UPDATE SET
           state = $3, temporary = $4, reason = $5, changed_by = $6, changed_at = $7,
           reset_at = $8, request_id = $9, position = $10`,
        [
          d.scopeType,
          d.scopeId,
          folded.base,
          folded.temporary === null ? null : JSON.stringify(folded.temporary),
          row.reason,
          actor,
          at(d.time),
          folded.resetAt === null ? null : at(folded.resetAt),
          row.requestId,
          event.position,
        ],
      );
      return;
    }
    case 'RiskTriggerFired': {
      const d = risk.data;
      await client.query(
        `INSERT INTO ${schema}.risk_triggers (trigger_id, rule, scope_type, scope_id, threshold,
                                              observed, reference, value, window_from, window_to,
                                              action, until, actor, fired_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (trigger_id) DO NOTHING`,
        [
          d.triggerId,
          d.rule,
          d.scopeType,
          d.scopeId,
          d.threshold,
          d.observed,
          d.reference,
          d.value,
          at(d.window.from),
          at(d.window.to),
          d.action,
          d.until === null ? null : at(d.until),
          actor,
          at(d.time),
          event.position,
        ],
      );
      return;
    }
    case 'KillSwitchEngaged': {
      const d = risk.data;
      // Engaged already: an escalation to flattening keeps the first engagement's time.
      await client.query(
        `INSERT INTO ${schema}.risk_kill_switch AS k (id, engaged, flatten, since, engaged_by, reason,
                                                      released_by, released_at, release_request_id,
                                                      position)
         VALUES (1, true, $1, $2, $3, $4, NULL, NULL, NULL, $5)
         ON CONFLICT (id) DO UPDATE SET
           flatten = CASE WHEN k.engaged THEN k.flatten OR $1 ELSE $1 END,
           since = CASE WHEN k.engaged THEN k.since ELSE $2 END,
           engaged = true, engaged_by = $3, reason = $4, released_by = NULL, released_at = NULL,
           release_request_id = NULL, position = $5`,
        [d.flatten, at(d.time), actor, d.reason, event.position],
      );
      return;
    }
    case 'KillSwitchReleased': {
      const d = risk.data;
      await client.query(
        `INSERT INTO ${schema}.risk_kill_switch AS k (id, engaged, flatten, since, engaged_by, reason,
                                                      released_by, released_at, release_request_id,
                                                      position)
         VALUES (1, false, false, NULL, NULL, '', $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET
           engaged = false, flatten = false, released_by = $1, released_at = $2,
           release_request_id = $3, position = $4`,
        [d.approvers.map((a) => a.id).join(', '), at(d.time), d.requestId, event.position],
      );
      return;
    }
    case 'ExitRulesSet':
    case 'ExitLevelsMoved':
    case 'ExitTriggered':
      // In the snapshot (rules, levels); exits themselves are orders with their reason.
      return;
  }
}

async function applyOrderEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  const parsed = orderEvent.parse(domainEventOf(event));
  const { clientOrderId } = parsed.data;
  switch (parsed.type) {
    case 'OrderSubmitted': {
      // What a denial needs of its order; kept only until the order is accepted, rejected or denied.
      const o = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.risk_order_refs (client_order_id, portfolio_id, strategy_id, symbol,
                                                side, quantity)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_order_id) DO NOTHING`,
        [clientOrderId, o.portfolioId, o.strategyId, o.symbol, o.side, o.quantity],
      );
      return;
    }
    case 'OrderDenied': {
      const { reason, time } = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.risk_denied_orders (client_order_id, portfolio_id, strategy_id, symbol,
                                                   side, quantity, code, reason, denied_at, actor,
                                                   position)
         SELECT $1, r.portfolio_id, r.strategy_id, r.symbol, r.side, r.quantity, $2, $3, $4, $5, $6
           FROM (VALUES (1)) AS one
           LEFT JOIN ${schema}.risk_order_refs r ON r.client_order_id = $1
         ON CONFLICT (client_order_id) DO NOTHING`,
        [clientOrderId, denialCode(reason), reason, at(time), event.metadata.actor, event.position],
      );
      break;
    }
    default:
      break;
  }
  await client.query(`DELETE FROM ${schema}.risk_order_refs WHERE client_order_id = $1`, [
    clientOrderId,
  ]);
}

/** The snapshot the engine and the checks read, and each scope's state and limits. */
const scopeTables = (schema: string): string => `
  CREATE TABLE ${schema}.risk_snapshot (
    id       smallint PRIMARY KEY CHECK (id = 1),
    snapshot jsonb    NOT NULL,
    position bigint   NOT NULL
  );
  CREATE TABLE ${schema}.risk_states (
    scope_type text        NOT NULL,
    scope_id   text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    temporary  jsonb,
    reason     text        NOT NULL,
    changed_by text        NOT NULL,
    changed_at timestamptz NOT NULL,
    reset_at   timestamptz,
    request_id text,
    position   bigint      NOT NULL,
    PRIMARY KEY (scope_type, scope_id)
  );
  CREATE TABLE ${schema}.risk_limits (
    scope_type text        NOT NULL,
    scope_id   text        NOT NULL,
    limits     jsonb       NOT NULL,
    version    integer     NOT NULL,
    request_id text,
    changed_by text        NOT NULL,
    changed_at timestamptz NOT NULL,
    position   bigint      NOT NULL,
    PRIMARY KEY (scope_type, scope_id)
  )`;

/**
 * Triggers and denials (listed by rule, scope, code and time), the kill switch, and the orders
 * a denial may refer to.
 */
const eventTables = (schema: string): string => `
  CREATE TABLE ${schema}.risk_triggers (
    trigger_id  text             PRIMARY KEY,
    rule        text             NOT NULL,
    scope_type  text             NOT NULL,
    scope_id    text             NOT NULL,
    threshold   double precision NOT NULL,
    observed    double precision NOT NULL,
    reference   double precision NOT NULL,
    value       double precision NOT NULL,
    window_from timestamptz      NOT NULL,
    window_to   timestamptz      NOT NULL,
    action      text             NOT NULL,
    until       timestamptz,
    actor       text             NOT NULL,
    fired_at    timestamptz      NOT NULL,
    position    bigint           NOT NULL UNIQUE
  );
  CREATE INDEX ON ${schema}.risk_triggers (rule, position);
  CREATE INDEX ON ${schema}.risk_triggers (scope_type, scope_id, position);
  CREATE INDEX ON ${schema}.risk_triggers (fired_at);
  CREATE TABLE ${schema}.risk_denied_orders (
    client_order_id text             PRIMARY KEY,
    portfolio_id    text,
    strategy_id     text,
    symbol          text,
    side            text,
    quantity        double precision,
    code            text             NOT NULL,
    reason          text             NOT NULL,
    denied_at       timestamptz      NOT NULL,
    actor           text             NOT NULL,
    position        bigint           NOT NULL UNIQUE
  );
  CREATE INDEX ON ${schema}.risk_denied_orders (code, position);
  CREATE INDEX ON ${schema}.risk_denied_orders (strategy_id, position);
  CREATE INDEX ON ${schema}.risk_denied_orders (symbol, position);
  CREATE INDEX ON ${schema}.risk_denied_orders (denied_at);
  CREATE TABLE ${schema}.risk_kill_switch (
    id                 smallint    PRIMARY KEY CHECK (id = 1),
    engaged            boolean     NOT NULL,
    flatten            boolean     NOT NULL,
    since              timestamptz,
    engaged_by         text,
    reason             text        NOT NULL,
    released_by        text,
    released_at        timestamptz,
    release_request_id text,
    position           bigint      NOT NULL
  );
  CREATE TABLE ${schema}.risk_order_refs (
    client_order_id text             PRIMARY KEY,
    portfolio_id    text             NOT NULL,
    strategy_id     text             NOT NULL,
    symbol          text             NOT NULL,
    side            text             NOT NULL,
    quantity        double precision NOT NULL
  )`;

/**
 * `qcat_read.risk_snapshot` (one row: every risk event folded with evolveSnapshot; the engine
 * reads it), `risk_states`, `risk_limits`, `risk_triggers`, `risk_kill_switch` and
 * `risk_denied_orders` (OrderDenied with its order's book, side and quantity from OrderSubmitted,
 * kept in `risk_order_refs` while the order is in flight: projections are not ordered among
 * themselves, so this one keeps its own).
 */
export const riskProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'risk',
  version: 1,
  // What apply acts on: the risk streams' events and the order streams' submissions and denials.
  handles: [...RISK_TYPES, ...ORDER_TYPES],
  tables: [
    'risk_snapshot',
    'risk_states',
    'risk_limits',
    'risk_triggers',
    'risk_denied_orders',
    'risk_kill_switch',
    'risk_order_refs',
  ],

  async setup(client, schema) {
    await client.query(scopeTables(schema));
    await client.query(eventTables(schema));
    await client.query(
      `INSERT INTO ${schema}.risk_snapshot (id, snapshot, position) VALUES (1, $1, 0)`,
      [JSON.stringify(emptySnapshot())],
    );
  },

  async apply(client, schema, events) {
    let snapshot: RiskSnapshot | undefined;
    let last: bigint | undefined;
    for (const event of events) {
      const category = categoryOf(event.streamId);
      if (category === 'order' && ORDER_TYPES.has(event.type)) {
        await applyOrderEvent(client, schema, event);
        continue;
      }
      const risk = riskEventOf(event);
      if (!risk) continue;
      if (!snapshot) {
        const { rows } = await client.query<{ snapshot: RiskSnapshot }>(
          `SELECT snapshot FROM ${schema}.risk_snapshot WHERE id = 1 FOR UPDATE`,
        );
        snapshot = rows[0]?.snapshot ?? emptySnapshot();
      }
      const before = snapshot;
      snapshot = evolveSnapshot(snapshot, risk);
      last = event.position;
      const folded =
        risk.type === 'TradingStateChanged' || risk.type === 'TradingStateReset'
          ? snapshot === before
            ? null
            : (snapshot.states[scopeKey({ type: risk.data.scopeType, id: risk.data.scopeId })] ??
              null)
          : null;
      await applyRiskEvent(client, schema, event, risk, folded);
    }
    if (snapshot && last !== undefined)
      await client.query(
        `UPDATE ${schema}.risk_snapshot SET snapshot = $1, position = $2 WHERE id = 1`,
        [JSON.stringify(snapshot), last],
      );
  },
};
