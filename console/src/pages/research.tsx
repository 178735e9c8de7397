import { get, query } from '../api.js';
import { EquityChart } from '../charts.js';
import { ErrorNote, Loading, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { TrialScatter, type Trial } from './trial-scatter.js';

interface Backtest {
  backtestId: string;
  status: string;
  kind: string;
  symbol: string;
  timeframe: string;
  from: string;
  to: string;
  requestedBy: string;
}
interface Optimization {
  optimizationId: string;
  status: string;
  kind: string;
  symbol: string;
  timeframe: string;
  method: string;
  trialsDone: number;
  bestScore: number | null;
  verdict: { passed?: boolean; reasons?: string[] } | null;
  requestedAt: string;
}
interface Curve {
  initialCash: number;
  equity: { date: string; equity: number }[];
}

export function BacktestDetail({ backtestId }: { backtestId: string }) {
  const curve = useLoad(() => get<Curve>(`/backtests/${backtestId}/equity`), [backtestId]);
  if (curve.error !== undefined) return <ErrorNote error={curve.error} />;
  if (curve.data === undefined) return <Loading what="the backtest's equity" />;
  return (
    <EquityChart
      points={curve.data.equity.map((p) => ({ time: p.date, equity: p.equity }))}
      label={`Backtest ${backtestId.slice(0, 8)} equity`}
    />
  );
}

export function OptimizationDetail({ optimizationId }: { optimizationId: string }) {
  const trials = useLoad(
    () => get<{ trials: Trial[] }>(`/optimizations/${optimizationId}/trials?sort=trial&limit=500`),
    [optimizationId],
  );
  const folds = useLoad(
    () =>
      get<Curve & { folds: Record<string, unknown>[] }>(`/optimizations/${optimizationId}/folds`),
    [optimizationId],
  );
  const foldColumns = Object.keys(folds.data?.folds[0] ?? {}).filter(
    (k) => typeof folds.data?.folds[0]?.[k] !== 'object',
  );
  return (
    <>
      <ErrorNote error={trials.error ?? folds.error} />
      {trials.data ? <TrialScatter trials={trials.data.trials} /> : <Loading what="trials" />}
      {folds.data && folds.data.equity.length > 0 && (
        <EquityChart
          points={folds.data.equity.map((p) => ({ time: p.date, equity: p.equity }))}
          label="Walk-forward out-of-sample equity"
        />
      )}
      <Table
        caption="Walk-forward folds"
        rows={folds.data?.folds}
        empty="No walk-forward fold."
        rowKey={(f) => JSON.stringify(f)}
        columns={foldColumns.map((name) => ({
          title: name,
          cell: (f: Record<string, unknown>) => {
            const value = f[name];
            return typeof value === 'number'
              ? Number.isInteger(value)
                ? String(value)
                : value.toFixed(4)
              : typeof value === 'string'
                ? value
                : value === undefined || value === null
                  ? '—'
                  : JSON.stringify(value);
          },
        }))}
      />
    </>
  );
}

/** Backtests and optimizations: equity curves, trials, walk-forward folds, verdicts. */
export function Research({ rest }: { rest: string }) {
  const [kind, id] = rest.split('/');
  const backtests = useLoad(() =>
    get<{ backtests: Backtest[] }>(`/backtests${query({ limit: 100 })}`),
  );
  const optimizations = useLoad(() =>
    get<{ optimizations: Optimization[] }>(`/optimizations${query({ limit: 100 })}`),
  );
  useLiveReload(['category:backtest', 'category:optimization'], () => {
    backtests.reload();
    optimizations.reload();
  });
  return (
    <>
      <Panel title="Backtests">
        <ErrorNote error={backtests.error} />
        <Table
          caption="Backtests"
          rows={backtests.data?.backtests}
          empty="No backtest yet."
          rowKey={(b) => b.backtestId}
          columns={[
            {
              title: 'Backtest',
              cell: (b) => (
                <a href={`#/research/backtest/${b.backtestId}`}>{b.backtestId.slice(0, 8)}</a>
              ),
            },
            { title: 'Status', cell: (b) => b.status },
            { title: 'Kind', cell: (b) => b.kind },
            { title: 'Market', cell: (b) => `${b.symbol} ${b.timeframe}` },
            { title: 'Period', cell: (b) => `${fmtTime(b.from)} – ${fmtTime(b.to)}` },
            { title: 'By', cell: (b) => b.requestedBy },
          ]}
        />
        {kind === 'backtest' && id !== undefined && <BacktestDetail backtestId={id} />}
      </Panel>
      <Panel title="Optimizations">
        <ErrorNote error={optimizations.error} />
        <Table
          caption="Optimizations"
          rows={optimizations.data?.optimizations}
          empty="No optimization yet."
          rowKey={(o) => o.optimizationId}
          columns={[
            {
              title: 'Optimization',
              cell: (o) => (
                <a href={`#/research/optimization/${o.optimizationId}`}>
                  {o.optimizationId.slice(0, 8)}
                </a>
              ),
            },
            { title: 'Status', cell: (o) => o.status },
            { title: 'Market', cell: (o) => `${o.kind} ${o.symbol} ${o.timeframe}` },
            { title: 'Method', cell: (o) => o.method },
            { title: 'Trials', numeric: true, cell: (o) => o.trialsDone },
            { title: 'Best score', numeric: true, cell: (o) => o.bestScore?.toFixed(4) ?? '—' },
            {
              title: 'Verdict',
              cell: (o) =>
                o.verdict === null
                  ? '—'
                  : o.verdict.passed
                    ? 'passed'
                    : `failed: ${(o.verdict.reasons ?? []).join('; ')}`,
            },
          ]}
        />
        {kind === 'optimization' && id !== undefined && <OptimizationDetail optimizationId={id} />}
      </Panel>
    </>
  );
}
