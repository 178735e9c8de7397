import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeys, apiKeyStream } from '../core/access/api-key.js';
import { ROLES } from '../core/access/roles.js';
import { ensureMarketSchema } from '../core/adapters/postgres/market-data-store.js';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { APPROVAL_KINDS, approvals, approvalStream } from '../core/approvals/approval.js';
import { backtests, backtestStream } from '../core/backtests/backtest-run.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../core/decider.js';
import { desk, deskStream } from '../core/engine/desk.js';
import { QcatError } from '../core/errors.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { InMemoryEventStore } from '../core/eventstore/in-memory-event-store.js';
import {
  exitsStream,
  KILL_SWITCH_STREAM,
  limitsStream,
  tradingStateStream,
} from '../core/risk/common.js';
import { exits } from '../core/risk/exits.js';
import { killSwitch } from '../core/risk/kill-switch.js';
import { limits } from '../core/risk/limits.js';
import { tradingStates } from '../core/risk/trading-state.js';
import { STRATEGY_KIND_NAMES, TIMEFRAMES } from '../core/strategies/kinds.js';
import { strategies, strategyStream } from '../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import type { PostgresProjection } from './projection.js';
import { allProjections } from './registry.js';

/**
 * "Whatever the write side accepts, every projection can apply" (ADR 011). Random commands, most
 * of them valid, some at the edges of what a client can send (instants of any year, numbers from
 * subnormal to 1e308, odd strings), go through the deciders and the command handler into a log;
 * every PostgreSQL projection of the registry (the process managers included, whose own commands
 * are projected too) then applies that log in a real database. Any event a projection cannot apply
 * fails the property with the projection, the event and the error.
 */

// One command for the handler: the decider, its stream and the command.
interface Sent {
  decider: Decider<unknown, unknown, DomainEvent>;
  streamId: string;
  command: JsonObject;
  [fc.toStringMethod]: () => string;
}
const send = <S, C, E extends DomainEvent>(
  decider: Decider<S, C, E>,
  streamId: string,
  command: C & JsonObject,
): Sent => ({
  decider,
  streamId,
  command,
  // How fast-check prints a counterexample: the command, not the decider's source.
  [fc.toStringMethod]: () => `${streamId} ${JSON.stringify(command)}`,
});

const DAY_MS = 86_400_000;
const party = fc.record({
  id: fc.constantFrom('apikey:alice', 'apikey:bob', 'apikey:carol'),
  role: fc.constantFrom(...ROLES),
});
const id = fc.constantFrom('a1', 'b2', 'c3');
const text = fc.oneof(
  fc.constantFrom('ok', 'fat finger', 'ＡＢＣ𝔘🚀', "' OR 1=1 --", '2025-01-01T00:00:00Z'),
  fc.string({ maxLength: 30, unit: 'grapheme' }),
);
/** Epoch ms: mostly now-ish, sometimes any double a caller could pass. */
const epochMs = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }) },
  { weight: 1, arbitrary: fc.double({ noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(-62_167_219_200_000, 253_402_300_800_000, 8.64e15) },
);
/** A day anywhere a Date can be (years -271821 to 275760), weighted towards sane ones. */
const dayMs = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1_500_000_000_000, max: 1_800_000_000_000 }) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: -8.64e15 + DAY_MS * 800, max: 8.64e15 - DAY_MS * 800 }),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(-62_167_219_200_000, -62_135_596_800_000, 253_402_214_400_000),
  },
);
const iso = (ms: number): string => new Date(ms).toISOString();
const amount = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: 0.001, max: 1e6, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(1e308, 1e-320, 5e-324, 1e15, 0, -1) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);
const fraction = fc.oneof(fc.double({ min: 0.001, max: 1, noNaN: true }), amount);
const scope = fc.record({
  type: fc.constantFrom('portfolio' as const, 'strategy' as const, 'symbol' as const),
  id,
});
const symbol = fc.constantFrom('BTCUSDT', 'ETHUSDT');
const timeframe = fc.constantFrom(...TIMEFRAMES);
const kind = fc.constantFrom(...STRATEGY_KIND_NAMES);

const strategyCommand = fc.oneof(
  fc
    .record({
      strategyId: id,
      owner: party,
      name: text,
      description: text,
      kind,
      symbols: fc.array(symbol, { minLength: 1, maxLength: 2 }),
      timeframe,
      capitalRequest: amount,
    })
    .map((c) =>
      send(strategies, strategyStream(c.strategyId), {
        type: 'CreateStrategy',
        ...c,
        parameters: {},
      }),
    ),
  fc
    .record({ strategyId: id, name: text, capitalRequest: amount })
    .map(({ strategyId, ...changes }) =>
      send(strategies, strategyStream(strategyId), { type: 'EditStrategy', strategyId, changes }),
    ),
  fc
    .record({ strategyId: id, requestId: id, by: party })
    .map((c) => send(strategies, strategyStream(c.strategyId), { type: 'SubmitForReview', ...c })),
  fc
    .record({ strategyId: id, reason: text })
    .map((c) => send(strategies, strategyStream(c.strategyId), { type: 'RetireStrategy', ...c })),
);

const approvalCommand = fc.oneof(
  fc
    .record({
      requestId: id,
      kind: fc.constantFrom(...APPROVAL_KINDS),
      subject: fc.record({ type: fc.constantFrom('strategy', 'risk_limits'), id }),
      requester: party,
      reason: text,
      now: dayMs.map(iso),
    })
    .map((c) =>
      send(approvals, approvalStream(c.requestId), {
        type: 'RequestApproval',
        ...c,
        payload: {},
      }),
    ),
  fc
    .record({ requestId: id, approver: party, comment: text, now: dayMs.map(iso) })
    .map((c) => send(approvals, approvalStream(c.requestId), { type: 'GrantApproval', ...c })),
  fc
    .record({ requestId: id, now: dayMs.map(iso) })
    .map((c) => send(approvals, approvalStream(c.requestId), { type: 'ExpireApproval', ...c })),
);

const keyCommand = fc.oneof(
  fc.record({ keyId: id, name: text, role: fc.constantFrom(...ROLES) }).map((c) =>
    send(apiKeys, apiKeyStream(c.keyId), {
      type: 'IssueApiKey',
      ...c,
      secretHash: 'x'.repeat(64),
    }),
  ),
  fc
    .record({ keyId: id, reason: text })
    .map((c) => send(apiKeys, apiKeyStream(c.keyId), { type: 'RevokeApiKey', ...c })),
);

const backtestCommand = fc
  .record({
    backtestId: id,
    requestedBy: party,
    kind,
    symbol,
    timeframe,
    from: dayMs,
    days: fc.integer({ min: 1, max: 731 }),
    initialCash: fc.option(amount, { nil: undefined }),
  })
  .map(({ from, days, initialCash, ...c }) =>
    send(backtests, backtestStream(c.backtestId), {
      type: 'RequestBacktest',
      ...c,
      from: iso(from),
      to: iso(from + days * DAY_MS),
      ...(initialCash === undefined ? {} : { initialCash }),
    }),
  );

const riskCommand = fc.oneof(
  fc
    .record({
      scope,
      by: party,
      time: epochMs,
      maxOrderNotional: fc.option(amount, { nil: undefined }),
      maxDrawdown: fc.option(fraction, { nil: undefined }),
    })
    .map(({ maxOrderNotional, maxDrawdown, ...c }) =>
      send(limits, limitsStream(c.scope), {
        type: 'SetLimits',
        ...c,
        limits: {
          ...(maxOrderNotional === undefined ? {} : { maxOrderNotional }),
          ...(maxDrawdown === undefined ? {} : { maxDrawdown }),
        },
      }),
    ),
  fc
    .record({ by: party, reason: text, flatten: fc.boolean(), time: epochMs })
    .map((c) => send(killSwitch, KILL_SWITCH_STREAM, { type: 'EngageKillSwitch', ...c })),
  fc
    .record({
      scope,
      to: fc.constantFrom('HALTED' as const, 'REDUCING' as const, 'ACTIVE' as const),
      by: party,
      reason: text,
      time: epochMs,
    })
    .map((c) =>
      send(tradingStates, tradingStateStream(c.scope), { type: 'MoveTradingState', ...c }),
    ),
  fc
    .record({
      portfolioId: fc.constantFrom('paper-1h'),
      strategyId: id,
      symbol,
      stopLoss: fc.option(fraction, { nil: null }),
      takeProfit: fc.option(amount, { nil: null }),
      by: party,
      time: epochMs,
    })
    .map(({ stopLoss, takeProfit, ...c }) =>
      send(exits, exitsStream(c.portfolioId, c.strategyId, c.symbol), {
        type: 'SetExitRules',
        ...c,
        rules: { stopLoss, takeProfit, trailing: null, atrStop: null },
      }),
    ),
  fc
    .record({
      portfolioId: fc.constantFrom('paper-1h'),
      strategyId: id,
      symbol,
      openedAt: epochMs,
      stopPrice: fc.option(amount, { nil: null }),
      by: party,
      reason: text,
      time: epochMs,
    })
    .map((c) =>
      send(exits, exitsStream(c.portfolioId, c.strategyId, c.symbol), {
        type: 'MoveExitLevels',
        ...c,
      }),
    ),
);

const orderCommand = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    strategyId: id,
    symbol,
    side: fc.constantFrom('buy' as const, 'sell' as const),
    quantity: amount,
    requestedAt: epochMs,
  })
  .map(({ n, requestedAt, ...o }) =>
    send(desk, deskStream('paper-1h'), {
      type: 'RequestOrder',
      order: {
        clientOrderId: `m-${n.toString()}`,
        portfolioId: 'paper-1h',
        ...o,
        type: 'market',
        limitPrice: null,
        stopPrice: null,
        reduceOnly: false,
      },
      requestedAt,
    }),
  );

const commands = fc.array(
  fc.oneof(
    strategyCommand,
    approvalCommand,
    keyCommand,
    backtestCommand,
    riskCommand,
    orderCommand,
  ),
  { minLength: 1, maxLength: 12 },
);

const handlerOver = (store: InMemoryEventStore): CommandHandler =>
  new CommandHandler({ eventStore: store, idempotency: new InMemoryIdempotencyStore() });

interface Failure {
  projection: string;
  event: string;
  error: string;
}

describe('whatever the write side accepts, every projection can apply', () => {
  let database: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('projectable');
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    await migrate(pool);
    await ensureMarketSchema(pool);
    // The read models' tables, once: each run works in a transaction it rolls back.
    const client = await pool.connect();
    try {
      for (const projection of allProjections('prop:')) {
        if (projection.kind !== 'postgres') continue;
        const schema = `prop_${projection.name}`;
        await client.query(`CREATE SCHEMA ${schema}`);
        await projection.setup(client, schema);
        await projection.indexes?.(client, schema);
        for (const table of projection.tables)
          await client.query(
            `CREATE OR REPLACE VIEW qcat_read.${table} AS SELECT * FROM ${schema}.${table}`,
          );
      }
    } finally {
      client.release();
    }
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  /** Runs the commands into a fresh log; answers what the handler refused with a non-domain error. */
  async function write(
    handler: CommandHandler,
    sent: readonly Sent[],
  ): Promise<{ accepted: number; crashes: string[] }> {
    let accepted = 0;
    const crashes: string[] = [];
    for (const { decider, streamId, command } of sent) {
      try {
        await handler.handle(decider, streamId, command, { actor: 'prop' });
        accepted += 1;
      } catch (error) {
        if (!(error instanceof QcatError))
          crashes.push(`${JSON.stringify(command)}: ${String(error)}`);
      }
    }
    return { accepted, crashes };
  }

  /**
   * Applies the whole log, event by event, with every projection, in one transaction rolled back
   * at the end; events the process managers append meanwhile are applied too.
   */
  async function project(
    store: InMemoryEventStore,
    projections: readonly PostgresProjection[],
  ): Promise<Failure[]> {
    const failures: Failure[] = [];
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      let after = 0n;
      for (let round = 0; round < 20; round++) {
        const events = await store.readAll({ after, maxCount: 10_000 });
        if (events.length === 0) break;
        for (const event of events) {
          for (const projection of projections) {
            await client.query('SAVEPOINT one');
            try {
              await projection.apply(client, `prop_${projection.name}`, [event]);
              await client.query('RELEASE SAVEPOINT one');
            } catch (error) {
              await client.query('ROLLBACK TO SAVEPOINT one');
              failures.push({
                projection: projection.name,
                event: `${event.type} ${JSON.stringify(event.data).slice(0, 300)}`,
                error: String(error),
              });
            }
          }
          after = event.position;
        }
      }
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    return failures;
  }

  it('applies every event the deciders and the command handler accept, with every PostgreSQL projection', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(commands, async (sent) => {
        const store = new InMemoryEventStore();
        const handler = handlerOver(store);
        const projections = allProjections('prop:').filter(
          (p): p is PostgresProjection => p.kind === 'postgres',
        );
        const written = await write(handler, sent);
        accepted += written.accepted;
        expect(written.crashes).toEqual([]);
        expect(await project(store, projections)).toEqual([]);
      }),
      { numRuns: Number(process.env['PROPERTY_RUNS'] ?? 150) },
    );
    // The property means something only if most runs wrote events.
    expect(accepted).toBeGreaterThan(150);
  }, 300_000);
});
