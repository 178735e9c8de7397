import type { Capability } from './capabilities.js';
import type { AutomationPolicy } from './policy.js';

/**
 * The capabilities the paper engine applies itself, inside its cycle (docs/adr/021): balance-driven
 * sizing (4), automatic take-profit / stop-loss (5) and their level adjustment, the trailing stop
 * (9). The engine reads the policy's switches each round and records them in its cycle's
 * configuration, so a replay decides as the first run did. Only the switch gates them: the kill
 * switch and a HALTED state act on their orders through the pre-trade check, which lets nothing
 * through but reduce-only orders (an exit always reduces).
 */
export type EngineAutomation = {
  balanceSizing: boolean;
  autoExits: boolean;
  dynamicExits: boolean;
};

/** Everything on: an engine without a policy (a backtest, a test) behaves as before. */
export const ALL_ON: EngineAutomation = {
  balanceSizing: true,
  autoExits: true,
  dynamicExits: true,
};

export const engineAutomation = (policy: AutomationPolicy): EngineAutomation => ({
  balanceSizing: policy.balance_sizing.enabled,
  autoExits: policy.auto_exits.enabled,
  // 9 needs 5: the policy refuses 9 on with 5 off, and an old log may still say so.
  dynamicExits: policy.auto_exits.enabled && policy.dynamic_exits.enabled,
});

/** The actor names the engine records its holds under (`automation:<name>`), per capability. */
export const ENGINE_MANAGERS: Partial<Record<Capability, string>> = {
  balance_sizing: 'sizing',
  auto_exits: 'exits',
  dynamic_exits: 'exits',
};

/** The reason of a hold by the policy's switch (the gate's words, automation/gate.ts). */
export const capabilityOff = (capability: Capability): string =>
  `CAPABILITY_OFF: ${capability} is switched off in the automation policy`;

/** The actor of a capability's actions and holds (automation/process-manager.ts says the same). */
export const automationActorOf = (name: string): string => `automation:${name}`;
