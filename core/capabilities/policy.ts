import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { partySchema, refuse, requireRiskActor } from '../risk/common.js';
import {
  CAPABILITIES,
  CAPABILITY_NAMES,
  isCapability,
  parseThresholds,
  type Capability,
  type Thresholds,
} from './capabilities.js';

/**
 * The one automation policy (`automation-policy`): which of the ten capabilities are on and with
 * which thresholds. Risk officers and admins change it; every change is an event naming who. The
 * kill switch and a HALTED portfolio hold every capability whatever the policy says (ADR 010).
 */
export const AUTOMATION_POLICY_STREAM = 'automation-policy';

export type CapabilitySetting = { enabled: boolean; thresholds: Thresholds };
export type AutomationPolicy = Record<Capability, CapabilitySetting & { changedBy: string | null }>;

export type AutomationPolicyEvent = DomainEvent<
  'AutomationCapabilityConfigured',
  { capability: Capability; enabled: boolean; thresholds: Thresholds; by: Party; time: number }
>;

export type AutomationPolicyCommand = {
  type: 'ConfigureAutomationCapability';
  capability: string;
  /** Unchanged when absent. */
  enabled?: boolean;
  /** Merged over the current thresholds; unknown names are refused. */
  thresholds?: Record<string, number | string>;
  by: Party;
  time: number;
};

const eventSchema = z.object({
  type: z.literal('AutomationCapabilityConfigured'),
  data: z.object({
    capability: z.string().refine(isCapability),
    enabled: z.boolean(),
    thresholds: z.record(z.string(), z.union([z.number(), z.string()])),
    by: partySchema,
    time: z.number(),
  }),
});

export const defaultPolicy = (): AutomationPolicy =>
  Object.fromEntries(
    CAPABILITY_NAMES.map((name) => [
      name,
      {
        enabled: CAPABILITIES[name].enabledByDefault,
        thresholds: parseThresholds(name, {}),
        changedBy: null,
      },
    ]),
  ) as AutomationPolicy;

/** Capabilities that are on and need `capability`. */
const dependentsOn = (policy: AutomationPolicy, capability: Capability): Capability[] =>
  CAPABILITY_NAMES.filter(
    (name) =>
      policy[name].enabled &&
      (CAPABILITIES[name].requires as readonly string[]).includes(capability),
  );

function configure(
  command: AutomationPolicyCommand,
  policy: AutomationPolicy,
): AutomationPolicyEvent[] {
  requireRiskActor(command.by, 'change the automation policy');
  const { capability } = command;
  if (!isCapability(capability))
    return refuse('UNKNOWN_CAPABILITY', `no automation capability '${capability}'`, {
      field: 'capability',
      known: CAPABILITY_NAMES,
    });
  const current = policy[capability];
  const parsed = CAPABILITIES[capability].thresholds.safeParse({
    ...current.thresholds,
    ...command.thresholds,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = ['thresholds', ...(issue?.path ?? []).map(String)].join('.');
    return refuse('INVALID_THRESHOLD', `${field}: ${issue?.message ?? 'invalid'}`, { field });
  }
  const enabled = command.enabled ?? current.enabled;
  if (enabled && !current.enabled) {
    const off = CAPABILITIES[capability].requires.filter((name) => !policy[name].enabled);
    if (off.length > 0)
      return refuse(
        'PREREQUISITE_OFF',
        `${capability} needs ${off.join(' and ')} switched on first`,
        { field: 'enabled', prerequisites: off },
      );
  }
  if (!enabled && current.enabled) {
    const dependents = dependentsOn(policy, capability);
    if (dependents.length > 0)
      return refuse(
        'CAPABILITY_REQUIRED',
        `${dependents.join(' and ')} need ${capability}; switch them off first`,
        { field: 'enabled', dependents },
      );
  }
  return [
    {
      type: 'AutomationCapabilityConfigured',
      data: {
        capability,
        enabled,
        thresholds: parsed.data,
        by: command.by,
        time: command.time,
      },
    },
  ];
}

export const automationPolicy: Decider<
  AutomationPolicy,
  AutomationPolicyCommand,
  AutomationPolicyEvent
> = {
  initialState: defaultPolicy,
  evolve: (policy, event) => ({
    ...policy,
    [event.data.capability]: {
      enabled: event.data.enabled,
      thresholds: event.data.thresholds,
      changedBy: event.data.by.id,
    },
  }),
  decide: (command, policy) => configure(command, policy),
  parseEvent: (event) => eventSchema.parse(event),
};
