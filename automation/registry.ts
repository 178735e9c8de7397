import type pg from 'pg';
import type { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import { gateOf } from '../core/optimization/gate.js';
import { AllocationQueries } from '../projections/allocation-queries.js';
import { OptimizationQueries } from '../projections/optimization-queries.js';
import { BacktestResultsStore } from '../core/adapters/postgres/backtest-results-store.js';
import { allocationManager } from './allocation/rebalancing.js';
import { approvalFlow } from './approval-flow/manager.js';
import { backtestRunner } from './backtests/runner.js';
import { eliminationManager } from './elimination/manager.js';
import { eliminationReads } from './elimination/reads.js';
import { hotSymbolsManager } from './hot-symbols/manager.js';
import { newStrategiesManager } from './new-strategies/manager.js';
import { newStrategiesReads } from './new-strategies/reads.js';
import { optimizationAdoption } from './optimization/adoption.js';
import {
  periodicOptimizer,
  underperformanceOptimizer,
} from './optimization/automatic-optimizer.js';
import { executeOptimization } from './optimization/executor.js';
import { optimizationRunner } from './optimization/runner.js';
import type { TrialRunnerFactory } from './optimization/trial-runners.js';
import { standingApprovals } from './optimization/standing-approvals.js';
import type { ProcessManager } from './process-manager.js';

/** What process managers may read and use; the composition root (ops/runtime.ts) provides it. */
export interface AutomationDeps {
  commands: CommandHandler;
  market: MarketDataStore;
  pool: pg.Pool;
  eventStore: EventStore;
  /** Registers work to finish before the process closes its connections. */
  onStop(stop: () => Promise<void>): void;
  /** Called after each recorded batch of optimization trials (metrics). */
  onOptimizationBatch?: (trials: number, seconds: number) => void;
  /** Optimizations running in this process and waiting for a runner (metrics). */
  onOptimizationLoad?: (running: number, waiting: number) => void;
  /** How optimization trials run: through the job queue when workers are alive (ADR 029). */
  optimizationTrials?: TrialRunnerFactory;
  log?: (message: string) => void;
}

/**
 * Every process manager QCAT runs (ADR 010). Add new ones here; each lives in a folder of its own
 * under automation/ with its pure decision function and its given/when/then spec.
 */
export const allProcessManagers = (deps: AutomationDeps): ProcessManager[] => {
  const queries = new OptimizationQueries(deps.pool);
  const optimizer = optimizationRunner({
    execute: (optimizationId, signal) =>
      executeOptimization(
        {
          pool: deps.pool,
          eventStore: deps.eventStore,
          commands: deps.commands,
          signal,
          // The adoption gate is capability 2's thresholds in the automation policy.
          gate: async () =>
            gateOf(
              (await deps.commands.load(automationPolicy, AUTOMATION_POLICY_STREAM)).state
                .adopt_parameters.thresholds,
            ),
          ...(deps.onOptimizationBatch ? { onBatch: deps.onOptimizationBatch } : {}),
          ...(deps.optimizationTrials ? { trials: deps.optimizationTrials } : {}),
        },
        optimizationId,
      ),
    unfinished: (limit) => queries.unfinished(limit),
    ...(deps.onOptimizationLoad ? { onLoad: deps.onOptimizationLoad } : {}),
    ...(deps.log ? { log: deps.log } : {}),
  });
  deps.onStop(() => optimizer.stop());
  return [
    approvalFlow(),
    backtestRunner({ commands: deps.commands, results: new BacktestResultsStore(deps.pool) }),
    optimizer,
    optimizationAdoption(deps.commands),
    standingApprovals(),
    underperformanceOptimizer({ commands: deps.commands, market: deps.market, reads: queries }),
    periodicOptimizer({ commands: deps.commands, market: deps.market, reads: queries }),
    hotSymbolsManager(deps),
    allocationManager({ commands: deps.commands, reads: new AllocationQueries(deps.pool) }),
    eliminationManager({ commands: deps.commands, reads: eliminationReads(deps) }),
    newStrategiesManager({ commands: deps.commands, reads: newStrategiesReads(deps) }),
  ];
};
