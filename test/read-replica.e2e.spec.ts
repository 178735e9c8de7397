import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../core/commands/idempotency.js';
import { strategies, type StrategyCommand } from '../core/strategies/strategy.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { ProjectionRunner } from '../projections/projection-runner.js';
import { StrategyQueries } from '../projections/strategy-queries.js';
import { strategiesProjection } from '../projections/strategies.js';
import {
  postgresBinaries,
  startDisposablePostgres,
  type DisposablePostgres,
} from './support/disposable-postgres.js';

/**
 * Scaling out with a read replica (issue 22, ADR 032, docs/scaling.md): a PostgreSQL primary of the
 * test's own and a streaming standby made from it with `pg_basebackup -R`. A projection reads the
 * log from the standby and writes its read model to the primary; the read model's queries answer
 * the same on the standby as on the primary once it has replayed the primary's WAL. The waits are
 * hang guards only; how long each took is printed.
 */
const GUARD_MS = 60_000;
const STRATEGIES = 40;

const binaries = postgresBinaries();
if (!binaries) console.warn('read-replica: skipped: install postgresql-15 (initdb, pg_basebackup)');

/** Waits for `done`; answers how long it took (printed). */
async function until(what: string, done: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await vi.waitFor(
    async () => {
      if (!(await done())) throw new Error(`${what}: not within ${GUARD_MS} ms`);
    },
    { timeout: GUARD_MS, interval: 25 },
  );
  return Date.now() - started;
}

describe.skipIf(!binaries)('a projection and its queries on a streaming standby', () => {
  let primary: DisposablePostgres | undefined;
  let standby: DisposablePostgres | undefined;
  let store: PostgresEventStore;
  let replicaStore: PostgresEventStore;
  let replicaPool: pg.Pool;
  let runner: ProjectionRunner | undefined;
  let commands: CommandHandler;

  beforeAll(async () => {
    primary = await startDisposablePostgres();
    store = await PostgresEventStore.connect({ connectionString: primary.url });
    commands = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
    });
    standby = await primary.standby();
    replicaStore = await PostgresEventStore.connect({
      connectionString: standby.url,
      migrate: false,
      pollIntervalMs: 100,
    });
    replicaPool = new pg.Pool({ connectionString: standby.url, max: 2 });
    replicaPool.on('error', () => undefined);
  }, 120_000);
  afterAll(async () => {
    await runner?.stop();
    await replicaPool.end();
    await replicaStore.close();
    await store.close();
    standby?.destroy();
    primary?.destroy();
  });

  const run = (strategyId: string, command: Record<string, unknown>) =>
    commands.handle(
      strategies,
      `strategy-${strategyId}`,
      { strategyId, ...command } as StrategyCommand,
      {
        actor: 'replica-test',
      },
    );
  const create = (strategyId: string) =>
    run(strategyId, {
      type: 'CreateStrategy',
      owner: { id: 'apikey:trader1', role: 'trader' },
      name: `replica ${strategyId}`,
      description: '',
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1h',
      parameters: { fastPeriod: 10, slowPeriod: 30, positionFraction: 0.5 },
      capitalRequest: 1000,
    });

  /** Waits until the standby has replayed everything the primary has written so far. */
  const replayed = async (): Promise<number> => {
    const { rows } = await store.pool.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    const lsn = rows[0]?.lsn ?? '0/0';
    return until('the standby replays the primary', async () => {
      const answer = await replicaPool.query<{ done: boolean }>(
        'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done',
        [lsn],
      );
      return answer.rows[0]?.done === true;
    });
  };

  it('is a standby: in recovery, and it refuses writes', async () => {
    const { rows } = await replicaPool.query<{ recovery: boolean }>(
      'SELECT pg_is_in_recovery() AS recovery',
    );
    expect(rows[0]?.recovery).toBe(true);
    await expect(
      replicaStore.appendToStream('probe-1', [{ type: 'X', data: {}, metadata: { actor: 't' } }]),
    ).rejects.toThrow(/read-only|recovery/);
  });

  it('feeds a projection from the standby into the primary, catching up and then live', async () => {
    for (let i = 0; i < STRATEGIES; i++) await create(`r${i}`);
    const target = new PostgresTarget(store.pool, strategiesProjection);
    await target.ensure();
    runner = new ProjectionRunner(replicaStore, target, { batchSize: 10 });
    const head = await store.headPosition();
    runner.start();
    const caughtUp = await until(
      'catch-up from the standby',
      async () => (await target.checkpoint()) >= head,
    );
    const count = await store.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM qcat_read.strategies',
    );
    expect(Number(count.rows[0]?.n)).toBe(STRATEGIES);

    // Live: new commands on the primary reach the read model through the standby.
    const { position } = await run('r0', { type: 'EditStrategy', changes: { name: 'renamed' } });
    const live = await until(
      'a live event through the standby',
      async () => (await target.checkpoint()) >= position,
    );
    const primaryQueries = new StrategyQueries(store.pool);
    expect((await primaryQueries.state('r0'))?.name).toBe('renamed');
    console.log(
      `read-replica: ${STRATEGIES} strategies projected from the standby in ${caughtUp} ms; a live event in ${live} ms`,
    );
  });

  it("answers the read model's queries on the standby as on the primary once it has replayed", async () => {
    const lag = await replayed();
    const primaryQueries = new StrategyQueries(store.pool);
    const replicaQueries = new StrategyQueries(replicaPool);
    for (let i = 0; i < STRATEGIES; i++) {
      const id = `r${i}`;
      expect(await replicaQueries.state(id)).toEqual(await primaryQueries.state(id));
      expect(await replicaQueries.tradingOf(id)).toEqual(await primaryQueries.tradingOf(id));
    }
    expect((await replicaQueries.state('r0'))?.name).toBe('renamed');
    expect(await replicaQueries.exists('r-none')).toBe(false);
    console.log(`read-replica: the standby had replayed the primary's WAL ${lag} ms after asked`);
  });
});
