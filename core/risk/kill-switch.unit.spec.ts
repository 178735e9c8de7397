import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import { KILL_SWITCH_STREAM } from './common.js';
import { killSwitch, type KillSwitchEvent } from './kill-switch.js';

const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const risk2: Party = { id: 'apikey:risk2', role: 'risk_officer' };
const admin: Party = { id: 'apikey:admin1', role: 'admin' };
const trader: Party = { id: 'apikey:trader1', role: 'trader' };
const T = 1_700_000_000_000;

const engage = (by: Party, flatten = false, reason = 'flash crash') =>
  ({ type: 'EngageKillSwitch', by, reason, flatten, time: T }) as const;
const release = (approvers: Party[], requestId = 'r1') =>
  ({ type: 'ReleaseKillSwitch', requestId, approvers, time: T + 1 }) as const;

const engaged: KillSwitchEvent = {
  type: 'KillSwitchEngaged',
  data: { by: risk, reason: 'flash crash', flatten: false, time: T },
};
const released: KillSwitchEvent = {
  type: 'KillSwitchReleased',
  data: { requestId: 'r1', approvers: [risk2], time: T + 1 },
};

describe('kill switch', () => {
  it('a risk officer or an admin engages it, optionally flattening', () => {
    expect(KILL_SWITCH_STREAM).toBe('risk-killswitch-global');
    given(killSwitch, []).when(engage(risk)).then([engaged]);
    given(killSwitch, [])
      .when(engage(admin, true))
      .then([{ ...engaged, data: { ...engaged.data, by: admin, flatten: true } }]);
    given(killSwitch, []).when(engage(trader)).thenRefuses('RISK_ROLE_REQUIRED');
    given(killSwitch, [])
      .when(engage(risk, false, '  '))
      .thenRefuses('REASON_REQUIRED');
  });

  it('engaged already: refused, unless it escalates to flattening', () => {
    given(killSwitch, [engaged]).when(engage(risk2)).thenRefuses('KILL_SWITCH_ALREADY_ENGAGED');
    const escalated = given(killSwitch, [engaged])
      .when(engage(risk2, true))
      .then([{ ...engaged, data: { ...engaged.data, by: risk2, flatten: true } }]);
    const state = given(killSwitch, [engaged, ...escalated]).state;
    expect(state).toMatchObject({ engaged: true, flatten: true, since: T });
    given(killSwitch, [engaged, ...escalated])
      .when(engage(risk2, true))
      .thenRefuses('KILL_SWITCH_ALREADY_ENGAGED');
  });

  it('is released only by an approved risk_reset request', () => {
    given(killSwitch, [engaged])
      .when(release([risk2]))
      .then([released]);
    given(killSwitch, [engaged])
      .when(release([admin]))
      .thenRefuses('APPROVAL_INCOMPLETE');
    given(killSwitch, [engaged]).when(release([])).thenRefuses('APPROVAL_INCOMPLETE');
    given(killSwitch, [])
      .when(release([risk2]))
      .thenRefuses('KILL_SWITCH_NOT_ENGAGED');
    // The same approved request again (a replay) writes nothing.
    given(killSwitch, [engaged, released])
      .when(release([risk2]))
      .then([]);
    expect(given(killSwitch, [engaged, released]).state).toMatchObject({
      engaged: false,
      flatten: false,
    });
  });
});
