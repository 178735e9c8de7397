import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { EquityChart, type EquityPoint } from '../charts.js';
import { ErrorNote, Loading, Panel, StateBadge, Table, useLoad } from '../components.js';
import { fmtMoney, fmtPct, fmtQty, fmtTime, signClass } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may } from '../session.js';
import { CancelOrder, OrderForm } from './order-form.js';

interface PortfolioPnl {
  portfolioId: string;
  currency: string;
  equity: number | null;
  drawdown: number | null;
  netPnl: number;
  realizedPnl: number;
  unrealizedPnl: number;
  feesPaid: number;
  valuedAt: string | null;
}
interface Position {
  portfolioId: string;
  strategyId: string;
  symbol: string;
  quantity: number;
  averageEntryPrice: number;
  markPrice: number | null;
  unrealizedPnl: number;
}
interface Order {
  clientOrderId: string;
  portfolioId: string;
  symbol: string;
  side: string;
  type: string;
  quantity: number;
  filledQuantity: number;
  limitPrice: number | null;
  status: string;
  submittedAt: string;
}
interface ScopeState {
  scopeType: string;
  scopeId: string;
  state: string;
}
interface RiskOverview {
  killSwitch: { engaged: boolean; since: string | null };
  states: ScopeState[];
}

const OPEN = new Set(['submitted', 'accepted', 'partially_filled']);

/** PnL today: the last equity less the last one recorded before today's 00:00 UTC. */
function pnlToday(points: readonly EquityPoint[]): number | null {
  const last = points.at(-1);
  if (last === undefined) return null;
  const midnight = new Date(last.time);
  midnight.setUTCHours(0, 0, 0, 0);
  const before = points.filter((p) => Date.parse(p.time) < midnight.getTime()).at(-1) ?? points[0];
  return before === undefined ? null : last.equity - before.equity;
}

/** Equity pages from oldest, one point per `interval` (or every valuation), at most 5000 points. */
async function equityPages(
  portfolioId: string,
  interval: string | undefined,
  minPosition: string | undefined,
) {
  const points: EquityPoint[] = [];
  let after: string | undefined;
  for (let page = 0; page < 5; page++) {
    const answer = await get<{ points: EquityPoint[]; nextCursor: string | null }>(
      `/portfolios/${encodeURIComponent(portfolioId)}/equity${query({ interval, limit: 1000, after, minPosition })}`,
    );
    points.push(...answer.points);
    if (answer.nextCursor === null) break;
    after = answer.nextCursor;
  }
  return points;
}

/** Hourly points for a long history; every valuation while it is short (a new portfolio). */
async function equityCurve(portfolioId: string, minPosition: string | undefined) {
  const hourly = await equityPages(portfolioId, '1h', minPosition);
  return hourly.length >= 48 ? hourly : equityPages(portfolioId, undefined, minPosition);
}

export function Overview() {
  const { session } = useApp();
  const [minPosition, setMinPosition] = useState<string | undefined>(undefined);
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const at = query({ minPosition });
  const pnl = useLoad(() => get<{ portfolios: PortfolioPnl[] }>(`/pnl${at}`), [minPosition]);
  const portfolios = pnl.data?.portfolios;
  const portfolioId = chosen ?? portfolios?.[0]?.portfolioId;
  const equity = useLoad(
    async () => (portfolioId === undefined ? [] : equityCurve(portfolioId, minPosition)),
    [portfolioId, minPosition],
  );
  const positions = useLoad(() => get<{ positions: Position[] }>(`/positions${at}`), [minPosition]);
  const orders = useLoad(
    () => get<{ orders: Order[] }>(`/orders${query({ limit: 200, minPosition })}`),
    [minPosition],
  );
  const risky = may(session, 'risk:read');
  const risk = useLoad(
    async () => (risky ? get<RiskOverview>(`/risk/overview${at}`) : undefined),
    [minPosition],
  );
  useLiveReload(['positions', 'category:order', 'risk'], setMinPosition);
  const cancels = may(session, 'orders:cancel');
  const selected = portfolios?.find((p) => p.portfolioId === portfolioId);
  const today = equity.data ? pnlToday(equity.data) : null;
  return (
    <>
      {risk.data?.killSwitch.engaged && (
        <p class="alert" role="alert">
          Kill switch engaged since {fmtTime(risk.data.killSwitch.since)}: no new exposure.
        </p>
      )}
      <Panel title="Portfolios">
        <ErrorNote error={pnl.error} />
        <Table
          caption="Portfolios"
          rows={portfolios}
          empty="No portfolio has been valued yet."
          rowKey={(p) => p.portfolioId}
          columns={[
            { title: 'Portfolio', cell: (p) => p.portfolioId },
            { title: 'Equity', numeric: true, cell: (p) => `${fmtMoney(p.equity)} ${p.currency}` },
            {
              title: 'PnL total (net)',
              numeric: true,
              cell: (p) => (
                <span class={signClass(p.netPnl)} data-testid={`pnl-${p.portfolioId}`}>
                  {fmtMoney(p.netPnl)}
                </span>
              ),
            },
            { title: 'Unrealized', numeric: true, cell: (p) => fmtMoney(p.unrealizedPnl) },
            { title: 'Fees', numeric: true, cell: (p) => fmtMoney(p.feesPaid) },
            { title: 'Drawdown', numeric: true, cell: (p) => fmtPct(p.drawdown) },
            { title: 'Valued at', cell: (p) => fmtTime(p.valuedAt) },
          ]}
        />
      </Panel>
      <Panel title="Equity and drawdown">
        {portfolios && portfolios.length > 1 && (
          <label>
            Portfolio{' '}
            <select
              value={portfolioId}
              onChange={(e) => {
                setChosen(e.currentTarget.value);
              }}
            >
              {portfolios.map((p) => (
                <option key={p.portfolioId} value={p.portfolioId}>
                  {p.portfolioId}
                </option>
              ))}
            </select>
          </label>
        )}
        <ErrorNote error={equity.error} />
        {selected && (
          <p>
            PnL today:{' '}
            <strong class={signClass(today)} data-testid="pnl-today">
              {fmtMoney(today)}
            </strong>{' '}
            · PnL total:{' '}
            <strong class={signClass(selected.netPnl)}>{fmtMoney(selected.netPnl)}</strong>{' '}
            {selected.currency}
          </p>
        )}
        {equity.data === undefined ? (
          <Loading what="the equity curve" />
        ) : equity.data.length === 0 ? (
          <p class="muted">No valuation yet.</p>
        ) : (
          <EquityChart points={equity.data} label={`Equity of ${portfolioId ?? ''}`} />
        )}
      </Panel>
      {risky && (
        <Panel title="Trading states">
          <ErrorNote error={risk.error} />
          <Table
            caption="Trading states"
            rows={risk.data?.states}
            empty="Every scope is ACTIVE (none has changed state)."
            rowKey={(s) => `${s.scopeType}:${s.scopeId}`}
            columns={[
              { title: 'Scope', cell: (s) => s.scopeType },
              { title: 'Id', cell: (s) => s.scopeId },
              { title: 'State', cell: (s) => <StateBadge state={s.state} /> },
            ]}
          />
        </Panel>
      )}
      <Panel title="Open positions">
        <ErrorNote error={positions.error} />
        <Table
          caption="Open positions"
          rows={positions.data?.positions}
          empty="No open position."
          rowKey={(p) => `${p.portfolioId}/${p.strategyId}/${p.symbol}`}
          columns={[
            { title: 'Portfolio', cell: (p) => p.portfolioId },
            { title: 'Symbol', cell: (p) => p.symbol },
            { title: 'Strategy', cell: (p) => <code>{p.strategyId.slice(0, 8)}</code> },
            { title: 'Quantity', numeric: true, cell: (p) => fmtQty(p.quantity) },
            { title: 'Entry', numeric: true, cell: (p) => fmtMoney(p.averageEntryPrice) },
            { title: 'Mark', numeric: true, cell: (p) => fmtMoney(p.markPrice) },
            {
              title: 'Unrealized PnL',
              numeric: true,
              cell: (p) => (
                <span class={signClass(p.unrealizedPnl)}>{fmtMoney(p.unrealizedPnl)}</span>
              ),
            },
          ]}
        />
      </Panel>
      {may(session, 'orders:write') && <OrderForm onPlaced={setMinPosition} />}
      <Panel title="Open orders">
        <ErrorNote error={orders.error} />
        <Table
          caption="Open orders"
          rows={orders.data?.orders.filter((o) => OPEN.has(o.status))}
          empty="No open order."
          rowKey={(o) => o.clientOrderId}
          columns={[
            { title: 'Order', cell: (o) => <code>{o.clientOrderId.slice(0, 12)}</code> },
            { title: 'Symbol', cell: (o) => o.symbol },
            { title: 'Side', cell: (o) => o.side },
            { title: 'Type', cell: (o) => o.type },
            {
              title: 'Quantity',
              numeric: true,
              cell: (o) => `${fmtQty(o.filledQuantity)} / ${fmtQty(o.quantity)}`,
            },
            { title: 'Limit', numeric: true, cell: (o) => fmtMoney(o.limitPrice) },
            { title: 'Status', cell: (o) => o.status },
            { title: 'Submitted', cell: (o) => fmtTime(o.submittedAt) },
            ...(cancels
              ? [
                  {
                    title: 'Action',
                    cell: (o: Order) => (
                      <CancelOrder clientOrderId={o.clientOrderId} onCancelled={setMinPosition} />
                    ),
                  },
                ]
              : []),
          ]}
        />
      </Panel>
    </>
  );
}
