import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import { ConcurrencyConflictError, QcatError } from '../errors.js';
import type { AppendResult, EventStore } from '../eventstore/event-store.js';
import { InMemoryEventStore } from '../eventstore/in-memory-event-store.js';
import { Upcasters } from '../eventstore/upcasting.js';
import { CommandHandler } from './command-handler.js';
import { InMemoryIdempotencyStore } from './idempotency.js';

// A small aggregate for the handler's sake: a trader's watchlist of symbols.
type WatchlistEvent =
  | DomainEvent<'SymbolWatched', { symbol: string; note: string }>
  | DomainEvent<'SymbolUnwatched', { symbol: string }>;
type WatchlistCommand = { type: 'Watch'; symbol: string } | { type: 'Unwatch'; symbol: string };
type Watchlist = { symbols: string[]; notes: string[] };

const watchlistEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('SymbolWatched'),
    data: z.object({ symbol: z.string(), note: z.string() }),
  }),
  z.object({ type: z.literal('SymbolUnwatched'), data: z.object({ symbol: z.string() }) }),
]);

const watchlist: Decider<Watchlist, WatchlistCommand, WatchlistEvent> = {
  initialState: () => ({ symbols: [], notes: [] }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'SymbolWatched':
        return {
          symbols: [...state.symbols, event.data.symbol],
          notes: [...state.notes, event.data.note],
        };
      case 'SymbolUnwatched':
        return { ...state, symbols: state.symbols.filter((s) => s !== event.data.symbol) };
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'Watch':
        if (state.symbols.includes(command.symbol)) return [];
        return [{ type: 'SymbolWatched', data: { symbol: command.symbol, note: '' } }];
      case 'Unwatch':
        if (!state.symbols.includes(command.symbol)) {
          throw new QcatError('NOT_WATCHED', `${command.symbol} is not on the watchlist`);
        }
        return [{ type: 'SymbolUnwatched', data: { symbol: command.symbol } }];
    }
  },
  parseEvent: (event) => watchlistEvent.parse(event),
};

const setup = (
  overrides: { eventStore?: EventStore; upcasters?: Upcasters; maxRetries?: number } = {},
) => {
  const store = new InMemoryEventStore();
  const handler = new CommandHandler({
    eventStore: overrides.eventStore ?? store,
    idempotency: new InMemoryIdempotencyStore(),
    sleep: () => Promise.resolve(),
    ...(overrides.upcasters ? { upcasters: overrides.upcasters } : {}),
    ...(overrides.maxRetries === undefined ? {} : { maxRetries: overrides.maxRetries }),
  });
  return { store, handler };
};

/** A store that lets `racer` append first, `times` times, as another process would. */
class RacingStore extends InMemoryEventStore {
  constructor(
    private times: number,
    private readonly racer: (store: InMemoryEventStore) => Promise<unknown>,
  ) {
    super();
  }
  override async appendToStream(
    ...args: Parameters<EventStore['appendToStream']>
  ): Promise<AppendResult> {
    if (this.times > 0) {
      this.times--;
      await this.racer(this.connect());
    }
    return super.appendToStream(...args);
  }
}

describe('command handler', () => {
  it('appends what the decider decides, with actor, correlation and causation on every event', async () => {
    const { store, handler } = setup();
    const result = await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'BTCUSDT' },
      {
        actor: 'trader-1',
        correlationId: 'corr-9',
        causationId: 'evt-3',
      },
    );
    expect(result).toMatchObject({
      streamId: 'watchlist-u1',
      nextExpectedRevision: 0n,
      eventCount: 1,
    });
    const [event] = await store.readStream('watchlist-u1');
    expect(event?.position).toBe(result.position);
    expect(event?.metadata).toEqual({
      actor: 'trader-1',
      correlationId: 'corr-9',
      causationId: 'evt-3',
      schemaVersion: 1,
    });
  });

  it('uses the command id as correlation and causation when none are given', async () => {
    const { store, handler } = setup();
    await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'ETHUSDT' },
      { actor: 'a', commandId: 'cmd-1' },
    );
    const [event] = await store.readStream('watchlist-u1');
    expect(event?.metadata).toMatchObject({ correlationId: 'cmd-1', causationId: 'cmd-1' });
  });

  it('writes nothing for a command that changes nothing', async () => {
    const { store, handler } = setup();
    await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'BTCUSDT' },
      { actor: 'a' },
    );
    const again = await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'BTCUSDT' },
      { actor: 'a' },
    );
    expect(again.eventCount).toBe(0);
    expect(await store.readStream('watchlist-u1')).toHaveLength(1);
  });

  it('passes a refusal through and writes nothing', async () => {
    const { store, handler } = setup();
    await expect(
      handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Unwatch', symbol: 'BTCUSDT' },
        { actor: 'a' },
      ),
    ).rejects.toMatchObject({ code: 'NOT_WATCHED' });
    expect(await store.headPosition()).toBe(0n);
  });

  it('re-loads and re-decides after a concurrent append', async () => {
    const racing = new RacingStore(2, (store) =>
      store.appendToStream('watchlist-u1', [
        {
          type: 'SymbolWatched',
          data: { symbol: `R${String(Math.random())}`, note: '' },
          metadata: { actor: 'other' },
        },
      ]),
    );
    const { handler } = setup({ eventStore: racing });
    const result = await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'SOLUSDT' },
      { actor: 'a' },
    );
    expect(result.nextExpectedRevision).toBe(2n);
    const events = await racing.readStream('watchlist-u1');
    expect(events.map((e) => e.metadata.actor)).toEqual(['other', 'other', 'a']);
  });

  it('gives up with a typed conflict after the bounded retries', async () => {
    const racing = new RacingStore(10, (store) =>
      store.appendToStream('watchlist-u1', [
        { type: 'SymbolWatched', data: { symbol: 'X', note: '' }, metadata: { actor: 'other' } },
      ]),
    );
    const { handler } = setup({ eventStore: racing, maxRetries: 2 });
    await expect(
      handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'SOLUSDT' },
        { actor: 'a' },
      ),
    ).rejects.toBeInstanceOf(ConcurrencyConflictError);
    // 1 try + 2 retries, each beaten by the racer; nothing of ours was written.
    expect((await racing.readStream('watchlist-u1')).map((e) => e.metadata.actor)).toEqual([
      'other',
      'other',
      'other',
    ]);
  });

  it("refuses a client's stale expected revision at once", async () => {
    const { store, handler } = setup();
    await handler.handle(
      watchlist,
      'watchlist-u1',
      { type: 'Watch', symbol: 'BTCUSDT' },
      { actor: 'a' },
    );
    await expect(
      handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'ETHUSDT' },
        { actor: 'a', expectedRevision: 5n },
      ),
    ).rejects.toMatchObject({ code: 'CONCURRENCY_CONFLICT', expected: '5', actual: '0' });
    expect(await store.readStream('watchlist-u1')).toHaveLength(1);
  });

  describe('idempotency keys', () => {
    it('returns the first result for the same key and command, and writes nothing', async () => {
      const { store, handler } = setup();
      const command = { type: 'Watch', symbol: 'BTCUSDT' } as const;
      const first = await handler.handle(watchlist, 'watchlist-u1', command, {
        actor: 'a',
        idempotencyKey: 'k1',
      });
      const head = await store.headPosition();
      const second = await handler.handle(
        watchlist,
        'watchlist-u1',
        { symbol: 'BTCUSDT', type: 'Watch' },
        {
          actor: 'a',
          idempotencyKey: 'k1',
        },
      );
      expect(second).toEqual({ ...first, replayed: true });
      expect(await store.headPosition()).toBe(head);
    });

    it("hashes the client's input when given, not the command's server-side values", async () => {
      const { store, handler } = setup();
      const input = { route: 'POST /watch', body: { symbol: 'BTCUSDT' } };
      const first = await handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'BTCUSDT' },
        { actor: 'a', idempotencyKey: 'k1', clientInput: input },
      );
      // A retry whose command differs only by what the server added (here: another symbol).
      const second = await handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'ETHUSDT' },
        { actor: 'a', idempotencyKey: 'k1', clientInput: input },
      );
      expect(second).toEqual({ ...first, replayed: true });
      expect(await store.readStream('watchlist-u1')).toHaveLength(1);
      await expect(
        handler.handle(
          watchlist,
          'watchlist-u1',
          { type: 'Watch', symbol: 'BTCUSDT' },
          { actor: 'a', idempotencyKey: 'k1', clientInput: { ...input, body: {} } },
        ),
      ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    });

    it('recovers the first result from its events when the process died before completing the key', async () => {
      const store = new InMemoryEventStore();
      // The crash point: the append is done, the key is never completed nor released.
      const dying = new InMemoryIdempotencyStore();
      dying.complete = () => Promise.reject(new Error('killed'));
      dying.release = () => Promise.resolve();
      const first = new CommandHandler({ eventStore: store, idempotency: dying });
      await expect(
        first.handle(
          watchlist,
          'watchlist-u1',
          { type: 'Watch', symbol: 'BTCUSDT' },
          { actor: 'a', idempotencyKey: 'k2' },
        ),
      ).rejects.toThrow('killed');
      // After the lease another process claims the key afresh (a new store stands for that).
      const retry = new CommandHandler({
        eventStore: store,
        idempotency: new InMemoryIdempotencyStore(),
      });
      const again = await retry.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'BTCUSDT' },
        { actor: 'a', idempotencyKey: 'k2' },
      );
      expect(again).toEqual({
        streamId: 'watchlist-u1',
        nextExpectedRevision: 0n,
        position: 1n,
        eventCount: 1,
        replayed: true,
      });
      expect(await store.readStream('watchlist-u1')).toHaveLength(1);
    });

    it('refuses the same key with a different command', async () => {
      const { handler } = setup();
      await handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'BTCUSDT' },
        { actor: 'a', idempotencyKey: 'k1' },
      );
      await expect(
        handler.handle(
          watchlist,
          'watchlist-u1',
          { type: 'Watch', symbol: 'ETHUSDT' },
          { actor: 'a', idempotencyKey: 'k1' },
        ),
      ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    });

    it('keeps keys apart per actor', async () => {
      const { store, handler } = setup();
      await handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'BTCUSDT' },
        { actor: 'a', idempotencyKey: 'k1' },
      );
      await handler.handle(
        watchlist,
        'watchlist-u2',
        { type: 'Watch', symbol: 'BTCUSDT' },
        { actor: 'b', idempotencyKey: 'k1' },
      );
      expect(await store.headPosition()).toBe(2n);
    });

    it('frees the key when the command fails, so a corrected retry may use it', async () => {
      const { handler } = setup();
      await expect(
        handler.handle(
          watchlist,
          'watchlist-u1',
          { type: 'Unwatch', symbol: 'BTCUSDT' },
          { actor: 'a', idempotencyKey: 'k1' },
        ),
      ).rejects.toMatchObject({ code: 'NOT_WATCHED' });
      await expect(
        handler.handle(
          watchlist,
          'watchlist-u1',
          { type: 'Watch', symbol: 'BTCUSDT' },
          { actor: 'a', idempotencyKey: 'k1' },
        ),
      ).resolves.toMatchObject({ eventCount: 1 });
    });

    it('derives event ids from the key, so a racing duplicate cannot write twice', async () => {
      const store = new InMemoryEventStore();
      const make = () =>
        new CommandHandler({
          eventStore: store,
          idempotency: new InMemoryIdempotencyStore(),
          sleep: () => Promise.resolve(),
        });
      const command = { type: 'Watch', symbol: 'BTCUSDT' } as const;
      const [a, b] = await Promise.all([
        make().handle(watchlist, 'watchlist-u1', command, { actor: 'a', idempotencyKey: 'k1' }),
        make().handle(watchlist, 'watchlist-u1', command, { actor: 'a', idempotencyKey: 'k1' }),
      ]);
      expect(a.position).toBe(b.position);
      expect(await store.readStream('watchlist-u1')).toHaveLength(1);
    });
  });

  describe('schema versions', () => {
    // Version 1 of SymbolWatched had `ticker`; version 2 renamed it `symbol` and added `note`.
    const upcasters = new Upcasters([
      {
        type: 'SymbolWatched',
        fromVersion: 1,
        upcast: (data) => {
          const old = data !== null && typeof data === 'object' && !Array.isArray(data) ? data : {};
          return { symbol: old['ticker'] ?? null, note: 'migrated from v1' };
        },
      },
    ]);

    it('reads an old-shape event in the current shape', async () => {
      const { store, handler } = setup({ upcasters });
      await store.appendToStream('watchlist-u1', [
        {
          type: 'SymbolWatched',
          data: { ticker: 'BTCUSDT' },
          metadata: { actor: 'legacy', schemaVersion: 1 },
        },
      ]);
      const { state } = await handler.load(watchlist, 'watchlist-u1');
      expect(state).toEqual({ symbols: ['BTCUSDT'], notes: ['migrated from v1'] });
      const [stored] = await store.readStream('watchlist-u1');
      expect(stored?.data).toEqual({ ticker: 'BTCUSDT' }); // the log itself never changes
    });

    it('writes new events at the current version', async () => {
      const { store, handler } = setup({ upcasters });
      await handler.handle(
        watchlist,
        'watchlist-u1',
        { type: 'Watch', symbol: 'ETHUSDT' },
        { actor: 'a' },
      );
      const [event] = await store.readStream('watchlist-u1');
      expect(event?.metadata.schemaVersion).toBe(2);
      expect(upcasters.apply(event!)).toEqual(event);
    });
  });
});
