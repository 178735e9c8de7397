import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { EventStore } from '../core/eventstore/event-store.js';
import type { Upcasters } from '../core/eventstore/upcasting.js';
import { LEADER_ALIVE_SQL, Leadership } from './leadership.js';
import { PostgresTarget } from './postgres-target.js';
import type { Projection, ProjectionStatus } from './projection.js';
import { ProjectionRunner, type ProjectionTarget } from './projection-runner.js';
import { RedisTarget } from './redis-target.js';
import { isUnavailable, retryWhileUnavailable } from '../core/adapters/unavailable.js';
import { toError } from '../core/errors.js';

export interface ProjectionServiceOptions {
  pool: pg.Pool;
  connectionString: string;
  eventStore: EventStore;
  projections: readonly Projection[];
  /** Needed by Redis views; without it they are left out (and `skipped` says so). */
  redis?: Redis;
  redisPrefix?: string;
  /** Names this process in the registry's `leader` column. */
  instanceId: string;
  upcasters?: Upcasters;
  batchSize?: number;
  /** How often a standby process tries to take over a projection; default 2 s. */
  leadershipIntervalMs?: number;
  retryDelayMs?: number;
  /**
   * `eventStore` is the PostgreSQL log of `pool`'s database, unfiltered (whatever wraps it): lets
   * rebuilds fill projections that have `rebuildSql` in SQL (see PostgresTargetOptions).
   */
  logInDatabase?: boolean;
  log?: (message: string) => void;
}

type Target = (PostgresTarget | RedisTarget) & ProjectionTarget;

/**
 * Runs this process's share of the projections: each projection is led by exactly one process
 * (advisory lock); the others stand by and take over when the leader goes away.
 */
export class ProjectionService {
  private readonly targets = new Map<string, Target>();
  private readonly runners = new Map<string, ProjectionRunner>();
  /** Checkpoints `waitFor` read from the registry (projections another process leads). */
  private readonly checkpointsRead = new Map<string, bigint>();
  private readonly leadership: Leadership;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();
  /** While the database does not answer, a tick is tried again within a second (not in 2 s). */
  private readonly retry = retryWhileUnavailable();
  private readonly stopping = new AbortController();
  readonly skipped: string[] = [];

  constructor(private readonly options: ProjectionServiceOptions) {
    this.leadership = new Leadership(options.connectionString);
    const prefix = options.redisPrefix ?? 'qcat:';
    for (const projection of options.projections) {
      if (projection.kind === 'postgres') {
        this.targets.set(
          projection.name,
          new PostgresTarget(options.pool, projection, {
            ...(options.logInDatabase ? { logInDatabase: true } : {}),
            ...(options.log ? { log: options.log } : {}),
          }),
        );
      } else if (options.redis) {
        const mirror = async (checkpoint: bigint): Promise<void> => {
          await options.pool.query(
            `UPDATE qcat_projections SET checkpoint = $2, error_position = NULL, error_message = NULL,
             error_at = NULL, updated_at = now() WHERE name = $1`,
            [projection.name, checkpoint],
          );
        };
        // Its own connection (WATCH belongs to one); its failures reach the runner as rejected
        // commands, so the connection's own error events need no more than a listener.
        const connection = options.redis.duplicate();
        connection.on('error', () => undefined);
        this.targets.set(projection.name, new RedisTarget(connection, prefix, projection, mirror));
      } else {
        this.skipped.push(projection.name);
      }
    }
    this.leadership.whenLost(() => {
      options.log?.(
        'projections: lost the leadership connection; stopping runners, will try again',
      );
      void this.stopRunners();
      this.schedule(0); // take the lead again as soon as the database answers
    });
  }

  target(name: string): Target | undefined {
    return this.targets.get(name);
  }

  names(): string[] {
    return [...this.targets.keys()];
  }

  /** Makes sure every projection is in the registry and has its first generation. */
  async register(): Promise<void> {
    for (const target of this.targets.values()) {
      if (target instanceof PostgresTarget) await target.ensure();
      else await this.registerRedis(target.name, target.projection.version);
    }
  }

  async start(): Promise<void> {
    await this.register();
    await this.tick();
    this.schedule(this.options.leadershipIntervalMs ?? 2000);
  }

  /** The next tick in `delay` ms (replacing a later one), then every `leadershipIntervalMs`. */
  private schedule(delay: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ticking = this.ticking
        .then(() => this.retry.execute(() => this.tick(), this.stopping.signal))
        .catch((error: unknown) => {
          if (!this.stopped) this.options.log?.(`projections: ${toError(error).message}`);
        })
        .finally(() => {
          if (this.timer === undefined) this.schedule(this.options.leadershipIntervalMs ?? 2000);
        });
    }, delay);
  }

  private async registerRedis(name: string, version: number): Promise<void> {
    await this.options.pool.query(
      `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'redis', $2)
       ON CONFLICT (name) DO NOTHING`,
      [name, version],
    );
  }

  /**
   * Take the lead of every projection nobody leads. Throws when the database does not answer (the
   * caller tries again soon); any other failure is logged and tried again at the next tick.
   */
  private async tick(): Promise<void> {
    for (const target of this.targets.values()) {
      if (this.stopped) return;
      if (this.runners.has(target.name)) continue;
      try {
        await this.lead(target);
      } catch (error) {
        if (isUnavailable(error)) throw error;
        this.options.log?.(
          `projections: taking the lead of ${target.name} failed: ${String(error)}`,
        );
      }
    }
  }

  /** Takes the lead of `target` if nobody has it, and starts its runner. */
  private async lead(target: Target): Promise<void> {
    if (!(await this.leadership.tryAcquire(target.name))) return;
    await this.options.pool.query(
      'UPDATE qcat_projections SET leader = $2, updated_at = now() WHERE name = $1',
      [target.name, this.options.instanceId],
    );
    if (target instanceof PostgresTarget && (await target.ensure()).stale) {
      this.options.log?.(`projections: ${target.name} changed version; rebuilding`);
      await target.rebuild(this.options.eventStore);
    }
    const runner = new ProjectionRunner(this.options.eventStore, target, {
      ...(this.options.batchSize ? { batchSize: this.options.batchSize } : {}),
      ...(this.options.retryDelayMs ? { retryDelayMs: this.options.retryDelayMs } : {}),
      ...(this.options.upcasters ? { upcasters: this.options.upcasters } : {}),
      onError: async (position, error) => {
        // The database or Redis down: the runner tries again soon; the leadership says so once.
        if (isUnavailable(error)) return;
        this.options.log?.(
          `projections: ${target.name} stopped at position ${position}: ${error.message}`,
        );
        await this.options.pool.query(
          `UPDATE qcat_projections SET error_position = $2, error_message = $3, error_at = now()
           WHERE name = $1`,
          [target.name, position, error.message],
        );
      },
    });
    this.runners.set(target.name, runner);
    runner.start();
    this.options.log?.(`projections: leading ${target.name}`);
  }

  private async stopRunners(): Promise<void> {
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((runner) => runner.stop()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.ticking;
    await this.stopRunners();
    await this.leadership.close();
    for (const target of this.targets.values()) {
      if (target instanceof RedisTarget) target.disconnect();
    }
  }

  /** Every projection, as this process sees it (standby ones from the registry). */
  async status(): Promise<ProjectionStatus[]> {
    const parking = new Set(
      this.options.projections
        .filter((p) => p.kind === 'postgres' && p.onPoisonEvent === 'park')
        .map((p) => p.name),
    );
    return readProjectionStatus(this.options.pool, this.options.eventStore, this.runners, parking);
  }

  /**
   * The furthest this process knows `name` to have committed: its own runner's checkpoint, or the
   * highest checkpoint a `waitFor` here read from the registry; undefined when it knows neither.
   */
  knownCheckpoint(name: string): bigint | undefined {
    const runner = this.runners.get(name)?.checkpoint;
    const read = this.checkpointsRead.get(name);
    if (runner === undefined) return read;
    return read !== undefined && read > runner ? read : runner;
  }

  /**
   * Waits until the projection has applied everything in the log when asked (at most
   * `timeoutMs`): a refusal based on a read model is checked against what is already written.
   */
  async waitForHead(name: string, timeoutMs = 2000): Promise<boolean> {
    return this.waitFor(name, await this.options.eventStore.headPosition(), timeoutMs);
  }

  /**
   * Read-your-writes: waits until the projection has applied `position`, at most `timeoutMs`.
   * Answers whether it got there.
   */
  async waitFor(name: string, position: bigint, timeoutMs = 2000): Promise<boolean> {
    const target = this.targets.get(name);
    if (!target) throw new Error(`unknown projection ${name}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runner = this.runners.get(name);
      const reached = runner ? runner.checkpoint : await target.checkpoint();
      if (!runner && reached > (this.checkpointsRead.get(name) ?? -1n))
        this.checkpointsRead.set(name, reached);
      if (reached >= position) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, runner ? 2 : 20));
    }
  }
}

/** Status from the registry, overlaid with this process's live runners where it has them. */
export async function readProjectionStatus(
  pool: pg.Pool,
  store: EventStore,
  runners: ReadonlyMap<string, ProjectionRunner> = new Map(),
  /** The projections that park events they cannot apply (ADR 011); the others stop. */
  parking: ReadonlySet<string> = new Set(),
): Promise<ProjectionStatus[]> {
  const head = await store.headPosition();
  const { rows } = await pool.query<{
    name: string;
    kind: 'postgres' | 'redis' | 'process';
    checkpoint: string;
    leader: string | null;
    error_position: string | null;
    error_message: string | null;
    error_at: Date | null;
    led: boolean;
    parked: string;
    last_position: string | null;
    last_type: string | null;
    last_error: string | null;
    last_at: Date | null;
  }>(
    `SELECT name, kind, checkpoint, leader, error_position, error_message, error_at,
            ${LEADER_ALIVE_SQL} AS led,
            (SELECT count(*) FROM qcat_projection_parked k WHERE k.projection = name) AS parked,
            last.position AS last_position, last.event_type AS last_type, last.error AS last_error,
            last.parked_at AS last_at
       FROM qcat_projections
       LEFT JOIN LATERAL (
         SELECT position, event_type, error, parked_at FROM qcat_projection_parked k
          WHERE k.projection = name ORDER BY position DESC LIMIT 1) last ON true
      ORDER BY name`,
  );
  return rows.map((row) => {
    const runner = runners.get(row.name);
    const checkpoint = runner ? runner.checkpoint : BigInt(row.checkpoint);
    const error =
      runner?.error ??
      (row.error_position && row.error_message && row.error_at
        ? { position: BigInt(row.error_position), message: row.error_message, at: row.error_at }
        : null);
    return {
      name: row.name,
      kind: row.kind,
      state: runner ? runner.state : error ? 'stopped' : row.led ? 'led_elsewhere' : 'no_leader',
      checkpoint,
      head,
      lag: head > checkpoint ? head - checkpoint : 0n,
      leader: row.led ? row.leader : null,
      error,
      onPoisonEvent: parking.has(row.name) ? 'park' : 'stop',
      parked: Number(row.parked),
      lastParked:
        row.last_position && row.last_type && row.last_error && row.last_at
          ? {
              position: BigInt(row.last_position),
              type: row.last_type,
              error: row.last_error,
              at: row.last_at,
            }
          : null,
    };
  });
}
