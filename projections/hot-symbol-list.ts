import type pg from 'pg';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { HotSymbolEvent } from '../core/hot-symbols/tradable.js';

/**
 * The tradable list of hot symbols (docs/hot-symbols.md), one row per symbol ever proposed: the
 * latest proposal, its decision, and until when the symbol is tradable. Expiry is a matter of
 * time: a row is `tradable` while `tradable_until` is later than now, `expired` after.
 */

export const TRADABLE_SETUP = (schema: string): string => `
  CREATE TABLE ${schema}.hot_symbol_list (
    symbol                    text        PRIMARY KEY,
    proposal_id               text        NOT NULL,
    proposal_status           text        NOT NULL,
    reason                    text        NOT NULL,
    proposed_by               text        NOT NULL,
    proposed_at               timestamptz NOT NULL,
    ranking_position          text        NOT NULL,
    ranked_at                 timestamptz NOT NULL,
    score                     double precision,
    recommendation_expires_at timestamptz NOT NULL,
    decided_by                text,
    decided_at                timestamptz,
    decision_note             text,
    tradable_until            timestamptz,
    position                  bigint      NOT NULL
  )`;

const ts = (ms: number): Date => new Date(ms);

export async function applyTradableEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
  parsed: HotSymbolEvent,
): Promise<void> {
  const position = event.position.toString();
  switch (parsed.type) {
    case 'HotSymbolProposed': {
      const d = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.hot_symbol_list AS l (symbol, proposal_id, proposal_status, reason,
           proposed_by, proposed_at, ranking_position, ranked_at, score, recommendation_expires_at, position)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (symbol) DO UPDATE SET proposal_id = $2, proposal_status = 'pending', reason = $3,
           proposed_by = $4, proposed_at = $5, ranking_position = $6, ranked_at = $7, score = $8,
           recommendation_expires_at = $9, decided_by = NULL, decided_at = NULL,
           decision_note = NULL, position = $10`,
        [
          d.symbol,
          d.proposalId,
          d.reason,
          d.proposedBy.id,
          ts(d.at),
          d.rankingPosition,
          ts(d.rankedAt),
          d.score,
          ts(d.recommendationExpiresAt),
          position,
        ],
      );
      return;
    }
    case 'HotSymbolApproved': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.hot_symbol_list SET proposal_status = 'approved', decided_by = $2,
           decided_at = $3, decision_note = $4, tradable_until = $5, position = $6
          WHERE symbol = $1`,
        [d.symbol, d.approvedBy.id, ts(d.at), d.comment, ts(d.tradableUntil), position],
      );
      return;
    }
    case 'HotSymbolRejected': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.hot_symbol_list SET proposal_status = 'rejected', decided_by = $2,
           decided_at = $3, decision_note = $4, position = $5
          WHERE symbol = $1`,
        [d.symbol, d.rejectedBy.id, ts(d.at), d.reason, position],
      );
      return;
    }
  }
}

export interface HotSymbolListRow {
  symbol: string;
  /** `tradable` (approved, not expired), `expired`, `pending`, `proposal_expired`, `rejected`. */
  status: 'tradable' | 'expired' | 'pending' | 'proposal_expired' | 'rejected';
  proposalId: string;
  reason: string;
  proposedBy: string;
  proposedAt: string;
  rankingPosition: string;
  rankedAt: string;
  score: number | null;
  recommendationExpiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionNote: string | null;
  tradableUntil: string | null;
}

/** The list as of `now`: every symbol ever proposed, tradable ones first. */
export async function hotSymbolList(pool: pg.Pool, now: Date): Promise<HotSymbolListRow[]> {
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT *, CASE
               WHEN tradable_until > $1 THEN 'tradable'
               WHEN proposal_status = 'pending' AND recommendation_expires_at <= $1 THEN 'proposal_expired'
               WHEN proposal_status = 'pending' THEN 'pending'
               WHEN proposal_status = 'rejected' THEN 'rejected'
               ELSE 'expired' END AS status
       FROM qcat_read.hot_symbol_list
      ORDER BY (tradable_until > $1) DESC NULLS LAST, symbol`,
    [now],
  );
  const iso = (value: unknown): string | null =>
    value instanceof Date ? value.toISOString() : null;
  return rows.map((row) => ({
    symbol: String(row['symbol']),
    status: String(row['status']) as HotSymbolListRow['status'],
    proposalId: String(row['proposal_id']),
    reason: String(row['reason']),
    proposedBy: String(row['proposed_by']),
    proposedAt: iso(row['proposed_at']) ?? '',
    rankingPosition: String(row['ranking_position']),
    rankedAt: iso(row['ranked_at']) ?? '',
    score: row['score'] === null ? null : Number(row['score']),
    recommendationExpiresAt: iso(row['recommendation_expires_at']) ?? '',
    decidedBy: (row['decided_by'] as string | null) ?? null,
    decidedAt: iso(row['decided_at']),
    decisionNote: (row['decision_note'] as string | null) ?? null,
    tradableUntil: iso(row['tradable_until']),
  }));
}

/**
 * Every symbol of the list with until when it is tradable and its proposal's score: capability 8
 * (automation/new-strategies/decide.ts `approvedSymbols`) decides from it which it may use.
 */
export async function listedSymbols(
  pool: pg.Pool,
): Promise<{ symbol: string; tradableUntil: number | null; score: number | null }[]> {
  const { rows } = await pool.query<{
    symbol: string;
    tradable_until: Date | null;
    score: number | null;
  }>('SELECT symbol, tradable_until, score FROM qcat_read.hot_symbol_list ORDER BY symbol');
  return rows.map((row) => ({
    symbol: row.symbol,
    tradableUntil: row.tradable_until ? row.tradable_until.getTime() : null,
    score: row.score,
  }));
}

/** The symbols on the tradable list at `now`. */
export async function tradableSymbols(pool: pg.Pool, now: Date): Promise<string[]> {
  const { rows } = await pool.query<{ symbol: string }>(
    'SELECT symbol FROM qcat_read.hot_symbol_list WHERE tradable_until > $1 ORDER BY symbol',
    [now],
  );
  return rows.map((row) => row.symbol);
}
