import type pg from 'pg';
import type { Capability } from '../core/capabilities/capabilities.js';
import { ENGINE_MANAGERS } from '../core/capabilities/engine.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import { toError } from '../core/errors.js';
import type { Upcasters } from '../core/eventstore/upcasting.js';
import { Leadership } from '../projections/leadership.js';
import { ProjectionRunner } from '../projections/projection-runner.js';
import { ProcessManagerTarget, type Outcome } from './process-manager-target.js';
import type { AutomationGate } from './gate.js';
import type { ProcessManager } from './process-manager.js';

export interface ProcessManagerServiceOptions {
  pool: pg.Pool;
  connectionString: string;
  eventStore: EventStore;
  commands: CommandHandler;
  managers: readonly ProcessManager[];
  /** Names this process in the registry's `leader` column. */
  instanceId: string;
  upcasters?: Upcasters;
  /** How often a standby process tries to take over a process manager; default 2 s. */
  leadershipIntervalMs?: number;
  retryDelayMs?: number;
  /**
   * What now is for ticks (AUTOMATION_CLOCK): the wall clock by default; `market` answers the
   * market's clock (the newest stored bar's close), undefined before any bar: then no tick.
   */
  clock?: () => Promise<Date | undefined>;
  /** Every manager's tick interval instead of its own `tickMs` (AUTOMATION_TICK_MS). */
  tickMs?: number;
  /** Holds capabilities' commands (automation/gate.ts); without it they always act. */
  gate?: AutomationGate;
  onOutcome?: (outcome: Outcome) => void;
  onEvaluation?: (manager: string) => void;
  log?: (message: string) => void;
}

/**
 * Runs this process's share of the process managers: each one is led by exactly one process
 * (advisory lock, as projections are), reads the log from its own checkpoint and, while it leads,
 * ticks on its schedule. Registered in `qcat_projections` with kind `process`, so status, lag
 * and the lag alert cover them; they are never rebuilt (ADR 010).
 */
export class ProcessManagerService {
  private readonly targets: ProcessManagerTarget[];
  private readonly runners = new Map<string, ProjectionRunner>();
  private readonly tickers = new Map<string, NodeJS.Timeout>();
  private readonly leadership: Leadership;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /** The instant each manager this process leads last ticked at (GET /api/v1/automation). */
  private readonly lastTicks = new Map<string, Date>();
  private stopped = false;
  /** The clock's answer being fetched: the tickers that ask at the same moment share it. */
  private asking: Promise<Date | undefined> | undefined;

  constructor(private readonly options: ProcessManagerServiceOptions) {
    this.leadership = new Leadership(options.connectionString);
    this.targets = options.managers.map(
      (manager) =>
        new ProcessManagerTarget(options.pool, manager, options.commands, {
          eventStore: options.eventStore,
          ...(options.gate ? { gate: options.gate } : {}),
          ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
          ...(options.onEvaluation ? { onEvaluation: options.onEvaluation } : {}),
        }),
    );
    this.leadership.whenLost(() => {
      options.log?.('automation: lost the leadership connection; stopping, will try again');
      void this.stopRunners();
    });
  }

  /** The process managers that serve `capability`, by name. */
  managersOf(capability: Capability): string[] {
    // Capabilities the paper engine applies record their holds under a name of their own.
    const engine = ENGINE_MANAGERS[capability];
    return (engine ? [engine] : []).concat(
      this.targets
        .filter(
          ({ manager }) =>
            manager.capability === capability || manager.serves?.includes(capability) === true,
        )
        .map((target) => target.manager.name),
    );
  }

  /** Why every capability is held now (kill switch, HALTED), or undefined. */
  async held(): Promise<string | undefined> {
    return this.options.gate?.held();
  }

  /** The instant each manager this process leads last ticked at, by name. */
  ticked(): Record<string, string> {
    return Object.fromEntries(
      [...this.lastTicks].map(([name, instant]) => [name, instant.toISOString()]),
    );
  }

  names(): string[] {
    return this.targets.map((target) => target.name);
  }

  runner(name: string): ProjectionRunner | undefined {
    return this.runners.get(name);
  }

  /**
   * Waits until the process manager `name` (its kebab-case name) has handled `position`, at most
   * `timeoutMs`; answers whether it got there. Led here: its runner; led elsewhere: the registry.
   */
  async waitFor(name: string, position: bigint, timeoutMs = 2000): Promise<boolean> {
    const target = this.targets.find((t) => t.manager.name === name);
    if (!target) throw new Error(`unknown process manager ${name}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runner = this.runners.get(target.name);
      if ((runner ? runner.checkpoint : await target.checkpoint()) >= position) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, runner ? 2 : 20));
    }
  }

  async start(): Promise<void> {
    for (const target of this.targets)
      await this.options.pool.query(
        `INSERT INTO qcat_projections (name, kind, version) VALUES ($1, 'process', 1)
         ON CONFLICT (name) DO NOTHING`,
        [target.name],
      );
    await this.lead();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.lead());
    }, this.options.leadershipIntervalMs ?? 2000);
    this.timer.unref();
  }

  /** Take the lead of every process manager nobody leads. */
  private async lead(): Promise<void> {
    for (const target of this.targets) {
      if (this.stopped || this.runners.has(target.name)) continue;
      try {
        if (!(await this.leadership.tryAcquire(target.name))) continue;
        await this.options.pool.query(
          'UPDATE qcat_projections SET leader = $2, updated_at = now() WHERE name = $1',
          [target.name, this.options.instanceId],
        );
      } catch (error) {
        this.options.log?.(`automation: leadership check failed: ${toError(error).message}`);
        return;
      }
      const runner = new ProjectionRunner(this.options.eventStore, target, {
        ...(this.options.retryDelayMs ? { retryDelayMs: this.options.retryDelayMs } : {}),
        ...(this.options.upcasters ? { upcasters: this.options.upcasters } : {}),
        onError: async (position, error) => {
          this.options.log?.(
            `automation: ${target.name} stopped at position ${position}: ${error.message}`,
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
      this.startTicks(target);
      this.options.log?.(`automation: leading ${target.name}`);
    }
  }

  private startTicks(target: ProcessManagerTarget): void {
    if (!target.manager.tick) return;
    let running = false;
    const timer = setInterval(
      () => {
        if (running) return; // a slow tick is never run twice at once
        running = true;
        this.now()
          .then(async (now) => {
            if (!now) return;
            await target.tick(now);
            this.lastTicks.set(target.manager.name, now);
          })
          .catch((error: unknown) => {
            this.options.log?.(`automation: ${target.name} tick failed: ${toError(error).message}`);
          })
          .finally(() => {
            running = false;
          });
      },
      this.options.tickMs ?? target.manager.tickMs ?? 60_000,
    );
    timer.unref();
    this.tickers.set(target.name, timer);
  }

  /** The instant the managers tick at: the clock's, one question for every ticker due now. */
  private now(): Promise<Date | undefined> {
    const clock = this.options.clock ?? (() => Promise.resolve(new Date()));
    this.asking ??= clock().finally(() => {
      this.asking = undefined;
    });
    return this.asking;
  }

  private async stopRunners(): Promise<void> {
    for (const timer of this.tickers.values()) clearInterval(timer);
    this.tickers.clear();
    this.lastTicks.clear();
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((runner) => runner.stop()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    await this.stopRunners();
    await this.leadership.close();
  }
}
