import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import type { Decider, DomainEvent } from '../decider.js';
import { partySchema, refuse, remember, requireApproval, requireRiskActor } from './common.js';

/**
 * The kill switch, one stream for everything: `risk-killswitch-global`. A risk officer or an admin
 * engages it (optionally flattening every position); while it is engaged every order that is not
 * a reduce-only order shrinking its position is denied `KILL_SWITCH_ENGAGED`. It is released only
 * by an approved `risk_reset` request.
 */

export type KillSwitchEvent =
  | DomainEvent<'KillSwitchEngaged', { by: Party; reason: string; flatten: boolean; time: number }>
  | DomainEvent<'KillSwitchReleased', { requestId: string; approvers: Party[]; time: number }>;

export type KillSwitchCommand =
  | { type: 'EngageKillSwitch'; by: Party; reason: string; flatten: boolean; time: number }
  | {
      /** From an approved `risk_reset` request whose subject is KILL_SWITCH_SUBJECT. */
      type: 'ReleaseKillSwitch';
      requestId: string;
      approvers: Party[];
      time: number;
    };

export type KillSwitchState = {
  engaged: boolean;
  /** Whether the engagement asked for every position to be closed. */
  flatten: boolean;
  by: Party | null;
  reason: string;
  /** Engaged (or released) at. */
  since: number | null;
  releases: string[];
};

export const killSwitchEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('KillSwitchEngaged'),
    data: z.object({
      by: partySchema,
      reason: z.string(),
      flatten: z.boolean(),
      time: z.number(),
    }),
  }),
  z.object({
    type: z.literal('KillSwitchReleased'),
    data: z.object({ requestId: z.string(), approvers: z.array(partySchema), time: z.number() }),
  }),
]);

export const killSwitch: Decider<KillSwitchState, KillSwitchCommand, KillSwitchEvent> = {
  initialState: () => ({
    engaged: false,
    flatten: false,
    by: null,
    reason: '',
    since: null,
    releases: [],
  }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'KillSwitchEngaged':
        return {
          ...state,
          engaged: true,
          flatten: state.engaged ? state.flatten || event.data.flatten : event.data.flatten,
          by: event.data.by,
          reason: event.data.reason,
          since: state.engaged ? state.since : event.data.time,
        };
      case 'KillSwitchReleased':
        return {
          ...state,
          engaged: false,
          flatten: false,
          since: event.data.time,
          releases: remember(state.releases, event.data.requestId),
        };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'EngageKillSwitch': {
        const { by, flatten, time } = command;
        requireRiskActor(by, 'engage the kill switch');
        if (command.reason.trim() === '')
          refuse('REASON_REQUIRED', 'say why the kill switch is engaged');
        // Engaged already: only an escalation to flattening says something new.
        if (state.engaged && (state.flatten || !flatten))
          refuse(
            'KILL_SWITCH_ALREADY_ENGAGED',
            `the kill switch is engaged since ${String(state.since)}`,
            {
              since: state.since,
            },
          );
        return [{ type: 'KillSwitchEngaged', data: { by, reason: command.reason, flatten, time } }];
      }
      case 'ReleaseKillSwitch': {
        const { requestId, approvers, time } = command;
        if (state.releases.includes(requestId)) return [];
        requireApproval('risk_reset', requestId, approvers);
        if (!state.engaged) refuse('KILL_SWITCH_NOT_ENGAGED', 'the kill switch is not engaged');
        return [{ type: 'KillSwitchReleased', data: { requestId, approvers, time } }];
      }
    }
  },

  parseEvent: (event) => killSwitchEventSchema.parse(event),
};
