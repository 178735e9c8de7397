import { get } from '../api.js';
import { ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';

interface Capability {
  name: string;
  title: string;
  enabled: boolean;
  changedBy: string | null;
  lastDecisions: {
    position: string;
    recordedAt: string;
    outcome: string;
    type: string;
    reason: string | null;
  }[];
}

/** Each automation capability: on or off, and its last decisions. */
export function Automation() {
  const state = useLoad(() =>
    get<{ held: string | null; capabilities: Capability[] }>('/automation?decisions=5'),
  );
  return (
    <>
      {state.data?.held && <p class="alert">Automation is held: {state.data.held}</p>}
      <ErrorNote error={state.error} />
      {(state.data?.capabilities ?? []).map((c) => (
        <Panel key={c.name} title={c.title} id={`cap-${c.name}`}>
          <p>
            <span class={`badge ${c.enabled ? 'on' : 'off'}`}>{c.enabled ? 'on' : 'off'}</span>{' '}
            {c.changedBy ? `last changed by ${c.changedBy}` : 'never changed (defaults)'}
          </p>
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
    </>
  );
}
