import { useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { ConfirmDialog, ErrorNote, Panel, StateBadge, Table, useLoad } from '../components.js';
import { fmtMoney, fmtPct, fmtTime } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may } from '../session.js';
import { LimitsForm } from './risk-limits.js';

interface KillSwitch {
  engaged: boolean;
  flatten: boolean;
  since: string | null;
  engagedBy: string | null;
  reason: string;
  releaseRequestId: string | null;
}
interface Limits {
  scopeType: string;
  scopeId: string;
  isDefault: boolean;
  version: number;
  limits: {
    maxOrderNotional: number | null;
    maxPositionNotional: number | null;
    maxGrossExposure: number | null;
    maxLeverage: number | null;
    dailyLossLimit: number | null;
    maxDrawdown: number | null;
    priceBreaker: { maxMove: number; windowMs: number; cooldownMs: number } | null;
  };
}
interface ScopeState {
  scopeType: string;
  scopeId: string;
  state: string;
  reason: string;
  changedBy: string;
  changedAt: string;
}
interface Trigger {
  triggerId: string;
  rule: string;
  scopeType: string;
  scopeId: string;
  threshold: number;
  observed: number;
  action: string;
  until: string | null;
  firedAt: string;
}
interface Denied {
  clientOrderId: string;
  symbol: string | null;
  side: string | null;
  quantity: number | null;
  code: string;
  reason: string;
  deniedAt: string;
}

function KillSwitchPanel() {
  const { session } = useApp();
  const [minPosition, setMinPosition] = useState<string | undefined>(undefined);
  const kill = useLoad(
    () => get<KillSwitch>(`/risk/kill-switch${query({ minPosition })}`),
    [minPosition],
  );
  useLiveReload(['risk'], setMinPosition);
  const [asking, setAsking] = useState<'engage' | 'release' | undefined>(undefined);
  const [flatten, setFlatten] = useState(false);
  const operate = may(session, 'risk:operate');
  const state = kill.data;
  return (
    <Panel title="Kill switch">
      <ErrorNote error={kill.error} />
      {state && (
        <p data-testid="kill-switch-state" class={state.engaged ? 'alert' : ''}>
          {state.engaged
            ? `ENGAGED since ${fmtTime(state.since)} by ${state.engagedBy ?? '?'}${state.flatten ? ', flattening' : ''}: ${state.reason}`
            : 'Released: trading may open exposure within its limits.'}
        </p>
      )}
      {operate && state && !state.engaged && (
        <>
          <label class="inline">
            <input
              type="checkbox"
              checked={flatten}
              onChange={(e) => {
                setFlatten(e.currentTarget.checked);
              }}
            />{' '}
            also flatten every position
          </label>
          <button
            type="button"
            class="danger big"
            onClick={() => {
              setAsking('engage');
            }}
          >
            Engage the kill switch…
          </button>
        </>
      )}
      {operate && state?.engaged && (
        <button
          type="button"
          onClick={() => {
            setAsking('release');
          }}
          disabled={state.releaseRequestId !== null}
        >
          {state.releaseRequestId !== null
            ? 'Release requested (see Approvals)'
            : 'Request release…'}
        </button>
      )}
      <ConfirmDialog
        open={asking !== undefined}
        title={asking === 'engage' ? 'Engage the kill switch?' : 'Request the release?'}
        body={
          <p>
            {asking === 'engage'
              ? `Every strategy stops opening exposure at once${flatten ? ' and every position is closed' : ''}. Releasing it needs an approval.`
              : 'A release opens an approval request; someone else must approve it.'}
          </p>
        }
        confirmLabel={asking === 'engage' ? 'Engage now' : 'Request release'}
        reasonLabel="Reason (recorded in the log)"
        onConfirm={async (reason) => {
          const answer = (await call(
            asking === 'engage' ? '/risk/kill-switch' : '/risk/kill-switch/release-requests',
            {
              method: 'POST',
              body: asking === 'engage' ? { reason, flatten } : { reason },
            },
          )) as { position: string };
          setMinPosition(answer.position);
        }}
        onClose={() => {
          setAsking(undefined);
        }}
      />
    </Panel>
  );
}

const limitText = (value: number | null) => (value === null ? '—' : fmtMoney(value));

export function Risk() {
  const { session } = useApp();
  const [limitsPosition, setLimitsPosition] = useState<string | undefined>(undefined);
  const limits = useLoad(
    () =>
      get<{ limits: Limits[] }>(
        `/risk/limits${query({ limit: 200, minPosition: limitsPosition })}`,
      ),
    [limitsPosition],
  );
  const states = useLoad(() => get<{ states: ScopeState[] }>('/risk/states?limit=200'));
  const triggers = useLoad(() => get<{ triggers: Trigger[] }>('/risk/triggers?limit=100'));
  const denied = useLoad(() => get<{ deniedOrders: Denied[] }>('/risk/denied-orders?limit=100'));
  useLiveReload(['risk', 'category:order'], () => {
    states.reload();
    triggers.reload();
    denied.reload();
    limits.reload();
  });
  return (
    <>
      <KillSwitchPanel />
      <Panel title="Trading states">
        <ErrorNote error={states.error} />
        <Table
          caption="Trading states"
          rows={states.data?.states}
          empty="Every scope is ACTIVE."
          rowKey={(s) => `${s.scopeType}:${s.scopeId}`}
          columns={[
            { title: 'Scope', cell: (s) => `${s.scopeType} ${s.scopeId}` },
            { title: 'State', cell: (s) => <StateBadge state={s.state} /> },
            { title: 'Reason', cell: (s) => s.reason },
            { title: 'By', cell: (s) => s.changedBy },
            { title: 'At', cell: (s) => fmtTime(s.changedAt) },
          ]}
        />
      </Panel>
      <Panel title="Limits">
        <ErrorNote error={limits.error} />
        <Table
          caption="Risk limits"
          rows={limits.data?.limits}
          empty="No limit set: the defaults apply."
          rowKey={(l) => `${l.scopeType}:${l.scopeId}`}
          columns={[
            {
              title: 'Scope',
              cell: (l) => `${l.scopeType} ${l.scopeId}${l.isDefault ? ' (defaults)' : ''}`,
            },
            {
              title: 'Max order',
              numeric: true,
              cell: (l) => limitText(l.limits.maxOrderNotional),
            },
            {
              title: 'Max position',
              numeric: true,
              cell: (l) => limitText(l.limits.maxPositionNotional),
            },
            {
              title: 'Max gross',
              numeric: true,
              cell: (l) => limitText(l.limits.maxGrossExposure),
            },
            { title: 'Daily loss', numeric: true, cell: (l) => limitText(l.limits.dailyLossLimit) },
            { title: 'Max drawdown', numeric: true, cell: (l) => fmtPct(l.limits.maxDrawdown) },
            {
              title: 'Price breaker',
              cell: (l) =>
                l.limits.priceBreaker
                  ? `${fmtPct(l.limits.priceBreaker.maxMove)} in ${l.limits.priceBreaker.windowMs / 1000} s`
                  : '—',
            },
            { title: 'Version', numeric: true, cell: (l) => l.version },
          ]}
        />
      </Panel>
      {may(session, 'risk:operate') && <LimitsForm onWritten={setLimitsPosition} />}
      <Panel title="Breakers fired">
        <ErrorNote error={triggers.error} />
        <Table
          caption="Breakers fired"
          rows={triggers.data?.triggers}
          empty="No breaker has fired."
          rowKey={(t) => t.triggerId}
          columns={[
            { title: 'Rule', cell: (t) => t.rule.replace(/_/g, ' ') },
            { title: 'Scope', cell: (t) => `${t.scopeType} ${t.scopeId}` },
            {
              title: 'Observed / threshold',
              numeric: true,
              cell: (t) => `${t.observed.toFixed(4)} / ${t.threshold.toFixed(4)}`,
            },
            { title: 'Action', cell: (t) => t.action },
            { title: 'Until', cell: (t) => fmtTime(t.until) },
            { title: 'Fired', cell: (t) => fmtTime(t.firedAt) },
          ]}
        />
      </Panel>
      <Panel title="Denied orders">
        <ErrorNote error={denied.error} />
        <Table
          caption="Denied orders"
          rows={denied.data?.deniedOrders}
          empty="No order has been denied."
          rowKey={(d) => d.clientOrderId}
          columns={[
            { title: 'Code', cell: (d) => <code>{d.code}</code> },
            { title: 'Reason', cell: (d) => d.reason },
            {
              title: 'Order',
              cell: (d) => `${d.side ?? ''} ${d.quantity ?? ''} ${d.symbol ?? ''}`,
            },
            { title: 'At', cell: (d) => fmtTime(d.deniedAt) },
          ]}
        />
      </Panel>
    </>
  );
}
