import { z } from 'zod';
import { ROLES } from '../access/roles.js';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError, ValidationError } from '../errors.js';
import { DEFAULT_GATE, type AdoptionGate } from './gate.js';

/**
 * The optimization policy risk officers set, as events in one stream: for now the adoption gate
 * (what a result must show before its parameters are proposed). Until it is first set, the gate
 * is DEFAULT_GATE.
 */

export const OPTIMIZATION_POLICY_STREAM = 'optimizationpolicy-global';

export type OptimizationPolicyEvent = DomainEvent<
  'AdoptionGateSet',
  { gate: AdoptionGate; setBy: Party; reason: string }
>;

export type OptimizationPolicyCommand = {
  type: 'SetAdoptionGate';
  gate: AdoptionGate;
  by: Party;
  reason: string;
};

export interface OptimizationPolicy {
  gate: AdoptionGate;
  /** Who set the gate last; null while the defaults apply. */
  setBy: Party | null;
}

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
export const gateSchema = z.strictObject({
  minOutOfSampleSharpe: z.number().min(-10).max(10),
  minDeflatedSharpe: z.number().min(0).max(1),
  maxPbo: z.number().min(0).max(1),
  minTrades: z.number().int().min(0).max(100_000),
});
const policyEvent = z.object({
  type: z.literal('AdoptionGateSet'),
  data: z.object({ gate: gateSchema, setBy: party, reason: z.string() }),
});

export const optimizationPolicy: Decider<
  OptimizationPolicy,
  OptimizationPolicyCommand,
  OptimizationPolicyEvent
> = {
  initialState: () => ({ gate: DEFAULT_GATE, setBy: null }),
  evolve: (_state, event) => ({ gate: event.data.gate, setBy: event.data.setBy }),
  decide: (command) => {
    if (command.by.role !== 'risk_officer' && command.by.role !== 'admin')
      throw new QcatError(
        'RISK_ROLE_REQUIRED',
        `only a risk officer or an admin sets the adoption gate, not a ${command.by.role}`,
      );
    const parsed = gateSchema.safeParse(command.gate);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((issue) => ({
        path: ['gate', ...issue.path.map(String)].join('.'),
        message: issue.message,
      }));
      throw new ValidationError(
        'INVALID_GATE',
        errors.map((e) => `${e.path} ${e.message}`).join('; '),
        { errors },
      );
    }
    if (command.reason.trim() === '')
      throw new QcatError('REASON_REQUIRED', 'a change of the adoption gate needs a reason');
    return [
      {
        type: 'AdoptionGateSet',
        data: { gate: parsed.data, setBy: command.by, reason: command.reason },
      },
    ];
  },
  parseEvent: (event) => policyEvent.parse(event),
};
