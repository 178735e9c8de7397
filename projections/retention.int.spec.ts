import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../core/commands/idempotency.js';
import { valuationStream } from '../core/engine/engine.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { orderStream, orders } from '../core/trading/orders.js';
import { marketBuy } from '../test/support/paper-orders.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { PostgresTarget } from './postgres-target.js';
import { archiveTrading } from './retention-queries.js';
import { tradingProjection } from './trading.js';
import { TradingQueries } from './trading-queries.js';

/**
 * The trading read model's retention (ADR 032): closed orders, their fills and valuations older
 * than the horizon move to archive tables; recent queries no longer see them, history queries and
 * look-ups by id still do, and the projection goes on applying events to what stays hot.
 */
const DAY = 86_400_000;
const OLD = Date.now() - 400 * DAY;
const NEW = Date.now() - DAY;
const actor = 'retention-test';

describe('trading read model retention', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let target: PostgresTarget;
  let queries: TradingQueries;

  const order = async (
    id: string,
    time: number,
    steps: (JsonObject & { type: string })[],
  ): Promise<void> => {
    const request = marketBuy(id);
    const run = (command: JsonObject & { type: string }) =>
      commands.handle(orders, orderStream(id), command as never, { actor });
    await run({ type: 'SubmitOrder', order: request, time });
    for (const step of steps) await run({ clientOrderId: id, time, ...step });
  };
  const accept: JsonObject & { type: string } = {
    type: 'AcceptOrder',
    venueOrderId: randomUUID(),
    quantity: 1,
    limitPrice: null,
    stopPrice: null,
  };
  const fill = (id: string): JsonObject & { type: string } => ({
    type: 'RecordFill',
    fill: {
      fillId: `${id}#1`,
      price: 30_000,
      quantity: 1,
      fee: 15,
      feeCurrency: 'USDT',
      liquidity: 'taker',
      slippage: 0,
    },
  });
  const valued = (time: number, equity: number) =>
    store.appendToStream(valuationStream('paper-1m'), [
      {
        type: 'PortfolioValued',
        data: {
          portfolioId: 'paper-1m',
          currency: 'USDT',
          time,
          cycle: 1,
          cash: equity,
          equity,
          feesPaid: 0,
          realizedPnl: 0,
          unrealizedPnl: 0,
          positions: [],
        },
        metadata: { actor },
      },
    ]);
  const project = async (): Promise<void> => {
    const after = await target.checkpoint();
    await target.apply(await store.readAll({ after, maxCount: 10_000 }));
  };
  const ids = (rows: { client_order_id: string }[]) => rows.map((row) => row.client_order_id);

  beforeAll(async () => {
    database = await createTestDatabase('retention');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
    });
    target = new PostgresTarget(store.pool, tradingProjection);
    await target.ensure();
    queries = new TradingQueries(store.pool);
    await order('o-old-filled', OLD, [accept, fill('o-old-filled')]);
    await order('o-old-open', OLD, [accept]);
    await order('o-new-filled', NEW, [accept, fill('o-new-filled')]);
    await valued(OLD, 100_000);
    await valued(NEW, 101_000);
    await project();
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('reads the same with history as without before anything is archived', async () => {
    const all = await queries.orders({ limit: 100 });
    expect(ids(all)).toEqual(['o-old-filled', 'o-old-open', 'o-new-filled']);
    expect(await queries.orders({ limit: 100, history: true })).toEqual(all);
  });

  it('moves closed orders, their fills and valuations older than the horizon, and nothing else', async () => {
    const result = await archiveTrading(store.pool, new Date(Date.now() - 30 * DAY), 1);
    expect(result.moved).toEqual({ orders: 1, fills: 1, portfolio_equity: 1 });
    // Run again: nothing left to move.
    const again = await archiveTrading(store.pool, new Date(Date.now() - 30 * DAY));
    expect(again.moved).toEqual({ orders: 0, fills: 0, portfolio_equity: 0 });

    expect(ids(await queries.orders({ limit: 100 }))).toEqual(['o-old-open', 'o-new-filled']);
    expect(ids(await queries.orders({ limit: 100, history: true }))).toEqual([
      'o-old-filled',
      'o-old-open',
      'o-new-filled',
    ]);
    expect((await queries.fills({ limit: 100 })).map((f) => f.fill_id)).toEqual(['o-new-filled#1']);
    expect((await queries.fills({ limit: 100, history: true })).map((f) => f.fill_id)).toEqual([
      'o-old-filled#1',
      'o-new-filled#1',
    ]);
    // Look-ups by id find an archived order and its fills.
    expect((await queries.order('o-old-filled'))?.status).toBe('filled');
    expect((await queries.fillsOf('o-old-filled')).map((f) => f.fill_id)).toEqual([
      'o-old-filled#1',
    ]);
    expect(await queries.order('o-none')).toBeUndefined();
    const equity = (history: boolean) =>
      queries
        .equity('paper-1m', { limit: 100, history })
        .then((points) => points.map((p) => p.equity));
    expect(await equity(false)).toEqual([101_000]);
    expect(await equity(true)).toEqual([100_000, 101_000]);
  });

  it('goes on applying events to the rows that stayed hot', async () => {
    await commands.handle(
      orders,
      orderStream('o-old-open'),
      { type: 'CancelOrder', clientOrderId: 'o-old-open', reason: 'user', time: NEW } as never,
      { actor },
    );
    await project();
    expect((await queries.order('o-old-open'))?.status).toBe('cancelled');
    // Cancelled recently: it stays hot.
    const result = await archiveTrading(store.pool, new Date(Date.now() - 30 * DAY));
    expect(result.moved.orders).toBe(0);
  });
});
