import type { CommandHandler } from '../../core/commands/command-handler.js';
import { orderStream, orders, type OrderRequest } from '../../core/trading/orders.js';

/** A market buy of one BTCUSDT by strategy s-1 in portfolio paper-1m: the retention specs' order. */
export const marketBuy = (clientOrderId: string): OrderRequest => ({
  clientOrderId,
  portfolioId: 'paper-1m',
  strategyId: 's-1',
  symbol: 'BTCUSDT',
  side: 'buy',
  type: 'market',
  quantity: 1,
  limitPrice: null,
  stopPrice: null,
  reduceOnly: false,
});

/**
 * `marketBuy(id)` submitted at `time` and, when `closed`, accepted and cancelled at the same time
 * (a closed order, which retention may archive); answers the position of its last event.
 */
export async function placeOrder(
  commands: CommandHandler,
  id: string,
  time: number,
  { closed, actor }: { closed: boolean; actor: string },
): Promise<bigint> {
  const run = (command: Record<string, unknown>) =>
    commands.handle(orders, orderStream(id), command as never, { actor });
  let { position } = await run({ type: 'SubmitOrder', order: marketBuy(id), time });
  if (closed) {
    const terms = { quantity: 1, limitPrice: null, stopPrice: null };
    await run({ type: 'AcceptOrder', clientOrderId: id, venueOrderId: `v-${id}`, ...terms, time });
    ({ position } = await run({ type: 'CancelOrder', clientOrderId: id, reason: 'user', time }));
  }
  return position;
}
