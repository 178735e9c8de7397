import type { RecordedEvent } from '../../core/eventstore/event-store.js';
import { toError } from '../../core/errors.js';
import type { ProcessManager } from '../process-manager.js';
import type { ExecutionResult } from './executor.js';
import { OPTIMIZER } from './executor.js';

export interface OptimizationRunnerDeps {
  /** Runs one optimization to its end (executor.ts). */
  execute(optimizationId: string, signal: AbortSignal): Promise<ExecutionResult>;
  /** Unfinished runs in request order (the read model), to resume after a restart. */
  unfinished(limit: number): Promise<string[]>;
  /** Optimizations run at once in this process (each uses every core). Default 1. */
  capacity?: number;
  /** Runs going on here and runs waiting for a runner, after every change and tick (metrics). */
  onLoad?: (running: number, waiting: number) => void;
  log?: (message: string) => void;
}

/** What to start: the unfinished runs not running here, up to the free capacity. */
export function toStart(
  unfinished: readonly string[],
  running: ReadonlySet<string>,
  capacity: number,
): string[] {
  const free = Math.max(0, capacity - running.size);
  return unfinished.filter((id) => !running.has(id)).slice(0, free);
}

/**
 * The optimizer: the process manager that runs optimizations in the leading process. A request
 * starts at once when there is capacity; every tick (5 s) it also looks for unfinished runs in the
 * read model, so a run interrupted by a crash or a change of leader is resumed (its recorded
 * batches are not written again). It issues no intents of its own: the executor records the
 * batches and the outcome as `automation:optimizer`, caused by the request.
 */
export function optimizationRunner(deps: OptimizationRunnerDeps): ProcessManager & {
  stop(): Promise<void>;
} {
  const capacity = deps.capacity ?? 1;
  const running = new Map<string, Promise<void>>();
  const abort = new AbortController();
  let waiting = 0;
  const report = (): void => deps.onLoad?.(running.size, waiting);
  const start = (optimizationId: string): void => {
    if (running.has(optimizationId) || running.size >= capacity || abort.signal.aborted) return;
    const done = deps
      .execute(optimizationId, abort.signal)
      .then((result) => {
        deps.log?.(`optimizer: ${optimizationId} ${result}`);
      })
      .catch((error: unknown) => {
        deps.log?.(`optimizer: ${optimizationId} stopped: ${toError(error).message}`);
      })
      .finally(() => {
        running.delete(optimizationId);
        report();
      });
    running.set(optimizationId, done);
    report();
  };
  return {
    name: OPTIMIZER,
    handles: ['OptimizationRequested'],
    react(event: RecordedEvent) {
      const id = (event.data as { optimizationId?: unknown }).optimizationId;
      if (typeof id === 'string') start(id);
      return Promise.resolve([]);
    },
    async tick() {
      const unfinished = await deps.unfinished(capacity * 4);
      for (const id of toStart(unfinished, new Set(running.keys()), capacity)) start(id);
      // Requested and not running here (counted up to the look-up's limit).
      waiting = unfinished.filter((id) => !running.has(id)).length;
      report();
      return undefined;
    },
    tickMs: 5000,
    async stop() {
      abort.abort();
      await Promise.all(running.values());
    },
  };
}
