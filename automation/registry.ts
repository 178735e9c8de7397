import type pg from 'pg';
import type { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import { AllocationQueries } from '../projections/allocation-queries.js';
import { allocationManager } from './allocation/rebalancing.js';
import { hotSymbolsManager } from './hot-symbols/manager.js';
import type { ProcessManager } from './process-manager.js';

/** What process managers may read and use; the composition root (ops/runtime.ts) provides it. */
export interface AutomationDeps {
  commands: CommandHandler;
  market: MarketDataStore;
  /** The read models' pool, for the query modules process managers read. */
  pool: pg.Pool;
}

/**
 * Every process manager QCAT runs (ADR 010). Add new ones here; each lives in a folder of its own
 * under automation/ with its pure decision function and its given/when/then spec.
 */
export const allProcessManagers = (deps: AutomationDeps): ProcessManager[] => [
  hotSymbolsManager(deps),
  allocationManager({ commands: deps.commands, reads: new AllocationQueries(deps.pool) }),
];
