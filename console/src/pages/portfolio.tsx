import { useState } from 'preact/hooks';
import { ApiError, get } from '../api.js';
import { ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtMoney, fmtPct, fmtTime } from '../format.js';

interface PortfolioRow {
  portfolioId: string;
  currency: string;
  cash: number;
  equity: number | null;
  drawdown: number | null;
  netPnl: number;
  valuedAt: string | null;
}
interface Allocation {
  policy: unknown;
  policyVersion: number;
  strategies: Record<string, unknown>[];
}

const cellText = (value: unknown): string =>
  typeof value === 'number'
    ? Math.abs(value) < 1
      ? fmtPct(value)
      : fmtMoney(value)
    : value === null || value === undefined
      ? '—'
      : typeof value === 'string'
        ? value
        : JSON.stringify(value);

/** Target against actual per strategy, as the allocation read model gives them. */
function AllocationOf({ portfolioId }: { portfolioId: string }) {
  const allocation = useLoad(async () => {
    try {
      return await get<Allocation>(`/portfolios/${encodeURIComponent(portfolioId)}/allocation`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }, [portfolioId]);
  if (allocation.error !== undefined) return <ErrorNote error={allocation.error} />;
  if (allocation.data === null) return <p class="muted">{portfolioId} has no allocation policy.</p>;
  const rows = allocation.data?.strategies;
  const columns = Object.keys(rows?.[0] ?? {});
  return (
    <>
      <p>
        Policy version {allocation.data?.policyVersion ?? '…'}:{' '}
        <code>{JSON.stringify(allocation.data?.policy ?? {})}</code>
      </p>
      <Table
        caption={`Allocation of ${portfolioId}`}
        rows={rows}
        empty="No member strategy."
        rowKey={(r) => cellText(r['strategyId'] ?? JSON.stringify(r))}
        columns={columns.map((name) => ({
          title: name,
          cell: (r: Record<string, unknown>) => cellText(r[name]),
          numeric: typeof rows?.[0]?.[name] === 'number',
        }))}
      />
    </>
  );
}

/** Portfolios: cash, equity, drawdown, and their allocations. */
export function Portfolio() {
  const list = useLoad(() => get<{ portfolios: PortfolioRow[] }>('/portfolios'));
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const portfolioId = chosen ?? list.data?.portfolios[0]?.portfolioId;
  return (
    <>
      <Panel title="Portfolios">
        <ErrorNote error={list.error} />
        <Table
          caption="Portfolios"
          rows={list.data?.portfolios}
          empty="No portfolio yet."
          rowKey={(p) => p.portfolioId}
          columns={[
            {
              title: 'Portfolio',
              cell: (p) => (
                <button
                  type="button"
                  class="link"
                  onClick={() => {
                    setChosen(p.portfolioId);
                  }}
                >
                  {p.portfolioId}
                </button>
              ),
            },
            { title: 'Cash', numeric: true, cell: (p) => fmtMoney(p.cash) },
            { title: 'Equity', numeric: true, cell: (p) => `${fmtMoney(p.equity)} ${p.currency}` },
            { title: 'Net PnL', numeric: true, cell: (p) => fmtMoney(p.netPnl) },
            { title: 'Drawdown', numeric: true, cell: (p) => fmtPct(p.drawdown) },
            { title: 'Valued at', cell: (p) => fmtTime(p.valuedAt) },
          ]}
        />
      </Panel>
      {portfolioId !== undefined && (
        <Panel title={`Allocation: ${portfolioId}`} id="allocation">
          <AllocationOf portfolioId={portfolioId} />
        </Panel>
      )}
    </>
  );
}
