import { describe, expect, it } from 'vitest';
import type { Party } from '../../core/approvals/approval.js';
import { CommandHandler } from '../../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../../core/commands/idempotency.js';
import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import { InMemoryEventStore } from '../../core/eventstore/in-memory-event-store.js';
import type { AppliedData, PortfolioEvent, Valuation } from '../../core/portfolio/events.js';
import { portfolioStream } from '../../core/portfolio/events.js';
import { portfolios, type PortfolioState } from '../../core/portfolio/portfolio.js';
import { defaultPolicy, policySchema, type AllocationPolicy } from '../../core/portfolio/policy.js';
import { COOLDOWN_MS, rebalanceTrigger, type Cause } from './decide.js';
import { allocationManager, type AllocationReads } from './rebalancing.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const P = 'paper-1h';
const T0 = Date.parse('2026-01-05T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;

const applied: AppliedData = {
  portfolioId: P,
  proposalId: 'p0',
  weights: { s1: 0.2, s2: 0.2 },
  targets: { s1: 20_000, s2: 20_000 },
  valuation: { equity: 100_000, pnl: { s1: 0, s2: 0 }, at: iso(T0) },
  at: iso(T0),
};

/** A portfolio state given its history, as the process manager loads it. */
function given(events: PortfolioEvent[]): PortfolioState {
  return events.reduce(
    (state, event) => portfolios.evolve(state, portfolios.parseEvent(event)),
    portfolios.initialState(),
  );
}
const policySet = (policy: AllocationPolicy = defaultPolicy()): PortfolioEvent => ({
  type: 'PortfolioPolicySet',
  data: { portfolioId: P, policy, version: 1, by: risk, at: iso(T0) },
});
const member = (strategyId: string): PortfolioEvent => ({
  type: 'PortfolioMemberAdded',
  data: { portfolioId: P, strategyId, by: risk, at: iso(T0) },
});
const appliedEvent: PortfolioEvent = { type: 'AllocationApplied', data: applied };
const allocated = [policySet(), member('s1'), member('s2'), appliedEvent];
const valuation = (equity: number, pnl: Record<string, number>): Valuation => ({
  equity,
  pnl,
  at: iso(T0),
});
const when = (state: PortfolioState, cause: Cause, v: Valuation | undefined, now: number) =>
  rebalanceTrigger({ state, valuation: v, cause, now: new Date(now) });

describe('rebalancing triggers (given / when / then)', () => {
  it('membership: a strategy joins → a proposal naming it', () => {
    const trigger = when(
      given([policySet(), member('s1')]),
      { type: 'membership', strategyId: 's1', joined: true },
      undefined,
      T0,
    );
    expect(trigger).toMatchObject({
      type: 'membership',
      detail: 'strategy s1 joined the portfolio',
      figures: { strategyId: 's1', joined: true, members: ['s1'] },
    });
  });

  it('equity moved more than the set percentage → equity, with both figures', () => {
    const trigger = when(
      given(allocated),
      { type: 'valuation' },
      valuation(80_000, {}),
      T0 + 2 * HOUR,
    );
    expect(trigger).toMatchObject({
      type: 'equity',
      figures: { equityAtAllocation: 100_000, equityNow: 80_000, move: -0.2, band: 0.1 },
    });
  });

  it('drift outside the band → drift, with every member’s drift', () => {
    // s1 gained 9,000: (20,000 + 9,000) / 109,000 = 26.6% against 20%: +6.6 pp.
    const trigger = when(
      given(allocated),
      { type: 'valuation' },
      valuation(109_000, { s1: 9_000, s2: 0 }),
      T0 + 2 * HOUR,
    );
    expect(trigger?.type).toBe('drift');
    expect(trigger?.figures).toMatchObject({ worst: 's1', band: 0.05 });
    expect((trigger?.figures['drift'] as Record<string, number>)['s1']).toBeCloseTo(0.066055, 5);
  });

  it('drift inside the band and equity steady → nothing', () => {
    expect(
      when(
        given(allocated),
        { type: 'valuation' },
        valuation(102_000, { s1: 2_000 }),
        T0 + 2 * HOUR,
      ),
    ).toBeNull();
  });

  it('schedule: everyMs after the last allocation → schedule', () => {
    const week = 7 * 24 * HOUR;
    expect(
      when(given(allocated), { type: 'tick' }, valuation(100_000, {}), T0 + week - 1),
    ).toBeNull();
    expect(
      when(given(allocated), { type: 'tick' }, valuation(100_000, {}), T0 + week),
    ).toMatchObject({
      type: 'schedule',
      figures: { everyMs: week },
    });
  });

  it('turned off in the policy → nothing, whatever moves', () => {
    const off = policySchema.parse({
      rebalance: { everyMs: null, driftBand: null, equityMove: null, onMembershipChange: false },
    });
    const state = given([policySet(off), member('s1'), member('s2'), appliedEvent]);
    expect(
      when(state, { type: 'valuation' }, valuation(50_000, { s1: -50_000 }), T0 + 400 * 24 * HOUR),
    ).toBeNull();
    expect(
      when(state, { type: 'membership', strategyId: 's2', joined: true }, undefined, T0),
    ).toBeNull();
  });

  it('a proposal waiting for approval, or one within the cool-down → nothing', () => {
    const recent: PortfolioEvent = {
      type: 'AllocationProposalFailed',
      data: {
        portfolioId: P,
        proposalId: 'f1',
        trigger: { type: 'drift', detail: 'd', figures: {} },
        method: 'risk_parity',
        code: 'ESTIMATION_WINDOW_EMPTY',
        reason: 'no data',
        at: iso(T0 + HOUR),
      },
    };
    const state = given([...allocated, recent]);
    expect(
      when(state, { type: 'valuation' }, valuation(80_000, {}), T0 + HOUR + COOLDOWN_MS - 1),
    ).toBeNull();
    expect(
      when(state, { type: 'valuation' }, valuation(80_000, {}), T0 + HOUR + COOLDOWN_MS)?.type,
    ).toBe('equity');
  });
});

/** The process manager against an in-memory log: its intents issued as the runner would. */
async function harness(returns: number[][]) {
  const store = new InMemoryEventStore();
  const commands = new CommandHandler({
    eventStore: store,
    idempotency: new InMemoryIdempotencyStore(),
  });
  const reads: AllocationReads = {
    valuation: () => Promise.resolve(valuation(100_000, { s1: 0, s2: 0 })),
    dailyReturns: () => Promise.resolve({ from: '2025-11-06', to: '2026-01-04', series: returns }),
    portfolios: () => Promise.resolve([{ portfolioId: P }]),
  };
  const manager = allocationManager({ commands, reads });
  const run = async (event: RecordedEvent) => {
    for (const [index, item] of (await manager.react(event)).entries())
      await item.issue(commands, {
        actor: 'automation:allocation',
        causationId: event.eventId,
        idempotencyKey: `${event.eventId}:${index}`,
      });
  };
  /** Feeds every new event of the log to the manager, until it issues nothing new. */
  const settle = async () => {
    let seen = 0;
    for (;;) {
      const all = await store.readAll({ maxCount: 10_000 });
      if (all.length === seen) return all;
      for (const event of all.slice(seen))
        if (manager.handles.includes(event.type)) await run(event);
      seen = all.length;
    }
  };
  const propose = (command: Parameters<typeof portfolios.decide>[0]) =>
    commands.handle(portfolios, portfolioStream(P), command, { actor: 'apikey:risk1' });
  return { store, commands, settle, propose };
}

describe('the allocation process manager', () => {
  const returns = [
    [0.01, -0.02, 0.015, 0.0, 0.01, -0.005],
    [0.02, 0.01, -0.03, 0.02, -0.01, 0.005],
  ];

  it('a strategy joins → risk parity proposed with its figures; above the threshold it waits for four eyes, then applies', async () => {
    const h = await harness(returns);
    const at = iso(T0);
    await h.propose({ type: 'SetPolicy', portfolioId: P, policy: {}, by: risk, at });
    await h.propose({ type: 'AddMember', portfolioId: P, strategyId: 's1', by: risk, at });
    await h.propose({ type: 'AddMember', portfolioId: P, strategyId: 's2', by: risk, at });
    let log = await h.settle();
    const proposed = log.filter((e) => e.type === 'AllocationProposed');
    // One proposal per membership change; the second waits behind the first (pending).
    expect(proposed.length).toBeGreaterThanOrEqual(1);
    const first = proposed[0]?.data as Record<string, unknown>;
    expect(first).toMatchObject({
      method: 'risk_parity',
      requiresApproval: true,
      trigger: { type: 'membership' },
    });
    const request = log.find((e) => e.type === 'ApprovalRequested');
    expect(request?.data).toMatchObject({
      kind: 'allocation_change',
      requester: { id: 'automation:allocation' },
    });
    expect(request?.metadata.causationId).toBe(proposed[0]?.eventId);
    // A risk officer approves: the proposal is applied.
    const requestId = String(first['requestId']);
    const { approvals, approvalStream } = await import('../../core/approvals/approval.js');
    await h.commands.handle(
      approvals,
      approvalStream(requestId),
      {
        type: 'GrantApproval',
        requestId,
        approver: risk2,
        comment: 'ok',
        now: iso(T0 + 1000),
      },
      { actor: 'apikey:risk2' },
    );
    log = await h.settle();
    const applied = log.filter((e) => e.type === 'AllocationApplied');
    expect(applied).toHaveLength(1);
    expect(applied[0]?.metadata.actor).toBe('automation:allocation');
    expect(log.find((e) => e.type === 'AllocationApproved')?.data).toMatchObject({
      authority: 'approval',
      approvers: [risk2],
    });
  });

  it('an estimation window without data → a recorded proposal failure with its reason, nothing applied', async () => {
    const h = await harness([[], []]);
    const at = iso(T0);
    await h.propose({ type: 'SetPolicy', portfolioId: P, policy: {}, by: risk, at });
    await h.propose({ type: 'AddMember', portfolioId: P, strategyId: 's1', by: risk, at });
    const log = await h.settle();
    expect(log.find((e) => e.type === 'AllocationProposalFailed')?.data).toMatchObject({
      code: 'ESTIMATION_WINDOW_EMPTY',
      trigger: { type: 'membership' },
    });
    expect(log.some((e) => e.type === 'AllocationApplied')).toBe(false);
  });
});
