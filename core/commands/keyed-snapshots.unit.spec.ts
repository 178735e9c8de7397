import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { desk, deskStream, type DeskCommand } from '../engine/desk.js';
import type { ReadStreamOptions, RecordedEvent } from '../eventstore/event-store.js';
import { InMemoryEventStore } from '../eventstore/in-memory-event-store.js';
import { portfolioStream } from '../portfolio/events.js';
import { defaultPolicy } from '../portfolio/policy.js';
import { portfolios, type PortfolioCommand } from '../portfolio/portfolio.js';
import { snapshotSchemaOf } from '../snapshot-schemas.js';
import { strategies, type StrategyCommand } from '../strategies/strategy.js';
import { CommandHandler } from './command-handler.js';
import { InMemoryIdempotencyStore } from './idempotency.js';
import { InMemorySnapshotStore } from './snapshots.js';

/**
 * ADR 032: a keyed command loads from the snapshot and finds its earlier events by id. Every
 * command, keyed or not, must give the same result with snapshots as by folding the whole stream,
 * for each decider whose stream grows (the desk, a strategy, a portfolio; the trading state is in
 * snapshots.unit.spec.ts), and a keyed retry after a crash must find what the first run wrote.
 */

type AnyDecider = Decider<unknown, unknown, DomainEvent>;
const T = 1_700_000_000_000;
const AT = '2026-12-07T06:00:00.000Z';

/** Records which revision each read started from: a snapshotted load starts past 0. */
class WatchedStore extends InMemoryEventStore {
  readonly reads: (bigint | undefined)[] = [];
  override readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    this.reads.push(options?.fromRevision);
    return super.readStream(streamId, options);
  }
}

async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { refused: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

interface Step {
  command: unknown;
  /** An idempotency key from a small set, so keys repeat (replays, reuse refused), or none. */
  key: string | null;
}

/** Runs every step through a plain handler and a snapshotted one: outcomes and state agree. */
async function sameWithAndWithout(
  decider: AnyDecider,
  streamId: string,
  steps: readonly Step[],
  every: number,
): Promise<void> {
  const plain = new CommandHandler({
    eventStore: new InMemoryEventStore(),
    idempotency: new InMemoryIdempotencyStore(),
  });
  const snapshotted = new CommandHandler({
    eventStore: new InMemoryEventStore(),
    idempotency: new InMemoryIdempotencyStore(),
    snapshots: { store: new InMemorySnapshotStore(), every, schemaOf: snapshotSchemaOf },
  });
  for (const { command, key } of steps) {
    const context = { actor: 'keyed-test', ...(key === null ? {} : { idempotencyKey: key }) };
    const run = (handler: CommandHandler) => () =>
      handler.handle(decider, streamId, command as never, context);
    expect(await outcome(run(snapshotted))).toEqual(await outcome(run(plain)));
  }
  expect(await snapshotted.load(decider, streamId)).toEqual(await plain.load(decider, streamId));
}

const key = fc.constantFrom(null, null, 'key-0001', 'key-0002', 'key-0003');
const steps = (command: fc.Arbitrary<unknown>): fc.Arbitrary<Step[]> =>
  fc.array(fc.record({ command, key }), { minLength: 1, maxLength: 40 });
const every = fc.integer({ min: 1, max: 5 });

const clientOrderId = fc.constantFrom('m-a', 'm-b', 'm-c', 'x-bad');
const deskCommand: fc.Arbitrary<DeskCommand> = fc.oneof(
  fc.record({
    type: fc.constant('RequestOrder' as const),
    order: fc.record({
      clientOrderId,
      portfolioId: fc.constant('paper-1h'),
      strategyId: fc.constant('manual'),
      symbol: fc.constant('BTCUSDT'),
      side: fc.constantFrom('buy' as const, 'sell' as const),
      type: fc.constant('market' as const),
      quantity: fc.constantFrom(1, 0),
      limitPrice: fc.constant(null),
      stopPrice: fc.constant(null),
      reduceOnly: fc.boolean(),
    }),
    requestedAt: fc.integer({ min: T, max: T + 1000 }),
  }),
  fc.record({
    type: fc.constant('RequestCancel' as const),
    clientOrderId,
    reason: fc.constant('user'),
    requestedAt: fc.integer({ min: T, max: T + 1000 }),
  }),
);

const owner: Party = { id: 'apikey:trader1', role: 'trader' };
const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const strategyId = 's1';
const strategyCommand: fc.Arbitrary<StrategyCommand> = fc.oneof(
  fc.constant<StrategyCommand>({
    type: 'CreateStrategy',
    strategyId,
    owner,
    name: 'BTC trend',
    description: '',
    kind: 'sma_crossover',
    symbols: ['BTCUSDT'],
    timeframe: '1h',
    parameters: { fastPeriod: 10, slowPeriod: 30, positionFraction: 0.5 },
    capitalRequest: 10_000,
  }),
  fc
    .constantFrom('a', 'b')
    .map((name): StrategyCommand => ({ type: 'EditStrategy', strategyId, changes: { name } })),
  fc.constantFrom('r1', 'r2').map((requestId): StrategyCommand => ({
    type: 'SubmitForReview',
    strategyId,
    requestId,
    by: owner,
  })),
  fc.constantFrom('r1', 'r2').map((requestId): StrategyCommand => ({
    type: 'ApproveActivation',
    strategyId,
    requestId,
    approvers: [risk],
  })),
  fc.constant<StrategyCommand>({ type: 'StartPaperTrading', strategyId }),
  fc.constant<StrategyCommand>({ type: 'PauseStrategy', strategyId, reason: 'test' }),
  fc.constant<StrategyCommand>({ type: 'ResumeStrategy', strategyId }),
);

const portfolioId = 'paper-1h';
const portfolioCommand: fc.Arbitrary<PortfolioCommand> = fc.oneof(
  fc.constant<PortfolioCommand>({
    type: 'SetPolicy',
    portfolioId,
    policy: defaultPolicy(),
    by: risk,
    at: AT,
  }),
  fc.constantFrom('s1', 's2').map((member): PortfolioCommand => ({
    type: 'AddMember',
    portfolioId,
    strategyId: member,
    by: risk,
    at: AT,
  })),
  fc.constantFrom('p1', 'p2', 'p3').map((proposalId): PortfolioCommand => ({
    type: 'RecordProposalFailure',
    portfolioId,
    proposalId,
    trigger: { type: 'schedule', detail: 'test', figures: {} },
    method: 'equal_weight',
    code: 'NO_DATA',
    reason: 'test',
    at: AT,
  })),
);

describe('keyed commands and snapshots (ADR 032)', () => {
  it('give every desk command, keyed or not, the same result with snapshots as without', async () => {
    await fc.assert(
      fc.asyncProperty(steps(deskCommand), every, async (list, n) => {
        await sameWithAndWithout(desk, deskStream('paper-1h'), list, n);
      }),
      { numRuns: 50 },
    );
  });

  it('give every strategy command, keyed or not, the same result with snapshots as without', async () => {
    await fc.assert(
      fc.asyncProperty(steps(strategyCommand), every, async (list, n) => {
        await sameWithAndWithout(strategies, `strategy-${strategyId}`, list, n);
      }),
      { numRuns: 50 },
    );
  });

  it('give every portfolio command, keyed or not, the same result with snapshots as without', async () => {
    await fc.assert(
      fc.asyncProperty(steps(portfolioCommand), every, async (list, n) => {
        await sameWithAndWithout(portfolios, portfolioStream(portfolioId), list, n);
      }),
      { numRuns: 50 },
    );
  });

  it('load a keyed command from the snapshot: no read starts at the first event', async () => {
    const store = new WatchedStore();
    const handler = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
      snapshots: { store: new InMemorySnapshotStore(), every: 5, schemaOf: snapshotSchemaOf },
      // By id, as PostgreSQL does it: never a read of the stream.
      eventIds: { find: () => Promise.resolve([]) },
    });
    const cancel = (i: number) => ({
      type: 'RequestCancel' as const,
      clientOrderId: `m-${i}`,
      reason: 'user',
      requestedAt: T + i,
    });
    for (let i = 0; i < 12; i++)
      await handler.handle(desk, 'desk-p', cancel(i), {
        actor: 'a',
        idempotencyKey: `key-${i}-abc`,
      });
    store.reads.length = 0;
    await handler.handle(desk, 'desk-p', cancel(99), { actor: 'a', idempotencyKey: 'key-99-abc' });
    expect(store.reads.length).toBeGreaterThan(0);
    expect(store.reads.every((from) => from !== undefined && from > 0n)).toBe(true);
  });
});

// A decider that writes n events per command, to cross the look-up's batch of 16.
type Added = DomainEvent<'Added', { n: number }>;
const adderEvent = z.object({ type: z.literal('Added'), data: z.object({ n: z.number() }) });
const adder: Decider<{ total: number }, { type: 'Add'; count: number }, Added> = {
  initialState: () => ({ total: 0 }),
  evolve: (state, event) => ({ total: state.total + event.data.n }),
  decide: (command) =>
    Array.from({ length: command.count }, (_, n) => ({ type: 'Added' as const, data: { n } })),
  parseEvent: (event) => adderEvent.parse(event),
};

describe('a keyed retry after a crash (ADR 032)', () => {
  it.each([1, 16, 40])(
    'finds the %i events the first run wrote by id, even after a snapshot taken past them',
    async (count) => {
      const store = new InMemoryEventStore();
      const snapshots = new InMemorySnapshotStore();
      const options = {
        eventStore: store,
        snapshots: { store: snapshots, every: 1, schemaOf: () => 'adder/1' },
      };
      const plain = new CommandHandler({ ...options, idempotency: new InMemoryIdempotencyStore() });
      await plain.handle(adder, 'adder-1', { type: 'Add', count: 3 }, { actor: 'a' });
      // The crash: the append is done, the key is never completed.
      const dying = new InMemoryIdempotencyStore();
      dying.complete = () => Promise.reject(new Error('killed'));
      const first = new CommandHandler({ ...options, idempotency: dying });
      const command = { type: 'Add' as const, count };
      const context = { actor: 'a', idempotencyKey: 'key-crash' };
      await expect(first.handle(adder, 'adder-1', command, context)).rejects.toThrow('killed');
      // Others write after it, and a snapshot is taken past its events.
      await plain.handle(adder, 'adder-1', { type: 'Add', count: 2 }, { actor: 'a' });
      await plain.load(adder, 'adder-1');
      expect((await snapshots.load('adder-1'))?.revision).toBe(BigInt(3 + count + 2 - 1));
      // After the lease another process claims the key afresh.
      const retry = new CommandHandler({ ...options, idempotency: new InMemoryIdempotencyStore() });
      const again = await retry.handle(adder, 'adder-1', command, context);
      const written = await store.readStream('adder-1');
      const last = written[3 + count - 1]!;
      expect(again).toEqual({
        streamId: 'adder-1',
        nextExpectedRevision: last.revision,
        position: last.position,
        eventCount: count,
        replayed: true,
      });
      expect(written).toHaveLength(3 + count + 2);
    },
  );
});
