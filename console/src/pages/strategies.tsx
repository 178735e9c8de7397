import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may } from '../session.js';
import { StrategyResearch } from './strategy-research.js';

interface Strategy {
  strategyId: string;
  name: string;
  kind: string;
  symbols: string[];
  timeframe: string;
  status: string;
  owner: string;
  parameterVersion: number;
  updatedAt: string;
}
interface HistoryEvent {
  position: string;
  recordedAt: string;
  type: string;
  actor: string;
}
interface ParameterVersion {
  version: number;
  parameters: Record<string, unknown>;
  approvers: { id: string; role: string }[];
  recordedAt: string;
}
interface Backtest {
  backtestId: string;
  status: string;
  symbol: string;
  timeframe: string;
  from: string;
  to: string;
}

function StrategyDetail({ strategyId }: { strategyId: string }) {
  const { session } = useApp();
  const id = encodeURIComponent(strategyId);
  const history = useLoad(
    () => get<{ events: HistoryEvent[] }>(`/strategies/${id}/history?limit=200`),
    [strategyId],
  );
  const versions = useLoad(
    () => get<ParameterVersion[]>(`/strategies/${id}/parameter-versions`),
    [strategyId],
  );
  const backtests = useLoad(
    async () =>
      may(session, 'backtests:read')
        ? (await get<{ backtests: Backtest[] }>(`/backtests${query({ strategyId, limit: 50 })}`))
            .backtests
        : [],
    [strategyId],
  );
  useLiveReload([`stream:strategy-${strategyId}`], history.reload);
  useLiveReload(['category:backtest'], backtests.reload);
  return (
    <>
      <Panel title="History" id="strategy-history">
        <ErrorNote error={history.error} />
        <Table
          caption="Strategy history"
          rows={history.data?.events}
          empty="No event."
          rowKey={(e) => e.position}
          columns={[
            { title: 'When', cell: (e) => fmtTime(e.recordedAt) },
            { title: 'What', cell: (e) => e.type },
            { title: 'Who', cell: (e) => e.actor },
            { title: 'Position', numeric: true, cell: (e) => e.position },
          ]}
        />
      </Panel>
      <Panel title="Parameter versions">
        <ErrorNote error={versions.error} />
        <Table
          caption="Parameter versions"
          rows={versions.data}
          empty="No approved parameter set yet."
          rowKey={(v) => String(v.version)}
          columns={[
            { title: 'Version', numeric: true, cell: (v) => v.version },
            { title: 'Parameters', cell: (v) => <code>{JSON.stringify(v.parameters)}</code> },
            {
              title: 'Approved by',
              cell: (v) => v.approvers.map((a) => `${a.id} (${a.role})`).join(', ') || '—',
            },
            { title: 'At', cell: (v) => fmtTime(v.recordedAt) },
          ]}
        />
      </Panel>
      <Panel title="Backtests">
        <ErrorNote error={backtests.error} />
        <Table
          caption="Backtests"
          rows={backtests.data}
          empty="No backtest of this strategy."
          rowKey={(b) => b.backtestId}
          columns={[
            {
              title: 'Backtest',
              cell: (b) => (
                <a href={`#/research/backtest/${b.backtestId}`}>{b.backtestId.slice(0, 8)}</a>
              ),
            },
            { title: 'Status', cell: (b) => b.status },
            { title: 'Market', cell: (b) => `${b.symbol} ${b.timeframe}` },
            { title: 'Period', cell: (b) => `${fmtTime(b.from)} – ${fmtTime(b.to)}` },
          ]}
        />
      </Panel>
      <StrategyResearch strategyId={strategyId} />
    </>
  );
}

/** Strategies and their states; one strategy's history, parameter versions and backtests. */
export function Strategies({ rest }: { rest: string }) {
  const [status, setStatus] = useState('');
  const list = useLoad(
    () => get<{ strategies: Strategy[] }>(`/strategies${query({ state: status, limit: 200 })}`),
    [status],
  );
  useLiveReload(['strategies'], list.reload);
  const chosen = rest === '' ? undefined : decodeURIComponent(rest);
  return (
    <>
      <Panel title="All strategies">
        <label>
          State{' '}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.currentTarget.value);
            }}
          >
            <option value="">any</option>
            {['draft', 'in_review', 'approved', 'paper', 'live', 'paused', 'retired'].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <ErrorNote error={list.error} />
        <Table
          caption="Strategies"
          rows={list.data?.strategies}
          empty="No strategy."
          rowKey={(s) => s.strategyId}
          columns={[
            {
              title: 'Name',
              cell: (s) => (
                <a href={`#/strategies/${encodeURIComponent(s.strategyId)}`}>{s.name}</a>
              ),
            },
            { title: 'Kind', cell: (s) => s.kind },
            { title: 'Market', cell: (s) => `${s.symbols.join(', ')} ${s.timeframe}` },
            {
              title: 'State',
              cell: (s) => <span class={`badge status-${s.status}`}>{s.status}</span>,
            },
            { title: 'Owner', cell: (s) => s.owner },
            { title: 'Params v', numeric: true, cell: (s) => s.parameterVersion },
            { title: 'Updated', cell: (s) => fmtTime(s.updatedAt) },
          ]}
        />
      </Panel>
      {chosen !== undefined && (
        <>
          <h2 class="subtitle">
            Strategy {list.data?.strategies.find((s) => s.strategyId === chosen)?.name ?? chosen}
          </h2>
          <StrategyDetail strategyId={chosen} />
        </>
      )}
    </>
  );
}
