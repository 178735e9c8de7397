import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { HOT_SYMBOLS_STREAM, hotSymbolsRanking } from '../../core/hot-symbols/ranking.js';
import { intent, type ProcessManager, type Tick } from '../process-manager.js';
import { rankingCommand } from './ranking-command.js';

const HOUR = 3_600_000;

/**
 * Capability 10: every hour, while it is switched on, ranks the symbols on the hour's closed
 * candles (docs/hot-symbols.md). The hour is the tick's slot, so each hour is ranked once
 * whichever process leads; the gate holds it under the kill switch or a HALTED portfolio.
 */
export function hotSymbolsManager(deps: {
  commands: CommandHandler;
  market: MarketDataStore;
  tickMs?: number;
}): ProcessManager {
  // The hour's ranking, once computed: the next ticks of the hour issue it again (written once,
  // by its key) instead of reading a month of candles for every symbol each time.
  let last: Tick | undefined;
  return {
    name: 'hot-symbols',
    capability: 'hot_symbols',
    handles: [],
    tickMs: deps.tickMs ?? 60_000,
    react: async () => [],
    tick: async (now) => {
      const { state } = await deps.commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
      if (!state.hot_symbols.enabled) return undefined;
      const at = Math.floor(now.getTime() / HOUR) * HOUR;
      if (last?.slot === new Date(at).toISOString()) return last;
      const command = await rankingCommand(
        deps.market,
        at,
        state.hot_symbols.thresholds,
        'schedule',
      );
      if (command.scores.length === 0) return undefined;
      last = {
        slot: new Date(at).toISOString(),
        intents: [intent(hotSymbolsRanking, HOT_SYMBOLS_STREAM, command)],
      };
      return last;
    },
  };
}
