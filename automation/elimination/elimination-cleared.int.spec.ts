import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../../core/adapters/postgres/postgres-idempotency-store.js';
import { approvals, approvalStream, type Party } from '../../core/approvals/approval.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import { CommandHandler } from '../../core/commands/command-handler.js';
import { elimination, eliminationStream } from '../../core/strategies/elimination.js';
import {
  strategies,
  strategyStream,
  type StrategyCommand,
} from '../../core/strategies/strategy.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { automationGate } from '../gate.js';
import { ProcessManagerTarget, type Outcome } from '../process-manager-target.js';
import {
  ELIMINATION_PARTY,
  eliminationManager,
  retirementRequestId,
  type EliminationReads,
} from './manager.js';

/**
 * Capability 7 when its suspension is cleared while a retirement request is open (a person resumed
 * the strategy): the daily run withdraws the request, and an approval that still comes retires
 * nothing. The flow itself is in elimination.int.spec.ts.
 */
const OWNER: Party = { id: 'apikey:analyst-1', role: 'analyst' };
const RISK: Party = { id: 'apikey:risk-1', role: 'risk_officer' };
const DAY = 86_400_000;
const D0 = Date.UTC(2026, 2, 1, 0, 30);
const day = (n: number) => new Date(D0 + n * DAY);

describe('elimination: an approval that comes after the suspension was cleared', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;

  beforeAll(async () => {
    database = await createTestDatabase('elimination_stale');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ('automation.elimination', 'process', 1)`,
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  /** A trading strategy suspended by elimination, proposed for retirement, the request open. */
  const proposed = async (id: string) => {
    const as = { actor: OWNER.id };
    const s = strategyStream(id);
    const run = (command: StrategyCommand) => commands.handle(strategies, s, command, as);
    await run({
      type: 'CreateStrategy',
      strategyId: id,
      owner: OWNER,
      name: 'resumed',
      description: 'resumed by a person before the retirement was approved',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1h',
      parameters: {},
      capitalRequest: 10_000,
    });
    await run({ type: 'SubmitForReview', strategyId: id, requestId: 'b1', by: OWNER });
    await run({
      type: 'ApproveActivation',
      strategyId: id,
      requestId: 'b1',
      approvers: [RISK],
    });
    await run({ type: 'StartPaperTrading', strategyId: id });
    const figures = {
      from: '2026-03-01',
      to: '2026-03-08',
      days: 7,
      sharpe: -3,
      drawdown: 0.1,
      losingWeeksInARow: 1,
    };
    const record = eliminationStream(id);
    const requestId = retirementRequestId(id, day(1).toISOString());
    await commands.handle(
      elimination,
      record,
      {
        type: 'Suspend',
        strategyId: id,
        at: day(1).toISOString(),
        figures,
        breaches: ['SHARPE_BELOW'],
      },
      as,
    );
    await run({ type: 'PauseStrategy', strategyId: id, reason: 'elimination' });
    await commands.handle(
      elimination,
      record,
      {
        type: 'ProposeRetirement',
        strategyId: id,
        at: day(8).toISOString(),
        requestId,
        figures,
        breaches: ['SHARPE_BELOW'],
      },
      as,
    );
    await commands.handle(
      approvals,
      approvalStream(requestId),
      {
        type: 'RequestApproval',
        requestId,
        kind: 'strategy_retirement',
        subject: { type: 'strategy_retirement', id },
        requester: ELIMINATION_PARTY,
        payload: { strategyId: id },
        reason: 'still breaching',
        now: day(8).toISOString(),
      },
      as,
    );
    return { as, s, run, record, requestId };
  };

  it.each([
    ['s2', true],
    ['s3', false],
  ])(
    'does not retire a strategy a person resumed (%s; suspension cleared by a daily run before the approval: %s)',
    async (id, cleared) => {
      const { as, s, run, record, requestId } = await proposed(id);
      // A person resumes it; the next daily run clears the suspension (the request stays open).
      await run({ type: 'ResumeStrategy', strategyId: id });
      if (cleared)
        await commands.handle(
          elimination,
          record,
          {
            type: 'ClearSuspension',
            strategyId: id,
            at: day(9).toISOString(),
            outcome: 'resumed',
            reason: 'resumed by a person before retirement',
          },
          as,
        );
      await commands.handle(
        approvals,
        approvalStream(requestId),
        {
          type: 'GrantApproval',
          requestId,
          approver: RISK,
          comment: 'ok',
          now: day(10).toISOString(),
        },
        { actor: RISK.id },
      );
      const approved = (await store.readStream(approvalStream(requestId))).find(
        (e) => e.type === 'ApprovalApproved',
      );
      if (!approved) throw new Error('not approved');
      const outcomes: Outcome[] = [];
      await new ProcessManagerTarget(
        store.pool,
        eliminationManager({ commands, reads: {} as EliminationReads }),
        commands,
        {
          eventStore: store,
          gate: automationGate(commands, () => Promise.resolve([])),
          onOutcome: (o) => outcomes.push(o),
        },
      ).apply([approved]);
      const { state } = await commands.load(strategies, s);
      expect(state.status).toBe('paper');
      expect(outcomes).toEqual([
        cleared
          ? expect.objectContaining({ command: 'ConfirmRetirement', result: 'refused' })
          : expect.objectContaining({ command: 'ClearSuspension', result: 'acted' }),
      ]);
      const cleanup = (await store.readStream(record)).at(-1);
      expect(cleanup?.type).toBe('StrategySuspensionCleared');
      expect(cleanup?.data).toMatchObject({ outcome: 'resumed' });
    },
  );

  it('when a daily run clears the suspension of a strategy a person resumed, it withdraws the open retirement request, once', async () => {
    const { run, record, requestId } = await proposed('s4');
    await run({ type: 'ResumeStrategy', strategyId: 's4' });
    await commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      {
        type: 'ConfigureAutomationCapability',
        capability: 'elimination',
        enabled: true,
        by: RISK,
        time: 1,
      },
      { actor: RISK.id },
    );
    const reads: EliminationReads = {
      strategies: async () => {
        const { state } = await commands.load(strategies, strategyStream('s4'));
        const s4 = { strategyId: 's4', status: state.status, kind: 'sma_crossover' };
        return [{ ...s4, parameters: {}, symbols: ['BTCUSDT'], timeframe: '1h', capital: 10_000 }];
      },
      openPositions: () => Promise.resolve([]),
      equity: () => Promise.resolve(null),
    };
    const target = () =>
      new ProcessManagerTarget(store.pool, eliminationManager({ commands, reads }), commands, {
        eventStore: store,
        gate: automationGate(commands, () => Promise.resolve([])),
      });
    await target().tick(day(9));
    await target().tick(day(9)); // a restart repeats nothing
    const request = await store.readStream(approvalStream(requestId));
    expect(request.map((e) => e.type)).toEqual(['ApprovalRequested', 'ApprovalWithdrawn']);
    expect(request[1]?.data).toMatchObject({ by: ELIMINATION_PARTY });
    expect(request[1]?.metadata).toMatchObject({ actor: 'automation:elimination' });
    // The withdrawal it caused finds the record already cleared as resumed: nothing more.
    await target().apply([request[1] as (typeof request)[number]]);
    const cleared = (await store.readStream(record)).map((e) => e.type);
    expect(cleared).toEqual([
      'StrategySuspended',
      'StrategyRetirementProposed',
      'StrategySuspensionCleared',
    ]);
    expect((await store.readStream(record)).at(-1)?.data).toMatchObject({ outcome: 'resumed' });
  });
});
