import type { Capability } from '../core/capabilities/capabilities.js';
import { capabilityOff } from '../core/capabilities/engine.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../core/capabilities/policy.js';
import type { CommandHandler } from '../core/commands/command-handler.js';
import { KILL_SWITCH_STREAM } from '../core/risk/common.js';
import { killSwitch } from '../core/risk/kill-switch.js';

/**
 * The one control over every capability (ADR 010): `held` says why all of them are held now (the
 * kill switch, a HALTED portfolio), `check` also asks the policy's switch for one capability.
 * Each answers a reason in the form `CODE: words`, or undefined when it may act.
 */
export interface AutomationGate {
  held(): Promise<string | undefined>;
  check(capability: Capability): Promise<string | undefined>;
}

/** The kill switch is read from the log, not a read model: it holds the very next batch. */
export function automationGate(
  commands: CommandHandler,
  haltedPortfolios: () => Promise<string[]>,
): AutomationGate {
  const held = async (): Promise<string | undefined> => {
    const { state: kill } = await commands.load(killSwitch, KILL_SWITCH_STREAM);
    if (kill.engaged) return `KILL_SWITCH_ENGAGED: the kill switch is engaged (${kill.reason})`;
    const halted = await haltedPortfolios();
    if (halted.length > 0) return `TRADING_HALTED: portfolio ${halted.join(', ')} is HALTED`;
    return undefined;
  };
  return {
    held,
    check: async (capability) => {
      const reason = await held();
      if (reason) return reason;
      const { state: policy } = await commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
      return policy[capability].enabled ? undefined : capabilityOff(capability);
    },
  };
}
