import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Decider, DomainEvent } from '../decider.js';
import { desk, deskDecider, deskStream, type DeskCommand } from '../engine/desk.js';
import { InMemoryEventStore } from '../eventstore/in-memory-event-store.js';
import { tradingStateStream } from '../risk/common.js';
import { tradingStates, type TradingStateCommand } from '../risk/trading-state.js';
import { SNAPSHOT_SCHEMAS, snapshotSchemaOf } from '../snapshot-schemas.js';
import { CommandHandler } from './command-handler.js';
import { InMemoryIdempotencyStore } from './idempotency.js';
import { InMemorySnapshotStore } from './snapshots.js';

type AnyDecider = Decider<unknown, unknown, DomainEvent>;

/** A command's outcome, comparable across handlers: its result, or its refusal. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { refused: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

function handlers(
  every: number,
  schemaOf: (decider: AnyDecider) => string | undefined = snapshotSchemaOf,
): {
  plain: CommandHandler;
  snapshotted: CommandHandler;
  snapshots: InMemorySnapshotStore;
} {
  const snapshots = new InMemorySnapshotStore();
  return {
    plain: new CommandHandler({
      eventStore: new InMemoryEventStore(),
      idempotency: new InMemoryIdempotencyStore(),
    }),
    snapshotted: new CommandHandler({
      eventStore: new InMemoryEventStore(),
      idempotency: new InMemoryIdempotencyStore(),
      snapshots: { store: snapshots, every, schemaOf },
    }),
    snapshots,
  };
}

/** Runs every command through both handlers; each outcome and the final state must agree. */
async function sameWithAndWithout(
  decider: AnyDecider,
  streamId: string,
  commands: readonly unknown[],
  every: number,
  schemaOf?: (decider: AnyDecider) => string | undefined,
): Promise<number> {
  const { plain, snapshotted, snapshots } = handlers(every, schemaOf);
  for (const command of commands) {
    const context = { actor: 'snapshot-test' };
    const expected = await outcome(() =>
      plain.handle(decider, streamId, command as never, context),
    );
    const actual = await outcome(() =>
      snapshotted.handle(decider, streamId, command as never, context),
    );
    expect(actual).toEqual(expected);
  }
  expect(await snapshotted.load(decider, streamId)).toEqual(await plain.load(decider, streamId));
  return snapshots.saves;
}

const T = 1_700_000_000_000;
const clientOrderId = fc.constantFrom('m-a', 'm-b', 'm-c', 'm-d', 'x-bad', 'm-');
const deskCommand: fc.Arbitrary<DeskCommand> = fc.oneof(
  fc.record({
    type: fc.constant('RequestOrder' as const),
    order: fc.record({
      clientOrderId,
      portfolioId: fc.constant('paper-1h'),
      strategyId: fc.constant('manual'),
      symbol: fc.constantFrom('BTCUSDT', 'ETHUSDT'),
      side: fc.constantFrom('buy' as const, 'sell' as const),
      type: fc.constantFrom('market' as const, 'limit' as const),
      quantity: fc.constantFrom(1, 2, 0),
      limitPrice: fc.constantFrom(null, 100),
      stopPrice: fc.constant(null),
      reduceOnly: fc.boolean(),
    }),
    requestedAt: fc.integer({ min: T, max: T + 1000 }),
  }),
  fc.record({
    type: fc.constant('RequestCancel' as const),
    clientOrderId,
    reason: fc.constantFrom('user', 'risk'),
    requestedAt: fc.integer({ min: T, max: T + 1000 }),
  }),
);

const scope = { type: 'strategy', id: 's1' } as const;
const tradingStateCommand: fc.Arbitrary<TradingStateCommand> = fc.oneof(
  fc
    .record({
      rule: fc.constantFrom('strategy_drawdown' as const, 'daily_loss' as const),
      action: fc.constantFrom('REDUCING' as const, 'HALTED' as const, 'FLATTEN' as const),
      time: fc.integer({ min: T, max: T + 20 }),
      until: fc.constantFrom(null, T + 10, T + 30),
    })
    .map(({ rule, action, time, until }) => ({
      type: 'FireTrigger' as const,
      trigger: {
        triggerId: `${rule}-strategy-s1-${time}`,
        rule,
        scopeType: 'strategy' as const,
        scopeId: 's1',
        threshold: 0.1,
        observed: 0.12,
        reference: 1000,
        value: 880,
        window: { from: time - 100, to: time },
        action,
        until,
        time,
      },
    })),
  fc.record({
    type: fc.constant('MoveTradingState' as const),
    scope: fc.constant(scope),
    to: fc.constantFrom('ACTIVE' as const, 'REDUCING' as const, 'HALTED' as const),
    by: fc.constantFrom(
      { id: 'apikey:risk1', role: 'risk_officer' as const },
      { id: 'apikey:t1', role: 'trader' as const },
    ),
    reason: fc.constant('test'),
    time: fc.integer({ min: T, max: T + 40 }),
  }),
  fc.record({
    type: fc.constant('EndCooldown' as const),
    scope: fc.constant(scope),
    time: fc.integer({ min: T, max: T + 40 }),
  }),
);

describe('command-side snapshots (ADR 012)', () => {
  it('give every desk command the same result as folding the whole stream', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(deskCommand, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        async (commands, every) => {
          await sameWithAndWithout(desk, deskStream('paper-1h'), commands, every);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('give every trading-state command the same result as folding the whole stream', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(tradingStateCommand, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        async (commands, every) => {
          await sameWithAndWithout(tradingStates, tradingStateStream(scope), commands, every);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('give every command of a desk that forgets the same result as folding the whole stream', async () => {
    // A desk remembering 1 to 3 ids forgets within these sequences: what it forgot must be the
    // same whether its state came from a snapshot or from the whole stream.
    await fc.assert(
      fc.asyncProperty(
        fc.array(deskCommand, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        async (commands, every, remembers) => {
          const small = deskDecider(remembers) as unknown as AnyDecider;
          const schemaOf = (decider: AnyDecider): string | undefined =>
            decider === small ? 'desk-small/1' : undefined;
          await sameWithAndWithout(small, deskStream('paper-1h'), commands, every, schemaOf);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keep a desk snapshot the same size however long the stream grows', async () => {
    const small = deskDecider(3) as unknown as AnyDecider;
    const { snapshotted, snapshots } = handlers(2, (d) =>
      d === small ? 'desk-small/1' : undefined,
    );
    for (let i = 0; i < 20; i++)
      await snapshotted.handle(
        small,
        'desk-p',
        { type: 'RequestCancel', clientOrderId: `m-${i}`, reason: 'user', requestedAt: T },
        { actor: 'a' },
      );
    // Between 3 and 5 ids are remembered: the last ones, in order.
    const stored = (await snapshots.load('desk-p'))?.state as { cancelIds: string[] };
    expect(stored.cancelIds.length).toBeLessThan(6);
    const { state } = (await snapshotted.load(small, 'desk-p')) as {
      state: { cancelIds: string[]; cancels: Record<string, true> };
    };
    expect(state.cancelIds.length).toBeGreaterThanOrEqual(3);
    expect(state.cancelIds.length).toBeLessThan(6);
    const last = Array.from({ length: 20 }, (_, i) => `m-${i}`).slice(-state.cancelIds.length);
    expect(state.cancelIds).toEqual(last);
    expect(state.cancels).toEqual(Object.fromEntries(last.map((id) => [id, true])));
    // A forgotten cancel is written again; a remembered one is not.
    const again = (id: string) =>
      snapshotted.handle(
        small,
        'desk-p',
        { type: 'RequestCancel', clientOrderId: id, reason: 'user', requestedAt: T },
        { actor: 'a' },
      );
    expect((await again('m-19')).eventCount).toBe(0);
    expect((await again('m-0')).eventCount).toBe(1);
  });

  it('ignore a desk snapshot of the version that remembered every id (desk/1)', async () => {
    const { snapshotted, snapshots } = handlers(1);
    const streamId = 'desk-old';
    for (let i = 0; i < 3; i++)
      await snapshotted.handle(
        desk,
        streamId,
        { type: 'RequestCancel', clientOrderId: `m-${i}`, reason: 'user', requestedAt: T },
        { actor: 'a' },
      );
    const truth = (await snapshotted.load(desk, streamId)).state;
    const stored = await snapshots.load(streamId);
    expect(stored?.schema).toBe('desk/2');
    // Of this log and at its last event, but of the old version: the old shape, with no ids in
    // order and a cancel that never happened.
    const old = { orders: {}, cancels: { 'm-bogus': true } };
    snapshots.put(streamId, { ...stored!, schema: 'desk/1', state: old });
    expect((await snapshotted.load(desk, streamId)).state).toEqual(truth);
    expect(truth).toMatchObject({ cancelIds: ['m-0', 'm-1', 'm-2'] });
  });

  it('are written and used: a long desk stream is loaded from its snapshot', async () => {
    const commands: DeskCommand[] = Array.from({ length: 30 }, (_, i) => ({
      type: 'RequestCancel',
      clientOrderId: `m-${i}`,
      reason: 'user',
      requestedAt: T + i,
    }));
    const saves = await sameWithAndWithout(desk, 'desk-p', commands, 5);
    expect(saves).toBeGreaterThanOrEqual(5);
  });

  it('ignore a snapshot of another schema version or of another log', async () => {
    const { snapshotted, snapshots } = handlers(2);
    const streamId = 'desk-p';
    for (let i = 0; i < 6; i++) {
      await snapshotted.handle(
        desk,
        streamId,
        { type: 'RequestCancel', clientOrderId: `m-${i}`, reason: 'user', requestedAt: T },
        { actor: 'a' },
      );
    }
    const stored = await snapshots.load(streamId);
    expect(stored?.schema).toBe('desk/2');
    const truth = (await snapshotted.load(desk, streamId)).state;
    const bogus = {
      orders: {},
      cancels: { 'm-bogus': true },
      orderIds: [],
      cancelIds: ['m-bogus'],
    };
    // Another schema version: ignored.
    snapshots.put(streamId, { ...stored!, schema: 'desk/0', state: bogus });
    expect((await snapshotted.load(desk, streamId)).state).toEqual(truth);
    // Same schema, but the event at its revision is not the one it was taken after: ignored.
    snapshots.put(streamId, { ...stored!, eventId: crypto.randomUUID(), state: bogus });
    expect((await snapshotted.load(desk, streamId)).state).toEqual(truth);
    // ... and replaced by one of this log.
    expect((await snapshots.load(streamId))?.state).toEqual(truth);
  });

  it('cover only deciders whose state is plain JSON', () => {
    for (const decider of SNAPSHOT_SCHEMAS.keys()) {
      const state = (decider as AnyDecider).initialState();
      expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    }
  });
});
