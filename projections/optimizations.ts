import { domainEventOf } from '../core/eventstore/typed-events.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import {
  optimizations,
  type OptimizationEvent,
  type OptimizationState,
} from '../core/optimization/optimization.js';
import { eventTypes, type PostgresProjection } from './projection.js';

/**
 * Optimization runs as people read them: `qcat_read.optimizations` (one row per run, the state
 * folded with the decider's own `evolve`, the outcome with its folds and stitched equity inside)
 * and `qcat_read.optimization_trials` (one row per trial, from the batches, sortable by score).
 * The SQL that reads them is in optimization-queries.ts.
 */
export const optimizationsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'optimizations',
  version: 1,
  tables: ['optimizations', 'optimization_trials'],
  handles: eventTypes<OptimizationEvent>()(
    'OptimizationRequested',
    'OptimizationProgressed',
    'OptimizationCompleted',
    'OptimizationFailed',
    'OptimizationCancelled',
  ),

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.optimizations (
        optimization_id    text        PRIMARY KEY,
        status             text        NOT NULL,
        strategy_id        text,
        method             text        NOT NULL,
        trigger_type       text        NOT NULL,
        state              jsonb       NOT NULL,
        requested_by       text        NOT NULL,
        requested_at       timestamptz NOT NULL,
        progressed_at      timestamptz,
        finished_at        timestamptz,
        requested_position bigint      NOT NULL UNIQUE,
        revision           bigint      NOT NULL,
        position           bigint      NOT NULL
      );
      CREATE TABLE ${schema}.optimization_trials (
        optimization_id text    NOT NULL,
        trial           integer NOT NULL,
        batch           integer NOT NULL,
        score           double precision,
        parameters      jsonb   NOT NULL,
        in_sample       jsonb   NOT NULL,
        out_of_sample   jsonb   NOT NULL,
        trades          integer NOT NULL,
        note            text,
        PRIMARY KEY (optimization_id, trial)
      )`);
  },

  async indexes(client, schema) {
    await client.query(`
      CREATE INDEX ON ${schema}.optimizations (status, requested_position);
      CREATE INDEX ON ${schema}.optimizations (strategy_id, requested_position);
      CREATE INDEX ON ${schema}.optimization_trials (optimization_id, score DESC NULLS LAST, trial)`);
  },

  async apply(client, schema, events) {
    for (const event of events) {
      if (categoryOf(event.streamId) !== 'optimization') continue;
      await applyOne(client, schema, event);
    }
  },
};

async function applyOne(
  client: Parameters<PostgresProjection['apply']>[0],
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  const parsed = optimizations.parseEvent(domainEventOf(event));
  const { optimizationId } = parsed.data;
  if (parsed.type === 'OptimizationRequested') {
    const state = optimizations.evolve(optimizations.initialState(), parsed);
    await client.query(
      `INSERT INTO ${schema}.optimizations (optimization_id, status, strategy_id, method, trigger_type,
                                             state, requested_by, requested_at, requested_position,
                                             revision, position)
       VALUES ($1, 'requested', $2, $3, $4, $5, $6, $7, $8, $9, $8)
       ON CONFLICT (optimization_id) DO NOTHING`,
      [
        optimizationId,
        parsed.data.strategyId,
        parsed.data.method,
        parsed.data.trigger.type,
        state,
        event.metadata.actor,
        event.recordedAt,
        event.position,
        event.revision,
      ],
    );
    return;
  }
  const { rows } = await client.query<{ state: OptimizationState; position: string }>(
    `SELECT state, position FROM ${schema}.optimizations WHERE optimization_id = $1`,
    [optimizationId],
  );
  const row = rows[0];
  // Applied already (a replayed batch after a crash): the row is past this event.
  if (!row || BigInt(row.position) >= event.position) return;
  const state = optimizations.evolve(row.state, parsed);
  if (parsed.type === 'OptimizationProgressed') {
    const trials = parsed.data.trials;
    await client.query(
      `INSERT INTO ${schema}.optimization_trials (optimization_id, trial, batch, score, parameters,
                                                   in_sample, out_of_sample, trades, note)
       SELECT $1, u.trial, $2, u.score, u.parameters, u.in_sample, u.out_of_sample, u.trades, u.note
         FROM unnest($3::int[], $4::float8[], $5::jsonb[], $6::jsonb[], $7::jsonb[], $8::int[],
                     $9::text[]) AS u(trial, score, parameters, in_sample, out_of_sample, trades, note)
       ON CONFLICT (optimization_id, trial) DO NOTHING`,
      [
        optimizationId,
        parsed.data.batch,
        trials.map((t) => t.trial),
        trials.map((t) => t.score),
        trials.map((t) => JSON.stringify(t.parameters)),
        trials.map((t) => JSON.stringify(t.inSample)),
        trials.map((t) => JSON.stringify(t.outOfSample)),
        trials.map((t) => t.trades),
        trials.map((t) => t.note),
      ],
    );
  }
  const finished = parsed.type !== 'OptimizationProgressed';
  await client.query(
    `UPDATE ${schema}.optimizations
        SET status = $2, state = $3, revision = $4, position = $5,
            progressed_at = CASE WHEN $6 THEN progressed_at ELSE $7 END,
            finished_at = CASE WHEN $6 THEN $7 ELSE finished_at END
      WHERE optimization_id = $1`,
    [
      optimizationId,
      state.status,
      state,
      event.revision,
      event.position,
      finished,
      event.recordedAt,
    ],
  );
}
