import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import type { Party } from '../core/approvals/approval.js';
import type { Capability } from '../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { DEFAULT_GATE } from '../core/optimization/gate.js';
import type { OptimizationRun } from '../core/optimization/optimization.js';
import { portfolioStream } from '../core/portfolio/events.js';
import { portfolios } from '../core/portfolio/portfolio.js';
import { KILL_SWITCH_STREAM } from '../core/risk/common.js';
import { killSwitch } from '../core/risk/kill-switch.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { allocationManager } from './allocation/rebalancing.js';
import { automationGate } from './gate.js';
import { adoptionIntents, optimizationAdoption } from './optimization/adoption.js';
import { ProcessManagerTarget } from './process-manager-target.js';
import type { ProcessManager } from './process-manager.js';

/**
 * Capabilities 2 (adoption) and 3 (rebalancing) behind the one control (automation/gate.ts):
 * given the policy's switch off, the kill switch engaged or a portfolio HALTED, when their cause
 * arrives, then they issue nothing and record the hold with its reason. 4, 5 and 9 run in the
 * paper engine: core/engine/automation.int.spec.ts. 10: automation/process-manager.int.spec.ts.
 */
const RISK: Party = { id: 'apikey:risk-1', role: 'risk_officer' };

const now = (): string => new Date().toISOString();

const completedRun = (strategyId: string): OptimizationRun =>
  ({
    optimizationId: `o-${strategyId}`,
    status: 'completed',
    strategyId,
    outcome: {
      bestParameters: { fastPeriod: 10, slowPeriod: 50, positionFraction: 0.5 },
      verdict: { passed: true, reasons: [], gate: DEFAULT_GATE },
    },
  }) as unknown as OptimizationRun;

describe('every capability process manager behind the automation policy, kill switch and HALTED', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  let halted: string[] = [];

  const configure = (capability: Capability, enabled: boolean) =>
    commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      { type: 'ConfigureAutomationCapability', capability, enabled, by: RISK, time: Date.now() },
      { actor: RISK.id },
    );
  /** Feeds `events` to the manager as the runner does, behind the real gate. */
  const feed = async (manager: ProcessManager, events: RecordedEvent[]) => {
    const target = new ProcessManagerTarget(store.pool, manager, commands, {
      eventStore: store,
      gate: automationGate(commands, () => Promise.resolve(halted)),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'process', 1)
       ON CONFLICT (name) DO NOTHING`,
      [target.name],
    );
    await target.apply(events);
  };
  const decisions = async (manager: string) =>
    (await store.readStream(`autodecision-${manager}`)).map((e) => ({
      type: e.type,
      ...(e.data as { reason: string; command: string; cause: string }),
    }));
  const lastEvent = async (): Promise<RecordedEvent> => {
    const [last] = await store.readAll({ after: (await store.headPosition()) - 1n });
    return last!;
  };

  beforeAll(async () => {
    database = await createTestDatabase('automation_gating');
    store = await PostgresEventStore.connect({ connectionString: database.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new PostgresIdempotencyStore(store.pool),
    });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  describe('2 adopt parameters', () => {
    /** The real manager and decision; the completed run is given instead of read. */
    const adoption = (strategyId: string): ProcessManager => ({
      ...optimizationAdoption(commands),
      react: () => Promise.resolve(adoptionIntents(completedRun(strategyId))),
    });
    const completed = async () => {
      await store.appendToStream(`optimization-${randomUUID()}`, [
        { type: 'OptimizationCompleted', data: {}, metadata: { actor: 'automation:optimizer' } },
      ]);
      return lastEvent();
    };

    it('given the switch off (the default), when an optimization passes its gate, then no parameter change is requested and the hold says why', async () => {
      const cause = await completed();
      await feed(adoption('s-off'), [cause]);
      expect(await store.readStream('strategy-s-off')).toEqual([]);
      expect(await decisions('optimization-adoption')).toEqual([
        expect.objectContaining({
          type: 'AutomationActionHeld',
          command: 'RequestParameterChange',
          cause: cause.eventId,
          reason: expect.stringMatching(
            /^CAPABILITY_OFF: adopt_parameters is switched off/,
          ) as string,
        }),
      ]);
    });

    it('given the switch on and a portfolio HALTED, then it is held by the HALTED state', async () => {
      await configure('adopt_parameters', true);
      halted = ['paper-1h'];
      await feed(adoption('s-halt'), [await completed()]);
      expect((await decisions('optimization-adoption')).at(-1)?.reason).toMatch(
        /^TRADING_HALTED: portfolio paper-1h is HALTED/,
      );
      halted = [];
    });

    it('given the switch on and nothing holding it, then it acts (here the strategy is unknown: refused, not held)', async () => {
      await feed(adoption('s-on'), [await completed()]);
      const last = (await decisions('optimization-adoption')).at(-1);
      expect(last?.type).toBe('AutomationActionRefused');
      expect(last?.reason).not.toMatch(/^(CAPABILITY_OFF|KILL_SWITCH|TRADING_HALTED)/);
    });
  });

  describe('3 rebalance', () => {
    const P = 'paper-1h';
    const rebalancer = (): ProcessManager =>
      allocationManager({
        commands,
        reads: {
          valuation: () =>
            Promise.resolve({ equity: 100_000, pnl: {}, at: new Date().toISOString() }),
          dailyReturns: () =>
            Promise.resolve({
              from: '2026-01-01',
              to: '2026-01-06',
              series: [
                [0.01, -0.02, 0.015, 0.0, 0.01, -0.005],
                [0.02, 0.01, -0.03, 0.02, -0.01, 0.005],
              ],
            }),
          portfolios: () => Promise.resolve([{ portfolioId: P }]),
        },
      });
    const portfolio = (command: Parameters<typeof portfolios.decide>[0]) =>
      commands.handle(portfolios, portfolioStream(P), command, { actor: RISK.id });
    const join = async (strategyId: string) => {
      await portfolio({ type: 'AddMember', portfolioId: P, strategyId, by: RISK, at: now() });
      return lastEvent();
    };
    const proposals = async () =>
      (await store.readStream(portfolioStream(P))).filter((e) => e.type === 'AllocationProposed');

    it('given the switch off, when a strategy joins, then no allocation is proposed and the hold says why', async () => {
      await portfolio({ type: 'SetPolicy', portfolioId: P, policy: {}, by: RISK, at: now() });
      const cause = await join('s1');
      await feed(rebalancer(), [cause]);
      expect(await proposals()).toEqual([]);
      expect(await decisions('allocation')).toEqual([
        expect.objectContaining({
          type: 'AutomationActionHeld',
          command: 'ProposeAllocation',
          cause: cause.eventId,
          reason: expect.stringMatching(/^CAPABILITY_OFF: rebalance is switched off/) as string,
        }),
      ]);
    });

    it('given the switch on and a portfolio HALTED, then it is held by the HALTED state', async () => {
      await configure('rebalance', true);
      halted = [P];
      await feed(rebalancer(), [await join('s2')]);
      expect(await proposals()).toEqual([]);
      expect((await decisions('allocation')).at(-1)?.reason).toMatch(/^TRADING_HALTED: /);
      halted = [];
    });

    it('given the switch on and nothing holding it, when a strategy joins, then it proposes', async () => {
      const cause = await join('s3');
      await feed(rebalancer(), [cause]);
      const [proposed] = await proposals();
      expect(proposed?.metadata).toMatchObject({
        actor: 'automation:allocation',
        causationId: cause.eventId,
      });
    });
  });

  describe('the kill switch holds every one of them, whatever the policy says', () => {
    it('given both switched on and the kill switch engaged, then each cause is held with the kill switch as the reason', async () => {
      await commands.handle(
        killSwitch,
        KILL_SWITCH_STREAM,
        { type: 'EngageKillSwitch', by: RISK, reason: 'drill', flatten: false, time: Date.now() },
        { actor: RISK.id },
      );
      const completedBefore = (await decisions('optimization-adoption')).length;
      await store.appendToStream(`optimization-${randomUUID()}`, [
        { type: 'OptimizationCompleted', data: {}, metadata: { actor: 'automation:optimizer' } },
      ]);
      await feed(
        {
          ...optimizationAdoption(commands),
          react: () => Promise.resolve(adoptionIntents(completedRun('s-kill'))),
        },
        [await lastEvent()],
      );
      const adoption = await decisions('optimization-adoption');
      expect(adoption).toHaveLength(completedBefore + 1);
      expect(adoption.at(-1)?.reason).toMatch(/^KILL_SWITCH_ENGAGED: the kill switch is engaged/);
      expect(await store.readStream('strategy-s-kill')).toEqual([]);
    });
  });
});
