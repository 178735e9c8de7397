import type { CommandHandler } from '../core/commands/command-handler.js';
import type { ProcessManager } from './process-manager.js';

/** What process managers may read and use; the composition root (ops/runtime.ts) provides it. */
export interface AutomationDeps {
  commands: CommandHandler;
}

/**
 * Every process manager QCAT runs (ADR 010). Add new ones here; each lives in a folder of its own
 * under automation/ with its pure decision function and its given/when/then spec.
 */
export const allProcessManagers = (_deps: AutomationDeps): ProcessManager[] => [];
