import { domainEventOf } from '../core/eventstore/typed-events.js';
import type pg from 'pg';
import { rankedData, type HotSymbolsEvent } from '../core/hot-symbols/ranking.js';
import { hotSymbols, type HotSymbolEvent } from '../core/hot-symbols/tradable.js';
import { applyTradableEvent, TRADABLE_SETUP } from './hot-symbol-list.js';
import { eventTypes, type PostgresProjection } from './projection.js';

/**
 * Every hot-symbol ranking (HotSymbolsRanked), its scores kept whole for the API; and the
 * tradable list: each proposed symbol's proposal, decision and how long it stays tradable
 * (projections/hot-symbol-list.ts).
 */
export const hotSymbolsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'hot_symbols',
  version: 2,
  // The tradable list's events (apply parses every event of a hotsymbol- stream) and the rankings.
  handles: [
    ...eventTypes<HotSymbolEvent>()('HotSymbolProposed', 'HotSymbolApproved', 'HotSymbolRejected'),
    ...eventTypes<HotSymbolsEvent>()('HotSymbolsRanked'),
  ],
  tables: ['hot_symbol_rankings', 'hot_symbol_list'],

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.hot_symbol_rankings (
        position    bigint      PRIMARY KEY,
        at          timestamptz NOT NULL,
        trigger     text        NOT NULL,
        actor       text        NOT NULL,
        recommended jsonb       NOT NULL,
        ranking     jsonb       NOT NULL
      );
      ${TRADABLE_SETUP(schema)}`);
  },

  async apply(client, schema, events) {
    for (const event of events) {
      if (event.streamId.startsWith('hotsymbol-')) {
        await applyTradableEvent(
          client,
          schema,
          event,
          hotSymbols.parseEvent(domainEventOf(event)),
        );
        continue;
      }
      if (event.type !== 'HotSymbolsRanked') continue;
      const data = rankedData.parse(event.data);
      await client.query(
        `INSERT INTO ${schema}.hot_symbol_rankings (position, at, trigger, actor, recommended, ranking)
         VALUES ($1, to_timestamp($2::double precision / 1000), $3, $4, $5, $6)
         ON CONFLICT (position) DO NOTHING`,
        [
          event.position.toString(),
          data.at,
          data.trigger,
          event.metadata.actor,
          JSON.stringify(data.recommended),
          JSON.stringify(data),
        ],
      );
    }
  },
};

export interface HotSymbolRankingRow {
  position: string;
  actor: string;
  /** The HotSymbolsRanked event's data. */
  ranking: unknown;
}

/** The newest ranking, or undefined before the first. */
export async function latestRanking(pool: pg.Pool): Promise<HotSymbolRankingRow | undefined> {
  const { rows } = await pool.query<HotSymbolRankingRow>(
    `SELECT position::text AS position, actor, ranking
       FROM qcat_read.hot_symbol_rankings ORDER BY position DESC LIMIT 1`,
  );
  return rows[0];
}
