import { useState } from 'preact/hooks';
import { call, get } from '../api.js';
import { ErrorNote, Loading, messageOf, Panel, useLoad } from '../components.js';
import { fmtPct } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may } from '../session.js';
import { BacktestDetail, OptimizationDetail } from './research.js';

interface StrategyDetail {
  strategyId: string;
  symbols: string[];
  timeframe: string;
  parameters: Record<string, unknown>;
}
interface BacktestRun {
  status: string;
  failureReason: string | null;
  summary: {
    statistics: { totalReturn: number; sharpe: number | null; maxDrawdown: number; trades: number };
  } | null;
}
interface OptimizationRun {
  status: string;
  trialsDone: number;
  bestScore: number | null;
  failureReason: string | null;
  budget: { trials?: number };
}

const METHODS = ['grid', 'random', 'bayesian'] as const;
const OBJECTIVES = ['sharpe', 'sortino', 'calmar', 'netPnl'] as const;
const instant = (date: string): string => `${date}T00:00:00.000Z`;
const daysAgo = (days: number): string =>
  new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);

/** A form's Idempotency-Key: one per submission, new after an edit or a success (ADR 018). */
function useSubmission<T>(send: (key: string) => Promise<T>, done: (answer: T) => void) {
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const edited = () => {
    setKey(crypto.randomUUID());
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      done(await send(key));
      setKey(crypto.randomUUID());
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, edited, submit };
}

function Period(props: { from: string; to: string; set: (from: string, to: string) => void }) {
  return (
    <>
      <label>
        From{' '}
        <input
          type="date"
          required
          value={props.from}
          onInput={(e) => {
            props.set(e.currentTarget.value, props.to);
          }}
        />
      </label>
      <label>
        To{' '}
        <input
          type="date"
          required
          value={props.to}
          onInput={(e) => {
            props.set(props.from, e.currentTarget.value);
          }}
        />
      </label>
    </>
  );
}

/** The requested backtest: its status, then its figures and equity curve. */
function BacktestResult({ backtestId }: { backtestId: string }) {
  const run = useLoad(() => get<BacktestRun>(`/backtests/${backtestId}`), [backtestId]);
  useLiveReload(['category:backtest'], run.reload);
  const r = run.data;
  if (r === undefined) return <ErrorNote error={run.error} />;
  const s = r.summary?.statistics;
  return (
    <div data-testid="backtest-result">
      <p role="status">
        Backtest <code>{backtestId.slice(0, 8)}</code>: {r.status}
        {r.failureReason !== null && `: ${r.failureReason}`}
        {s &&
          ` · return ${fmtPct(s.totalReturn)} · Sharpe ${s.sharpe?.toFixed(2) ?? '—'} · max drawdown ${fmtPct(s.maxDrawdown)} · ${s.trades} trades`}
      </p>
      {r.status === 'completed' && <BacktestDetail backtestId={backtestId} />}
    </div>
  );
}

/** The requested optimization: its progress, then its trials and walk-forward folds. */
function OptimizationResult({ optimizationId }: { optimizationId: string }) {
  const run = useLoad(
    () => get<OptimizationRun>(`/optimizations/${optimizationId}`),
    [optimizationId],
  );
  useLiveReload(['category:optimization'], run.reload);
  const r = run.data;
  if (r === undefined) return <ErrorNote error={run.error} />;
  return (
    <div data-testid="optimization-result">
      <p role="status">
        Optimization <code>{optimizationId.slice(0, 8)}</code>: {r.status} · {r.trialsDone} of{' '}
        {r.budget.trials ?? '?'} trials · best score {r.bestScore?.toFixed(4) ?? '—'}
        {r.failureReason !== null && ` · ${r.failureReason}`}
      </p>
      {r.status === 'completed' && <OptimizationDetail optimizationId={optimizationId} />}
    </div>
  );
}

/**
 * A strategy's research from its page: a backtest (POST /backtests) and an optimization (POST
 * /optimizations) of it, with their results appearing here as they finish.
 */
export function StrategyResearch({ strategyId }: { strategyId: string }) {
  const { session } = useApp();
  const strategy = useLoad(
    () => get<StrategyDetail>(`/strategies/${encodeURIComponent(strategyId)}`),
    [strategyId],
  );
  const [from, setFrom] = useState(daysAgo(90));
  const [to, setTo] = useState(daysAgo(0));
  const [symbol, setSymbol] = useState('');
  const [params, setParams] = useState<Record<string, string>>({});
  const [ranges, setRanges] = useState<Record<string, { low: string; high: string; step: string }>>(
    {},
  );
  const [method, setMethod] = useState<(typeof METHODS)[number]>('grid');
  const [objective, setObjective] = useState<(typeof OBJECTIVES)[number]>('sharpe');
  const [trials, setTrials] = useState('4');
  const [folds, setFolds] = useState('3');
  const [backtestId, setBacktestId] = useState<string | undefined>(undefined);
  const [optimizationId, setOptimizationId] = useState<string | undefined>(undefined);

  const s = strategy.data;
  const numeric = Object.entries(s?.parameters ?? {}).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number',
  );
  const chosenSymbol = s?.symbols.includes(symbol) ? symbol : (s?.symbols[0] ?? '');
  const period = { from: instant(from), to: instant(to) };
  const rangeOf = (name: string, value: number) => {
    const integer = Number.isInteger(value);
    // Whole numbers vary from half to twice the value; fractions stay put (equal ends) unless changed.
    return (
      ranges[name] ?? {
        low: String(integer ? Math.max(1, Math.round(value / 2)) : value),
        high: String(integer ? value * 2 : value),
        step: integer ? String(Math.max(1, Math.round(value / 2))) : '',
      }
    );
  };

  const backtest = useSubmission(
    (key) =>
      call('/backtests', {
        method: 'POST',
        idempotencyKey: key,
        body: {
          strategyId,
          symbol: chosenSymbol,
          ...period,
          parameters: {
            ...s?.parameters,
            ...Object.fromEntries(
              numeric.map(([name, value]) => [name, Number(params[name] ?? value)]),
            ),
          },
        },
      }) as Promise<{ backtestId: string }>,
    (answer) => {
      setBacktestId(answer.backtestId);
    },
  );
  const optimization = useSubmission(
    (key) =>
      call('/optimizations', {
        method: 'POST',
        idempotencyKey: key,
        body: {
          strategyId,
          symbol: chosenSymbol,
          ...period,
          method,
          objective: { name: objective, minTrades: 1 },
          budget: { trials: Number(trials) },
          ...(Number(folds) > 0 ? { walkForward: { folds: Number(folds) } } : {}),
          // A parameter whose ends are equal is not searched: it keeps its value.
          baseParameters: s?.parameters,
          space: Object.fromEntries(
            numeric
              .filter(([name, value]) => rangeOf(name, value).low !== rangeOf(name, value).high)
              .map(([name, value]) => {
                const r = rangeOf(name, value);
                const integer = Number.isInteger(value);
                return [
                  name,
                  {
                    type: integer ? 'int' : 'real',
                    low: Number(r.low),
                    high: Number(r.high),
                    ...(r.step === '' ? {} : { step: Number(r.step) }),
                  },
                ];
              }),
          ),
        },
      }) as Promise<{ optimizationId: string }>,
    (answer) => {
      setOptimizationId(answer.optimizationId);
    },
  );

  const mayBacktest = may(session, 'backtests:run');
  const mayOptimize = may(session, 'optimizations:run');
  if (!mayBacktest && !mayOptimize) return null;
  if (s === undefined)
    return strategy.error ? <ErrorNote error={strategy.error} /> : <Loading what="the strategy" />;
  const symbolPicker = s.symbols.length > 1 && (
    <label>
      Symbol{' '}
      <select
        value={chosenSymbol}
        onChange={(e) => {
          setSymbol(e.currentTarget.value);
        }}
      >
        {s.symbols.map((name) => (
          <option key={name}>{name}</option>
        ))}
      </select>
    </label>
  );
  const setPeriod = (nextFrom: string, nextTo: string) => {
    setFrom(nextFrom);
    setTo(nextTo);
    backtest.edited();
    optimization.edited();
  };
  return (
    <>
      {mayBacktest && (
        <Panel title="Run a backtest" id="run-backtest">
          <form
            class="controls"
            aria-label="Run a backtest"
            onSubmit={(event) => void backtest.submit(event)}
          >
            {symbolPicker}
            <Period from={from} to={to} set={setPeriod} />
            {numeric.map(([name, value]) => (
              <label key={name}>
                {name}{' '}
                <input
                  type="number"
                  step="any"
                  required
                  value={params[name] ?? String(value)}
                  onInput={(e) => {
                    setParams({ ...params, [name]: e.currentTarget.value });
                    backtest.edited();
                  }}
                />
              </label>
            ))}
            <button type="submit" disabled={backtest.busy}>
              Run backtest
            </button>
          </form>
          <p class="muted">
            {s.timeframe} candles of the stored market data; the strategy's other parameters as they
            are.
          </p>
          <ErrorNote error={backtest.error} />
          {backtestId !== undefined && <BacktestResult backtestId={backtestId} />}
        </Panel>
      )}
      {mayOptimize && (
        <Panel title="Optimize the parameters" id="run-optimization">
          <form
            aria-label="Optimize the parameters"
            onSubmit={(event) => void optimization.submit(event)}
          >
            <div class="controls">
              {symbolPicker}
              <Period from={from} to={to} set={setPeriod} />
              <label>
                Method{' '}
                <select
                  value={method}
                  onChange={(e) => {
                    setMethod(METHODS.find((m) => m === e.currentTarget.value) ?? 'grid');
                    optimization.edited();
                  }}
                >
                  {METHODS.map((m) => (
                    <option key={m}>{m}</option>
                  ))}
                </select>
              </label>
              <label>
                Objective{' '}
                <select
                  value={objective}
                  onChange={(e) => {
                    setObjective(OBJECTIVES.find((o) => o === e.currentTarget.value) ?? 'sharpe');
                    optimization.edited();
                  }}
                >
                  {OBJECTIVES.map((o) => (
                    <option key={o}>{o}</option>
                  ))}
                </select>
              </label>
              <label>
                Trials{' '}
                <input
                  type="number"
                  min="1"
                  required
                  value={trials}
                  onInput={(e) => {
                    setTrials(e.currentTarget.value);
                    optimization.edited();
                  }}
                />
              </label>
              <label>
                Walk-forward folds (0: none){' '}
                <input
                  type="number"
                  min="0"
                  required
                  value={folds}
                  onInput={(e) => {
                    setFolds(e.currentTarget.value);
                    optimization.edited();
                  }}
                />
              </label>
            </div>
            <fieldset class="controls">
              <legend>Parameter ranges (equal ends: the parameter keeps that value)</legend>
              {numeric.map(([name, value]) => {
                const r = rangeOf(name, value);
                return (['low', 'high', 'step'] as const).map((end) => (
                  <label key={`${name}-${end}`}>
                    {name} {end}{' '}
                    <input
                      type="number"
                      step="any"
                      required={end !== 'step'}
                      value={r[end]}
                      onInput={(e) => {
                        setRanges({ ...ranges, [name]: { ...r, [end]: e.currentTarget.value } });
                        optimization.edited();
                      }}
                    />
                  </label>
                ));
              })}
            </fieldset>
            <div class="actions">
              <button type="submit" disabled={optimization.busy}>
                Start optimization
              </button>
            </div>
          </form>
          <ErrorNote error={optimization.error} />
          {optimizationId !== undefined && <OptimizationResult optimizationId={optimizationId} />}
        </Panel>
      )}
    </>
  );
}
