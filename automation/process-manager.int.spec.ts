import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import type { Decider, DomainEvent } from '../core/decider.js';
import { ValidationError } from '../core/errors.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { until } from '../test/support/until.js';
import type { Outcome } from './process-manager-target.js';
import { ProcessManagerTarget } from './process-manager-target.js';
import { ProcessManagerService } from './process-manager-service.js';
import { intent, type ProcessManager } from './process-manager.js';
import { automationGate } from './gate.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { KILL_SWITCH_STREAM } from '../core/risk/common.js';
import { killSwitch } from '../core/risk/kill-switch.js';

// A counter that refuses to go past 2: enough to show acting, refusing and acting once.
type Counted = DomainEvent<'Counted', { by: string }>;
type Count = { type: 'Count'; by: string };
const counter: Decider<number, Count, Counted> = {
  initialState: () => 0,
  evolve: (state) => state + 1,
  decide: (command, state) => {
    if (state >= 2) throw new ValidationError('COUNTER_FULL', 'the counter is full');
    return [{ type: 'Counted', data: { by: command.by } }];
  },
  parseEvent: (event) => ({ type: 'Counted', data: { by: JSON.stringify(event.data['by']) } }),
};

/** On each Ping, count once on `counter-<data.target>`. */
const echo: ProcessManager = {
  name: 'echo',
  handles: ['Ping'],
  react: async (event: RecordedEvent) => {
    const target = (event.data as { target: string }).target;
    return [intent(counter, `counter-${target}`, { type: 'Count', by: event.eventId })];
  },
};

describe('process managers (ADR 010)', () => {
  let database: TestDatabase;
  let store: PostgresEventStore;
  let commands: CommandHandler;
  const outcomes: Outcome[] = [];
  const ping = async (target: string): Promise<RecordedEvent> => {
    await store.appendToStream(`pings-${randomUUID()}`, [
      { type: 'Ping', data: { target }, metadata: { actor: 'trader-1', correlationId: 'corr-1' } },
    ]);
    const [last] = await store.readAll({ after: (await store.headPosition()) - 1n });
    return last!;
  };

  beforeAll(async () => {
    database = await createTestDatabase('automation');
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

  it('acts as automation:<name>, with the cause as causation, once per cause', async () => {
    const target = new ProcessManagerTarget(store.pool, echo, commands, {
      eventStore: store,
      onOutcome: (o) => outcomes.push(o),
    });
    await store.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'process', 1)`,
      [target.name],
    );
    const cause = await ping('a');
    // The same batch twice: a crash after the command and before the checkpoint.
    await target.apply([cause]);
    await target.apply([cause]);
    const counted = await store.readStream('counter-a');
    expect(counted).toHaveLength(1);
    expect(counted[0]!.metadata).toMatchObject({
      actor: 'automation:echo',
      causationId: cause.eventId,
      correlationId: 'corr-1',
    });
    expect(await target.checkpoint()).toBe(cause.position);
  });

  it('records a refusal as an outcome and moves on', async () => {
    const target = new ProcessManagerTarget(store.pool, echo, commands, {
      eventStore: store,
      onOutcome: (o) => outcomes.push(o),
    });
    const causes = [await ping('b'), await ping('b'), await ping('b')];
    await target.apply(causes);
    expect(await store.readStream('counter-b')).toHaveLength(2);
    expect(outcomes.filter((o) => o.streamId === 'counter-b').map((o) => o.result)).toEqual([
      'acted',
      'acted',
      'refused',
    ]);
    expect(outcomes.at(-1)?.reason).toMatch(/^COUNTER_FULL/);
    const [refused, ...more] = await store.readStream('autodecision-echo');
    expect(more).toEqual([]);
    expect(refused).toMatchObject({
      type: 'AutomationActionRefused',
      data: { manager: 'echo', streamId: 'counter-b', command: 'Count', cause: causes[2]!.eventId },
      metadata: { actor: 'automation:echo', causationId: causes[2]!.eventId },
    });
    expect((refused!.data as { reason: string }).reason).toMatch(/^COUNTER_FULL/);
    expect(await target.checkpoint()).toBe(causes[2]!.position);
  });

  it('holds a capability that is off, or while the kill switch is engaged', async () => {
    const gated: ProcessManager = { ...echo, name: 'eliminator', capability: 'elimination' };
    const target = new ProcessManagerTarget(store.pool, gated, commands, {
      eventStore: store,
      gate: automationGate(commands, async () => []),
    });
    const officer = { id: 'rita', role: 'risk_officer' as const };
    const reasons = async (): Promise<string[]> =>
      (await store.readStream('autodecision-eliminator')).map(
        (e) => `${e.type} ${(e.data as { reason: string }).reason}`,
      );

    await target.apply([await ping('d')]);
    expect(await store.readStream('counter-d')).toEqual([]);
    expect(await reasons()).toEqual([
      expect.stringMatching(/^AutomationActionHeld CAPABILITY_OFF: elimination is switched off/),
    ]);

    await commands.handle(
      automationPolicy,
      AUTOMATION_POLICY_STREAM,
      {
        type: 'ConfigureAutomationCapability',
        capability: 'elimination',
        enabled: true,
        by: officer,
        time: 1,
      },
      { actor: 'rita' },
    );
    await target.apply([await ping('d')]);
    expect(await store.readStream('counter-d')).toHaveLength(1);

    await commands.handle(
      killSwitch,
      KILL_SWITCH_STREAM,
      { type: 'EngageKillSwitch', by: officer, reason: 'drill', flatten: false, time: 2 },
      { actor: 'rita' },
    );
    await target.apply([await ping('d')]);
    expect(await store.readStream('counter-d')).toHaveLength(1);
    expect((await reasons()).at(-1)).toMatch(
      /^AutomationActionHeld KILL_SWITCH_ENGAGED: the kill switch is engaged \(drill\)/,
    );
  });

  it('is led by one process of two, which reacts to live events from its checkpoint', async () => {
    const services = ['one', 'two'].map(
      (id) =>
        new ProcessManagerService({
          pool: store.pool,
          connectionString: database.url,
          eventStore: store,
          commands,
          managers: [echo],
          instanceId: id,
          leadershipIntervalMs: 100,
        }),
    );
    try {
      for (const service of services) await service.start();
      await ping('c');
      await ping('c');
      const counted = await until(
        () => store.readStream('counter-c'),
        (events) => events.length >= 2,
      );
      expect(counted).toHaveLength(2);
      const leaders = services.filter((service) => service.runner('automation.echo'));
      expect(leaders).toHaveLength(1);
    } finally {
      for (const service of services) await service.stop();
    }
  });
});
