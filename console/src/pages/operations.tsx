import { get } from '../api.js';
import { ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may } from '../session.js';
import { BackupPanels } from './backups.js';

interface Projection {
  name: string;
  kind: string;
  state: string;
  checkpoint: string;
  head: string;
  lag: string;
  leader: string | null;
  error: { position: string; message: string; at: string } | null;
  parked: number;
  rebuilding: boolean;
}
interface Health {
  status: string;
  eventStore: string;
  headPosition: string;
}

/** Projections with their state and lag, the server's health, the backups and the last drill. */
export function Operations() {
  const { session } = useApp();
  const projections = useLoad(() => get<Projection[]>('/projections'));
  const health = useLoad(async () => {
    const response = await fetch('/health');
    return (await response.json()) as Health;
  });
  useLiveReload(['category:strategy', 'positions', 'risk'], () => {
    projections.reload();
  });
  return (
    <>
      <Panel title="Health">
        <ErrorNote error={health.error} />
        {health.data && (
          <p data-testid="health" class={health.data.status === 'ok' ? 'ok' : 'alert'}>
            {health.data.status} · event store {health.data.eventStore} · head position{' '}
            {health.data.headPosition}
          </p>
        )}
      </Panel>
      {may(session, 'backups:read') && <BackupPanels />}
      <Panel title="Projections">
        <ErrorNote error={projections.error} />
        <Table
          caption="Projections"
          rows={projections.data}
          empty="No projection."
          rowKey={(p) => p.name}
          columns={[
            { title: 'Read model', cell: (p) => p.name },
            { title: 'Kind', cell: (p) => p.kind },
            {
              title: 'State',
              cell: (p) => (
                <span class={`badge proj-${p.state}`}>
                  {p.rebuilding ? 'rebuilding' : p.state.replace(/_/g, ' ')}
                </span>
              ),
            },
            { title: 'Checkpoint', numeric: true, cell: (p) => p.checkpoint },
            {
              title: 'Lag (events)',
              numeric: true,
              cell: (p) => <span data-testid={`lag-${p.name}`}>{p.lag}</span>,
            },
            { title: 'Leader', cell: (p) => p.leader ?? '—' },
            { title: 'Parked', numeric: true, cell: (p) => p.parked },
            {
              title: 'Error',
              cell: (p) =>
                p.error
                  ? `${p.error.message} at ${p.error.position} (${fmtTime(p.error.at)})`
                  : '—',
            },
          ]}
        />
      </Panel>
    </>
  );
}
