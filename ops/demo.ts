/**
 * `qcat serve --demo`: on a store without strategies, three strategies go through the real
 * lifecycle (created by a demo trader, reviewed and approved by a demo risk officer, four eyes,
 * started in paper) so the synthetic feed and the paper engine show orders, positions and PnL
 * within a minute. Every step is an ordinary command with its actor, visible in the audit trail.
 */
import { v5 as uuidv5 } from 'uuid';
import type { Party } from '../core/approvals/approval.js';
import { approvals } from '../core/approvals/approval.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import {
  strategies,
  strategyStream,
  type StrategyDefinition,
} from '../core/strategies/strategy.js';
import { approvalStream } from '../core/approvals/approval.js';
import type { Logger } from './runtime.js';

const NAMESPACE = '6d1f3c1e-9a57-4f57-8f55-3c0f4d5e2a10';
const TRADER: Party = { id: 'system:demo-trader', role: 'trader' };
const RISK_OFFICER: Party = { id: 'system:demo-risk-officer', role: 'risk_officer' };

/** Short periods on 1m bars, so a sped-up feed shows trades within a minute. */
export const DEMO_STRATEGIES: readonly StrategyDefinition[] = [
  {
    name: 'Demo BTC/ETH trend (SMA 5/20)',
    description: 'Demo: fast moving-average crossover on BTC and ETH.',
    kind: 'sma_crossover',
    symbols: ['BTCUSDT', 'ETHUSDT'],
    timeframe: '1m',
    parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
    capitalRequest: 30_000,
  },
  {
    name: 'Demo SOL mean reversion (RSI 7)',
    description: 'Demo: buys short dips on SOL, sells the bounce.',
    kind: 'rsi_mean_reversion',
    symbols: ['SOLUSDT'],
    timeframe: '1m',
    parameters: { period: 7, oversold: 35, overbought: 60, positionFraction: 0.5 },
    capitalRequest: 20_000,
  },
  {
    name: 'Demo breakout (Donchian 10/5)',
    description: 'Demo: channel breakouts on BNB and XRP.',
    kind: 'donchian_breakout',
    symbols: ['BNBUSDT', 'XRPUSDT'],
    timeframe: '1m',
    parameters: { entryPeriod: 10, exitPeriod: 5, positionFraction: 0.5 },
    capitalRequest: 20_000,
  },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `streamId` has an event of `type` (written by the approval flow). */
async function until(store: EventStore, streamId: string, type: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await store.readStream(streamId)).some((event) => event.type === type)) return;
    await sleep(100);
  }
  throw new Error(`demo: ${streamId} has no ${type} after 60 s (are the projections running?)`);
}

/**
 * Takes each demo strategy (fixed ids) as far as paper trading, from wherever it is: a second
 * start, or one after an interrupted seed, does only what is missing. Answers how many it moved.
 */
export async function seedDemo(
  commands: CommandHandler,
  store: EventStore,
  log: Logger,
): Promise<number> {
  let moved = 0;
  for (const [index, definition] of DEMO_STRATEGIES.entries()) {
    const strategyId = uuidv5(`demo-strategy:${index}`, NAMESPACE);
    const requestId = uuidv5(`demo-review:${index}`, NAMESPACE);
    const stream = strategyStream(strategyId);
    const as = (party: Party) => ({ actor: party.id });
    const status = async () => (await commands.load(strategies, stream)).state.status;
    if ((await status()) === 'none')
      await commands.handle(
        strategies,
        stream,
        { type: 'CreateStrategy', strategyId, owner: TRADER, ...definition },
        as(TRADER),
      );
    if ((await status()) === 'draft')
      await commands.handle(
        strategies,
        stream,
        { type: 'SubmitForReview', strategyId, requestId, by: TRADER },
        as(TRADER),
      );
    if ((await status()) === 'in_review') {
      await until(store, approvalStream(requestId), 'ApprovalRequested');
      await commands.handle(
        approvals,
        approvalStream(requestId),
        {
          type: 'GrantApproval',
          requestId,
          approver: RISK_OFFICER,
          comment: 'demo',
          now: new Date().toISOString(),
        },
        as(RISK_OFFICER),
      );
      await until(store, stream, 'StrategyApproved');
    }
    if ((await status()) === 'approved') {
      await commands.handle(
        strategies,
        stream,
        { type: 'StartPaperTrading', strategyId },
        as(TRADER),
      );
      moved++;
      log.info(`demo: strategy "${definition.name}" (${strategyId}) approved and paper trading`);
    }
  }
  return moved;
}
