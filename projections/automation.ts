import type pg from 'pg';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { PostgresProjection } from './projection.js';

const ACTOR_PREFIX = 'automation:';
const SKIPPED = new Set(['AutomationActionRefused', 'AutomationActionHeld']);

const text = (data: RecordedEvent['data'], key: string): string | null => {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const value = data[key];
  return typeof value === 'string' ? value : null;
};

/**
 * What each process manager did (the events written as `automation:<name>`) and did not do
 * (refusals and holds, core/capabilities/decisions.ts), newest first per manager: the "last
 * decisions with their reasons" of `GET /api/v1/automation`.
 */
export const automationDecisionsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'automation_decisions',
  version: 1,
  tables: ['automation_decisions'],

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.automation_decisions (
        position    bigint      PRIMARY KEY,
        recorded_at timestamptz NOT NULL,
        manager     text        NOT NULL,
        outcome     text        NOT NULL CHECK (outcome IN ('acted', 'refused', 'held')),
        event_type  text        NOT NULL,
        stream_id   text        NOT NULL,
        reason      text,
        cause       text
      );
      CREATE INDEX ON ${schema}.automation_decisions (manager, position DESC);`);
  },

  async apply(client, schema, events) {
    const rows = events.filter((e) => e.metadata.actor.startsWith(ACTOR_PREFIX));
    if (rows.length === 0) return;
    const skipped = (e: RecordedEvent): boolean => SKIPPED.has(e.type);
    await client.query(
      `INSERT INTO ${schema}.automation_decisions
         (position, recorded_at, manager, outcome, event_type, stream_id, reason, cause)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[])
       ON CONFLICT (position) DO NOTHING`,
      [
        rows.map((e) => e.position.toString()),
        rows.map((e) => e.recordedAt.toISOString()),
        rows.map((e) => e.metadata.actor.slice(ACTOR_PREFIX.length)),
        rows.map((e) =>
          e.type === 'AutomationActionHeld'
            ? 'held'
            : e.type === 'AutomationActionRefused'
              ? 'refused'
              : 'acted',
        ),
        rows.map((e) => (skipped(e) ? (text(e.data, 'command') ?? e.type) : e.type)),
        rows.map((e) => (skipped(e) ? (text(e.data, 'streamId') ?? e.streamId) : e.streamId)),
        rows.map((e) => text(e.data, 'reason')),
        rows.map((e) =>
          typeof e.metadata.causationId === 'string' ? e.metadata.causationId : null,
        ),
      ],
    );
  },
};

export interface AutomationDecisionRow {
  position: string;
  recordedAt: Date;
  outcome: 'acted' | 'refused' | 'held';
  /** The event the action wrote, or the command that was refused or held. */
  type: string;
  streamId: string;
  reason: string | null;
  cause: string | null;
}

/** The newest `limit` decisions of each named process manager. */
export async function latestDecisions(
  pool: pg.Pool,
  managers: readonly string[],
  limit: number,
): Promise<Map<string, AutomationDecisionRow[]>> {
  const { rows } = await pool.query<AutomationDecisionRow & { manager: string }>(
    `SELECT d.manager, d.position::text AS position, d.recorded_at AS "recordedAt", d.outcome,
            d.event_type AS type, d.stream_id AS "streamId", d.reason, d.cause
       FROM unnest($1::text[]) AS m(name)
       CROSS JOIN LATERAL (
         SELECT * FROM qcat_read.automation_decisions
          WHERE manager = m.name ORDER BY position DESC LIMIT $2) d
      ORDER BY d.manager, d.position DESC`,
    [managers, limit],
  );
  const byManager = new Map<string, AutomationDecisionRow[]>(managers.map((m) => [m, []]));
  for (const { manager, ...row } of rows) byManager.get(manager)?.push(row);
  return byManager;
}

/** Portfolios whose trading state is HALTED now (the risk read model): they hold automation. */
export async function haltedPortfolios(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ scope_id: string }>(
    `SELECT scope_id FROM qcat_read.risk_states
      WHERE scope_type = 'portfolio' AND state = 'HALTED' ORDER BY scope_id`,
  );
  return rows.map((row) => row.scope_id);
}
