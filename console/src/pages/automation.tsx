import { useState } from 'preact/hooks';
import { call, get } from '../api.js';
import { ConfirmDialog, ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useApp } from '../main.js';
import { may } from '../session.js';

interface Capability {
  name: string;
  title: string;
  enabled: boolean;
  requires: string[];
  changedBy: string | null;
  lastDecisions: {
    position: string;
    recordedAt: string;
    outcome: string;
    type: string;
    reason: string | null;
  }[];
}

/**
 * Each automation capability: on or off, and its last decisions. A role with
 * `automation:configure` switches one on or off after a confirmation (the server refuses one
 * whose prerequisites are off, and says so).
 */
export function Automation() {
  const { session } = useApp();
  const configure = may(session, 'automation:configure');
  const [switching, setSwitching] = useState<Capability | undefined>(undefined);
  const state = useLoad(() =>
    get<{ held: string | null; capabilities: Capability[] }>('/automation?decisions=5'),
  );
  const turn = switching?.enabled ? 'off' : 'on';
  return (
    <>
      {state.data?.held && <p class="alert">Automation is held: {state.data.held}</p>}
      <ErrorNote error={state.error} />
      {(state.data?.capabilities ?? []).map((c) => (
        <Panel key={c.name} title={c.title} id={`cap-${c.name}`}>
          <p>
            <span class={`badge ${c.enabled ? 'on' : 'off'}`}>{c.enabled ? 'on' : 'off'}</span>{' '}
            {c.changedBy ? `last changed by ${c.changedBy}` : 'never changed (defaults)'}
            {c.requires.length > 0 && ` · needs ${c.requires.join(', ')} on`}
          </p>
          {configure && (
            <button
              type="button"
              onClick={() => {
                setSwitching(c);
              }}
            >
              {c.enabled ? `Switch ${c.title} off…` : `Switch ${c.title} on…`}
            </button>
          )}
          <Table
            caption={`Last decisions of ${c.title}`}
            rows={c.lastDecisions}
            empty="No decision yet."
            rowKey={(d) => d.position}
            columns={[
              { title: 'When', cell: (d) => fmtTime(d.recordedAt) },
              { title: 'Outcome', cell: (d) => d.outcome },
              { title: 'What', cell: (d) => d.type },
              { title: 'Why', cell: (d) => d.reason ?? '—' },
            ]}
          />
        </Panel>
      ))}
      <ConfirmDialog
        open={switching !== undefined}
        title={`Switch ${switching?.title ?? ''} ${turn}?`}
        body={
          <p>
            {turn === 'on'
              ? 'It starts acting at its next trigger, within its thresholds.'
              : 'It stops acting at once; what it already did stays.'}{' '}
            The change is recorded under your key.
          </p>
        }
        confirmLabel={`Switch ${turn}`}
        onConfirm={async () => {
          if (switching === undefined) return;
          await call(`/automation/${encodeURIComponent(switching.name)}`, {
            method: 'PUT',
            body: { enabled: !switching.enabled },
          });
          state.reload();
        }}
        onClose={() => {
          setSwitching(undefined);
        }}
      />
    </>
  );
}
