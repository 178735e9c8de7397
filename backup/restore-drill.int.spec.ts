import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pg from 'pg';
import type { Observable } from 'rxjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKeyService } from '../api/auth/api-key-service.js';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { verifyLog, verifyOptionsFor } from '../core/audit/verify.js';
import type {
  EventStore,
  NewEvent,
  Position,
  ReadAllOptions,
  RecordedEvent,
} from '../core/eventstore/event-store.js';
import { strategies, strategyStream } from '../core/strategies/strategy.js';
import { loadConfig } from '../ops/config.js';
import { openRuntime, type Runtime } from '../ops/runtime.js';
import { ProjectionService } from '../projections/projection-service.js';
import { activeGenerationKey, redisViewKeys } from '../projections/redis-target.js';
import { viewSchemaOf } from '../projections/projection.js';
import { allProjections } from '../projections/registry.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { tableChecksum } from '../test/support/read-model-checksums.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { connectTestRedis, type TestRedis } from '../test/support/test-redis.js';
import { describeNeeding } from '../test/support/tools.js';

const root = new URL('..', import.meta.url).pathname;

/** `qcat …` as a real child process, from source. */
function qcat(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, qcatNodeArgs(...args), {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/** The log as it was at `cut`: what a read model built "as of" that position reads. */
class CutStore implements Pick<EventStore, 'readAll' | 'headPosition'> {
  constructor(
    private readonly inner: EventStore,
    private readonly cut: Position,
  ) {}
  readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const to =
      options.toPosition === undefined || options.toPosition > this.cut
        ? this.cut
        : options.toPosition;
    return this.inner.readAll({ ...options, toPosition: to });
  }
  headPosition(): Promise<Position> {
    return Promise.resolve(this.cut);
  }
}

const asStore = (cut: CutStore, inner: EventStore): EventStore => ({
  appendToStream: () => Promise.reject(new Error('read-only')),
  readStream: (streamId, options) => inner.readStream(streamId, options),
  readAll: (options) => cut.readAll(options),
  subscribeToAll: (): Observable<RecordedEvent> => {
    throw new Error('not used');
  },
  headPosition: () => cut.headPosition(),
  positionAt: (instant) => inner.positionAt(instant),
  close: () => Promise.resolve(),
});

/** sha256 over every key of a Redis view's live generation, whatever the key's type. */
async function redisView(redis: Redis, prefix: string, name: string): Promise<string> {
  const generation = Number((await redis.get(activeGenerationKey(prefix, name))) ?? '1');
  const base = redisViewKeys(prefix, name, generation).data;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  const hash = createHash('sha256');
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    const value =
      type === 'list'
        ? await redis.lrange(key, 0, -1)
        : type === 'hash'
          ? Object.entries(await redis.hgetall(key)).sort()
          : type === 'set'
            ? (await redis.smembers(key)).sort()
            : type === 'zset'
              ? await redis.zrange(key, 0, -1, 'WITHSCORES')
              : await redis.get(key);
    hash.update(`${key.slice(base.length)}=${JSON.stringify(value)}\n`);
  }
  return `${keys.length} keys ${hash.digest('hex')}`;
}

async function everyEvent(store: Pick<EventStore, 'readAll'>): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (;;) {
    const batch = await store.readAll({ after: all.at(-1)?.position ?? 0n, maxCount: 1000 });
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

const drill = 'restore drill: full + two incrementals, restored to an instant between them';
describeNeeding(['redis'], drill, () => {
  let source: TestDatabase;
  let target: TestDatabase;
  let reference: TestDatabase;
  let redis: TestRedis;
  let runtime: Runtime;
  let dir: string;
  const quiet = { info: () => undefined, warn: () => undefined };

  beforeAll(async () => {
    [source, target, reference] = await Promise.all([
      createTestDatabase('drill_source'),
      createTestDatabase('drill_target'),
      createTestDatabase('drill_reference'),
    ]);
    redis = await connectTestRedis('drill');
    dir = mkdtempSync(join(tmpdir(), 'qcat-drill-'));
    runtime = await openRuntime(
      loadConfig({
        DATABASE_URL: source.url,
        REDIS_URL: redis.url,
        QCAT_REDIS_PREFIX: `${redis.prefix}source:`,
        QCAT_BACKUP_DIR: dir,
        DATABASE_POOL_MAX: '5', // as test servers: several files share the connections (ADR 020)
      }),
      quiet,
    );
    await runtime.projections.start();
  });

  afterAll(async () => {
    await runtime.close();
    await redis.cleanup();
    await Promise.all([source.drop(), target.drop(), reference.drop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A slice of a working day: keys issued and revoked, strategies submitted, orders and fills. */
  async function scenario(label: string, size: number): Promise<void> {
    const keys = new ApiKeyService(runtime.commands);
    const issued = await keys.issue(`${label}-trader`, 'trader', 'admin-1');
    await keys.issue(`${label}-auditor`, 'auditor', 'admin-1');
    await keys.revoke(issued.keyId, 'rotated out', 'admin-1');
    const owner = { id: `${label}-owner`, role: 'trader' as const };
    const strategyId = `${label}-${randomUUID().slice(0, 8)}`;
    await runtime.commands.handle(
      strategies,
      strategyStream(strategyId),
      {
        type: 'CreateStrategy',
        strategyId,
        owner,
        name: `SMA ${label}`,
        description: 'drill',
        kind: 'sma_crossover',
        symbols: ['BTC-USDT'],
        timeframe: '1h',
        parameters: { fastPeriod: 10, slowPeriod: 40, positionFraction: 0.5 },
        capitalRequest: 1000,
      },
      { actor: owner.id },
    );
    await runtime.commands.handle(
      strategies,
      strategyStream(strategyId),
      { type: 'SubmitForReview', strategyId, requestId: randomUUID(), by: owner },
      { actor: owner.id },
    );
    for (let i = 0; i < size; i++) {
      const streamId = `${['order', 'fill', 'risk'][i % 3]!}-${label}_${i % 5}`;
      const batch: NewEvent[] = Array.from({ length: 1 + (i % 4) }, (_, n) => ({
        type: 'DrillEvent',
        data: { label, i, n, note: 'quotes " and \\ backslashes\tand tabs' },
        metadata: { actor: `trader-${i % 3}`, correlationId: randomUUID() },
      }));
      await runtime.eventStore.appendToStream(streamId, batch);
    }
  }

  it('every read model of the restored store equals the state as of that instant', async () => {
    const store = runtime.eventStore;
    await scenario('a', 30);
    const full = await runtime.backups.run('full');
    expect(full.manifest.kind).toBe('full');

    await scenario('b', 20);
    // The first incremental through the CLI itself.
    const cliBackup = await qcat(['backup', 'incremental'], {
      DATABASE_URL: source.url,
      QCAT_BACKUP_DIR: dir,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: `${redis.prefix}source:`,
    });
    expect(cliBackup.code, cliBackup.stderr).toBe(0);
    const firstId = /^incremental backup (\S+-incremental-\S+): \d+ events/.exec(
      cliBackup.stdout,
    )?.[1];
    expect(firstId, cliBackup.stdout).toBeDefined();

    await scenario('c', 20);
    const head = await store.headPosition();
    const [lastBeforeT] = await store.readAll({ after: head - 1n, maxCount: 1 });
    const instant = lastBeforeT!.recordedAt; // restore to here: events recorded at or before it
    await sleep(5); // so that what follows is recorded strictly later
    await scenario('d', 20);
    const second = await runtime.backups.run('incremental');
    expect(second.manifest.previousBackupId).toBe(firstId);
    await scenario('e', 10); // after the last backup: in no backup

    const cut = await store.positionAt(instant);
    expect(cut).toBeGreaterThanOrEqual(head);
    expect(BigInt(second.manifest.positions.after)).toBeLessThan(cut);
    expect(BigInt(second.manifest.positions.last)).toBeGreaterThan(cut);

    const restore = await qcat(['restore', '--to', instant.toISOString(), '--target', target.url], {
      QCAT_BACKUP_DIR: dir,
      REDIS_URL: redis.url,
      QCAT_REDIS_PREFIX: `${redis.prefix}restored:`,
    });
    expect(restore.code, restore.stderr).toBe(0);
    const originalCut = await everyEvent(new CutStore(store, cut));
    expect(restore.stdout).toContain(
      `stopped at position ${cut} (recorded at ${originalCut.at(-1)!.recordedAt.toISOString()}); ${originalCut.length.toLocaleString('en-US')} events`,
    );

    // The restored log is the original log up to the cut, every field (the hash too) verbatim.
    const restored = await PostgresEventStore.connect({ connectionString: target.url });
    const restoredPool = new pg.Pool({ connectionString: target.url, max: 2 });
    const referencePool = new pg.Pool({ connectionString: reference.url, max: 2 });
    for (const pool of [restoredPool, referencePool]) pool.on('error', () => undefined);
    try {
      expect(await restored.headPosition()).toBe(cut);
      expect(await everyEvent(restored)).toEqual(originalCut);
      const restoredChain = await verifyLog(restored, verifyOptionsFor('postgres'));
      const originalChain = await verifyLog(store, {
        ...verifyOptionsFor('postgres'),
        toPosition: cut,
      });
      expect(restoredChain.firstBroken).toBeNull();
      expect(restoredChain.digest).toBe(originalChain.digest);

      // The reference: every read model rebuilt from the original log cut at that position.
      await migrate(referencePool);
      const cutStore = asStore(new CutStore(store, cut), store);
      const projections = allProjections(`${redis.prefix}reference:`);
      const referenceService = new ProjectionService({
        pool: referencePool,
        connectionString: reference.url,
        eventStore: cutStore,
        projections,
        redis: redis.redis,
        redisPrefix: `${redis.prefix}reference:`,
        instanceId: 'drill-reference',
      });
      await referenceService.register();
      for (const name of referenceService.names())
        await referenceService.target(name)!.rebuild(cutStore);
      await referenceService.stop();

      let tables = 0;
      for (const projection of projections) {
        if (projection.kind === 'postgres') {
          for (const table of projection.tables) {
            const relation = `${viewSchemaOf(projection, table)}.${table}`;
            const mine = await tableChecksum(restoredPool, relation, 't::text');
            expect(mine, relation).toEqual(await tableChecksum(referencePool, relation, 't::text'));
            tables++;
          }
        } else {
          expect(
            await redisView(redis.redis, `${redis.prefix}restored:`, projection.name),
            projection.name,
          ).toBe(await redisView(redis.redis, `${redis.prefix}reference:`, projection.name));
        }
      }
      expect(tables).toBeGreaterThanOrEqual(7);
      // Not trivially equal: the read models hold the scenario up to the cut, and no further.
      const audit = await tableChecksum(restoredPool, 'qcat_read.audit_trail', 't::text');
      expect(audit.rows).toBe(originalCut.length);
      expect(BigInt(audit.rows)).toBeLessThan(await store.headPosition());
      const keys = await restoredPool.query<{ name: string }>(
        'SELECT name FROM qcat_private.api_keys ORDER BY name',
      );
      expect(keys.rows.map((row) => row.name)).toEqual([
        'a-auditor',
        'a-trader',
        'b-auditor',
        'b-trader',
        'c-auditor',
        'c-trader',
      ]);
      const { rows: strategyRows } = await restoredPool.query<{ name: string }>(
        'SELECT name FROM qcat_read.strategies ORDER BY name',
      );
      expect(strategyRows.map((row) => row.name)).toEqual(['SMA a', 'SMA b', 'SMA c']);
      const { rows: checkpoints } = await restoredPool.query<{ name: string; checkpoint: string }>(
        "SELECT name, checkpoint FROM qcat_projections WHERE kind = 'postgres'",
      );
      for (const row of checkpoints) expect(BigInt(row.checkpoint), row.name).toBe(cut);

      // Each stream's row (revision and cached last hash) is its last event's.
      const { rows: streamRows } = await restoredPool.query<{ streams: number; wrong: number }>(
        `SELECT count(*)::int AS streams,
                count(*) FILTER (WHERE s.hash IS DISTINCT FROM l.hash OR s.revision <> l.revision)::int AS wrong
           FROM qcat_streams s
           JOIN LATERAL (SELECT e.hash, e.revision FROM qcat_events e WHERE e.stream_id = s.stream_id
                          ORDER BY e.revision DESC LIMIT 1) l ON true`,
      );
      expect(streamRows[0]).toEqual({
        streams: new Set(originalCut.map((event) => event.streamId)).size,
        wrong: 0,
      });

      // The restored store takes new appends where the original left off at the cut.
      const last = originalCut.at(-1)!;
      const next = await restored.appendToStream(
        last.streamId,
        [{ type: 'AfterRestore', data: {}, metadata: { actor: 'drill' } }],
        { expectedRevision: last.revision },
      );
      expect(next).toEqual({ nextExpectedRevision: last.revision + 1n, position: cut + 1n });
      expect((await verifyLog(restored, verifyOptionsFor('postgres'))).firstBroken).toBeNull();
    } finally {
      await restored.close();
      await restoredPool.end();
      await referencePool.end();
    }
  }, 300_000);
});
