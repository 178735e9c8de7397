import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { Party } from '../core/approvals/approval.js';
import { tradingStateStream } from '../core/risk/common.js';
import {
  tradingStates,
  type RiskTriggerFiredData,
  type ScopeTradingState,
  type TradingStateEvent,
} from '../core/risk/trading-state.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { describeNeeding } from '../test/support/tools.js';
import { PostgresTarget } from './postgres-target.js';
import { activeGenerationKey, RedisTarget, redisViewKeys } from './redis-target.js';
import { liveRiskKeys, liveRiskView, type LiveRiskState } from './risk-live.js';
import { riskProjection } from './risk.js';

/**
 * The two views of the trading states, `risk_states` in PostgreSQL and `risk:states` in Redis,
 * fold the same events the same way (foldTradingState): an automatic change never loosens the
 * base, and one decided before the last reset is ignored.
 */

const T = Date.UTC(2026, 0, 5);
const officer: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const ENGINE = { actor: 'system:engine' };
const PERSON = { actor: officer.id };

const trigger = (scopeId: string, time: number, action: 'HALTED' | 'REDUCING') =>
  ({
    triggerId: `strategy_drawdown-strategy-${scopeId}-${time.toString()}`,
    rule: 'strategy_drawdown',
    scopeType: 'strategy',
    scopeId,
    threshold: 0.1,
    observed: 0.2,
    reference: 1000,
    value: 800,
    window: { from: time - 60_000, to: time },
    action,
    until: action === 'REDUCING' ? time + 3_600_000 : null,
    time,
  }) satisfies RiskTriggerFiredData;

describeNeeding(['redis'], 'risk views: PostgreSQL and Redis fold alike', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let redis: TestRedis;

  beforeAll(async () => {
    database = await createTestDatabase('risk_views');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    redis = await connectTestRedis('risk-views');
  });
  afterAll(async () => {
    await store.close();
    await redis.cleanup();
    await database.drop();
  });

  /** Decides a command on a copy of the stream (the events up to `upTo` of it) and appends. */
  const decideOn = async (
    copy: readonly TradingStateEvent[],
    scopeId: string,
    command: Parameters<typeof tradingStates.decide>[0],
    metadata: { actor: string },
  ): Promise<TradingStateEvent[]> => {
    const state = copy.reduce<ScopeTradingState>(
      (folded, event) => tradingStates.evolve(folded, event),
      tradingStates.initialState(),
    );
    const events = tradingStates.decide(command, state);
    await store.appendToStream(
      tradingStateStream({ type: 'strategy', id: scopeId }),
      events.map((event) => ({ type: event.type, data: event.data, metadata })),
      { expectedRevision: 'any' },
    );
    return events;
  };

  const postgresRows = async (): Promise<Record<string, unknown>> => {
    const { rows } = await store.pool.query<{
      scope_id: string;
      state: string;
      temporary: unknown;
      reset_at: Date | null;
      reason: string;
      position: string;
    }>('SELECT * FROM qcat_read.risk_states ORDER BY scope_id');
    return Object.fromEntries(
      rows.map((row) => [
        `strategy:${row.scope_id}`,
        {
          base: row.state,
          temporary: row.temporary,
          resetAt: row.reset_at?.getTime() ?? null,
          reason: row.reason,
          position: row.position,
        },
      ]),
    );
  };

  const redisRows = async (): Promise<Record<string, unknown>> => {
    const generation = Number(
      (await redis.redis.get(activeGenerationKey(redis.prefix, 'live_risk'))) ?? '1',
    );
    const keys = liveRiskKeys(redisViewKeys(redis.prefix, 'live_risk', generation).data);
    const fields = await redis.redis.hgetall(keys.states);
    return Object.fromEntries(
      Object.entries(fields).map(([field, value]) => {
        const { base, temporary, resetAt, reason, position } = JSON.parse(value) as LiveRiskState;
        return [field, { base, temporary, resetAt, reason, position }];
      }),
    );
  };

  it('agree after folded bases and stale engine events, batch by batch and all at once', async () => {
    // s1: a person halts; an engine that had not seen it yet ends a cooldown with base ACTIVE.
    const reducing = await decideOn(
      [],
      's1',
      { type: 'FireTrigger', trigger: trigger('s1', T, 'REDUCING') },
      ENGINE,
    );
    const engineCopy = [...reducing];
    const halted = await decideOn(
      engineCopy,
      's1',
      {
        type: 'MoveTradingState',
        scope: { type: 'strategy', id: 's1' },
        to: 'HALTED',
        by: officer,
        reason: 'news',
        time: T + 1,
      },
      PERSON,
    );
    await decideOn(
      engineCopy,
      's1',
      { type: 'EndCooldown', scope: { type: 'strategy', id: 's1' }, time: T + 3_600_000 },
      ENGINE,
    );
    // s2: halted by a breaker, released by an approved reset; an engine whose copy predates both
    // then fires another breaker, which must not halt it again.
    const s2 = await decideOn(
      [],
      's2',
      { type: 'FireTrigger', trigger: trigger('s2', T, 'HALTED') },
      ENGINE,
    );
    await decideOn(
      s2,
      's2',
      {
        type: 'ResetTradingState',
        scope: { type: 'strategy', id: 's2' },
        requestId: 'r1',
        approvers: [officer],
        time: T + 10,
      },
      PERSON,
    );
    await decideOn(
      [],
      's2',
      { type: 'FireTrigger', trigger: trigger('s2', T + 20, 'HALTED') },
      ENGINE,
    );
    expect(halted).toHaveLength(1);

    const events: RecordedEvent[] = await store.readAll({ after: 0n, maxCount: 1000 });
    const postgres = new PostgresTarget(store.pool, riskProjection);
    await postgres.ensure();
    const connection = redis.redis.duplicate();
    try {
      const live = new RedisTarget(connection, redis.prefix, liveRiskView);
      // One event per batch: each fold starts from the rows Redis holds.
      for (const event of events) {
        await postgres.apply([event]);
        await live.apply([event]);
      }
      const inPostgres = await postgresRows();
      expect(Object.keys(inPostgres)).toEqual(['strategy:s1', 'strategy:s2']);
      expect(inPostgres).toMatchObject({
        'strategy:s1': { base: 'HALTED', temporary: null, resetAt: null },
        'strategy:s2': { base: 'ACTIVE', temporary: null, resetAt: T + 10 },
      });
      expect(await redisRows()).toEqual(inPostgres);
      // All events in one batch (a rebuild): the same rows.
      const rebuilt = await live.rebuild(store, { batchSize: 1000 });
      expect(rebuilt.generation).toBe(2);
      expect(await redisRows()).toEqual(inPostgres);
    } finally {
      connection.disconnect();
    }
  });

  it('hands its view only the events it handles; a batch of others only moves the checkpoint', async () => {
    const seen: string[][] = [];
    const counted: typeof liveRiskView = {
      ...liveRiskView,
      name: 'live_risk_counted',
      load: async (client, keyPrefix, events) => {
        seen.push(events.map((event) => event.type));
        return liveRiskView.load?.(client, keyPrefix, events) ?? new Map();
      },
    };
    const before = await store.headPosition();
    await store.appendToStream('strategy-unrelated', [
      { type: 'StrategyNamed', data: { name: 'x' }, metadata: ENGINE },
    ]);
    await decideOn(
      [],
      's3',
      { type: 'FireTrigger', trigger: trigger('s3', T + 30, 'HALTED') },
      ENGINE,
    );
    const [unrelated, ...fired] = await store.readAll({ after: before, maxCount: 10 });
    const connection = redis.redis.duplicate();
    try {
      const target = new RedisTarget(connection, redis.prefix, counted);
      expect(await target.apply([unrelated!])).toBe(unrelated!.position);
      expect(seen).toEqual([]);
      expect(fired.map((event) => event.type)).toEqual(['RiskTriggerFired', 'TradingStateChanged']);
      expect(await target.apply(fired)).toBe(fired.at(-1)!.position);
      expect(seen).toEqual([['TradingStateChanged']]);
    } finally {
      connection.disconnect();
    }
  });
});
