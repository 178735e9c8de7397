import {
  backtests,
  type BacktestEvent,
  type BacktestState,
} from '../core/backtests/backtest-run.js';
import type { DomainEvent } from '../core/decider.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { JsonObject, RecordedEvent } from '../core/eventstore/event-store.js';
import { eventTypes, type PostgresProjection } from './projection.js';

const domainEvent = (event: RecordedEvent): DomainEvent => ({
  type: event.type,
  data: event.data as JsonObject,
});

/**
 * Backtest runs as people read them (`qcat_read.backtests`, one row each, folded with the
 * decider's own `evolve`): status, the request, the summary or the failure, who asked and when.
 */
export const backtestsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'backtests',
  version: 1,
  // One row per run, read by people only: an event it cannot apply is parked (ADR 011).
  onPoisonEvent: 'park',
  tables: ['backtests'],
  handles: eventTypes<BacktestEvent>()('BacktestRequested', 'BacktestCompleted', 'BacktestFailed'),

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.backtests (
        backtest_id        text        PRIMARY KEY,
        status             text        NOT NULL,
        strategy_id        text,
        kind               text        NOT NULL,
        symbol             text        NOT NULL,
        timeframe          text        NOT NULL,
        from_time          timestamptz NOT NULL,
        to_time            timestamptz NOT NULL,
        state              jsonb       NOT NULL,
        requested_by       text        NOT NULL,
        requested_at       timestamptz NOT NULL,
        finished_at        timestamptz,
        requested_position bigint      NOT NULL UNIQUE,
        revision           bigint      NOT NULL,
        position           bigint      NOT NULL
      );
      CREATE INDEX ON ${schema}.backtests (status, requested_position);
      CREATE INDEX ON ${schema}.backtests (strategy_id, requested_position);
      CREATE INDEX ON ${schema}.backtests (symbol, requested_position);
      CREATE INDEX ON ${schema}.backtests (kind, requested_position)`);
  },

  async apply(client, schema, events) {
    for (const event of events) {
      if (categoryOf(event.streamId) !== 'backtest') continue;
      const parsed = backtests.parseEvent(domainEvent(event));
      const { backtestId } = parsed.data;
      if (parsed.type === 'BacktestRequested') {
        const state = backtests.evolve(backtests.initialState(), parsed);
        await client.query(
          `INSERT INTO ${schema}.backtests (backtest_id, status, strategy_id, kind, symbol, timeframe,
                                            from_time, to_time, state, requested_by, requested_at,
                                            requested_position, revision, position)
           VALUES ($1, 'requested', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)
           ON CONFLICT (backtest_id) DO NOTHING`,
          [
            backtestId,
            parsed.data.strategyId,
            parsed.data.kind,
            parsed.data.symbol,
            parsed.data.timeframe,
            parsed.data.from,
            parsed.data.to,
            state,
            event.metadata.actor,
            event.recordedAt,
            event.position,
            event.revision,
          ],
        );
        continue;
      }
      const { rows } = await client.query<{ state: BacktestState }>(
        `SELECT state FROM ${schema}.backtests WHERE backtest_id = $1`,
        [backtestId],
      );
      if (!rows[0]) continue;
      const state = backtests.evolve(rows[0].state, parsed);
      await client.query(
        `UPDATE ${schema}.backtests SET status = $2, state = $3, finished_at = $4, revision = $5,
                position = $6 WHERE backtest_id = $1`,
        [backtestId, state.status, state, event.recordedAt, event.revision, event.position],
      );
    }
  },
};
