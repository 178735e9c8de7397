import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import { CAPABILITY_NAMES, parseThresholds } from './capabilities.js';
import {
  automationPolicy,
  type AutomationPolicyCommand,
  type AutomationPolicyEvent,
} from './policy.js';

const officer: Party = { id: 'rita', role: 'risk_officer' };
const trader: Party = { id: 'tom', role: 'trader' };
const configure = (
  capability: string,
  change: Partial<AutomationPolicyCommand> = {},
): AutomationPolicyCommand => ({
  type: 'ConfigureAutomationCapability',
  capability,
  by: officer,
  time: 1_000,
  ...change,
});
const configured = (
  capability: AutomationPolicyEvent['data']['capability'],
  enabled: boolean,
  thresholds = parseThresholds(capability, {}),
): AutomationPolicyEvent => ({
  type: 'AutomationCapabilityConfigured',
  data: { capability, enabled, thresholds, by: officer, time: 1_000 },
});

describe('the automation policy', () => {
  it('has all ten capabilities, off but for the exits risk control already runs', () => {
    const policy = automationPolicy.initialState();
    expect(CAPABILITY_NAMES).toHaveLength(10);
    expect(CAPABILITY_NAMES.filter((name) => policy[name].enabled)).toEqual([
      'auto_exits',
      'dynamic_exits',
    ]);
    expect(policy.elimination.thresholds).toEqual({
      sharpeBelow: 0.5,
      drawdownAbove: 0.1,
      losingWeeksInARow: 4,
      windowDays: 30,
      coolingDays: 7,
    });
  });

  it('switches a capability on with thresholds merged over the current ones', () => {
    given(automationPolicy, [])
      .when(configure('elimination', { enabled: true, thresholds: { losingWeeksInARow: 3 } }))
      .then([
        configured('elimination', true, {
          ...parseThresholds('elimination', {}),
          losingWeeksInARow: 3,
        }),
      ]);
  });

  it('is changed by risk officers and admins only', () => {
    given(automationPolicy, [])
      .when(configure('elimination', { enabled: true, by: trader }))
      .thenRefuses('RISK_ROLE_REQUIRED');
  });

  it('refuses unknown capabilities and thresholds, naming the field', () => {
    given(automationPolicy, []).when(configure('teleport')).thenRefuses('UNKNOWN_CAPABILITY');
    given(automationPolicy, [])
      .when(configure('elimination', { thresholds: { windowDays: -3 } }))
      .thenRefuses('INVALID_THRESHOLD', /^thresholds\.windowDays: /);
    given(automationPolicy, [])
      .when(configure('elimination', { thresholds: { bogus: 1 } }))
      .thenRefuses('INVALID_THRESHOLD', /bogus/);
    given(automationPolicy, [])
      .when(configure('hot_symbols', { thresholds: { topN: 0 } }))
      .thenRefuses('INVALID_THRESHOLD', /^thresholds\.topN: /);
    given(automationPolicy, [])
      .when(configure('hot_symbols', { thresholds: { volumeJump: 0.5 } }))
      .thenRefuses('INVALID_THRESHOLD', /sum to 1/);
  });

  it('needs prerequisites on before, and dependents off before', () => {
    given(automationPolicy, [])
      .when(configure('new_strategies', { enabled: true }))
      .thenRefuses('PREREQUISITE_OFF', /hot_symbols and adopt_parameters/);
    const past = [configured('hot_symbols', true), configured('adopt_parameters', true)];
    given(automationPolicy, past)
      .when(configure('new_strategies', { enabled: true }))
      .then([configured('new_strategies', true)]);
    given(automationPolicy, [...past, configured('new_strategies', true)])
      .when(configure('hot_symbols', { enabled: false }))
      .thenRefuses('CAPABILITY_REQUIRED', /new_strategies/);
  });
});
