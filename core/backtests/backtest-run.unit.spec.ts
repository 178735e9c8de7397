import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import { QcatError } from '../errors.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../market/synthetic.js';
import { backtest } from '../trading/backtest.js';
import {
  backtestConfig,
  backtests,
  failureOf,
  noMarketData,
  runBacktest,
  type BacktestCommand,
  type BacktestEvent,
  type BacktestSpec,
  type BacktestSummary,
} from './backtest-run.js';

const analyst: Party = { id: 'apikey:analyst1', role: 'analyst' };
const backtestId = 'b1';

const request: Extract<BacktestCommand, { type: 'RequestBacktest' }> = {
  type: 'RequestBacktest',
  backtestId,
  requestedBy: analyst,
  kind: 'sma_crossover',
  parameters: { fastPeriod: 5, slowPeriod: 20 },
  symbol: 'BTCUSDT',
  timeframe: '15m',
  from: '2025-03-01T00:00:00Z',
  to: '2025-03-08T00:00:00+00:00',
};

const spec: BacktestSpec = {
  strategyId: null,
  strategyParameterVersion: null,
  kind: 'sma_crossover',
  parameters: { fastPeriod: 5, slowPeriod: 20, positionFraction: 0.5 },
  symbol: 'BTCUSDT',
  timeframe: '15m',
  from: '2025-03-01T00:00:00.000Z',
  to: '2025-03-08T00:00:00.000Z',
  initialCash: 100_000,
  costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
};

const requested: BacktestEvent = {
  type: 'BacktestRequested',
  data: { backtestId, ...spec, requestedBy: analyst },
};

const summary: BacktestSummary = {
  statistics: {
    days: 7,
    initialEquity: 100_000,
    finalEquity: 101_000,
    totalReturn: 0.01,
    cagr: 0.5,
    sharpe: 1.2,
    sortino: null,
    maxDrawdown: 0.02,
    calmar: 25,
    trades: 3,
    winRate: 2 / 3,
    profitFactor: null,
    expectancy: 333,
    exposure: 0.4,
  },
  trades: 3,
  finalEquity: 101_000,
  bars: 672,
  firstBar: '2025-03-01T00:00:00.000Z',
  lastBar: '2025-03-07T23:45:00.000Z',
  equityDays: 7,
  durationMs: 12,
};
const completed: BacktestEvent = { type: 'BacktestCompleted', data: { backtestId, ...summary } };
const failed: BacktestEvent = {
  type: 'BacktestFailed',
  data: { backtestId, reason: 'NO_MARKET_DATA: symbol=BTCUSDT' },
};

describe('backtest runs: requests', () => {
  it('records a request with the defaults filled in and the range as UTC instants', () => {
    given(backtests, []).when(request).then([requested]);
  });

  it('keeps given cash, costs and the strategy it was copied from', () => {
    given(backtests, [])
      .when({
        ...request,
        strategyId: 's1',
        strategyParameterVersion: 3,
        initialCash: 5_000,
        costs: { takerFeeBps: 0, maxVolumeShare: null },
        from: '2025-03-01T02:00:00+02:00',
      })
      .then([
        {
          type: 'BacktestRequested',
          data: {
            backtestId,
            ...spec,
            strategyId: 's1',
            strategyParameterVersion: 3,
            initialCash: 5_000,
            costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 0, maxVolumeShare: null },
            requestedBy: analyst,
          },
        },
      ]);
  });

  it('refuses parameters that do not fit the kind, naming every field', () => {
    const error = given(backtests, [])
      .when({ ...request, parameters: { fastPeriod: 1, slowPeriod: 'slow' } })
      .thenRefuses('INVALID_PARAMETERS');
    const paths = (error.details['errors'] as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['parameters.fastPeriod', 'parameters.slowPeriod']);
  });

  it.each([
    [{ kind: 'martingale' }, 'UNKNOWN_STRATEGY_KIND', undefined],
    [{ timeframe: '2h' }, 'INVALID_TIMEFRAME', 'timeframe'],
    [{ symbol: 'btc/usdt' }, 'INVALID_SYMBOL', 'symbol'],
    [{ from: '2025-03-01' }, 'INVALID_RANGE', 'from'],
    [{ to: 'tomorrow' }, 'INVALID_RANGE', 'to'],
    [{ to: '2025-03-01T00:00:00Z' }, 'INVALID_RANGE', 'to'],
    [{ from: '2023-03-01T00:00:00Z' }, 'RANGE_TOO_LONG', 'to'],
    [{ initialCash: 0 }, 'INVALID_INITIAL_CASH', 'initialCash'],
    [{ costs: { takerFeeBps: -1 } }, 'INVALID_COSTS', 'costs.takerFeeBps'],
    [{ costs: { maxVolumeShare: 1.5 } }, 'INVALID_COSTS', 'costs.maxVolumeShare'],
  ] as const)('refuses %j with %s', (change, code, path) => {
    const error = given(backtests, [])
      .when({ ...request, ...change })
      .thenRefuses(code);
    if (path)
      expect(error.details['errors']).toEqual([{ path, message: expect.any(String) as string }]);
  });

  it('accepts a range of exactly two years (731 days), not a millisecond more', () => {
    const from = '2023-03-01T00:00:00.000Z';
    const to = new Date(Date.parse(from) + 731 * 86_400_000).toISOString();
    const [event] = given(backtests, [])
      .when({ ...request, from, to })
      .then([
        {
          type: 'BacktestRequested',
          data: { backtestId, ...spec, from, to, requestedBy: analyst },
        },
      ]);
    expect(event?.data).toMatchObject({ from, to });
    const later = new Date(Date.parse(to) + 1).toISOString();
    given(backtests, [])
      .when({ ...request, from, to: later })
      .thenRefuses('RANGE_TOO_LONG');
  });

  it('refuses a second request of the same run', () => {
    given(backtests, [requested]).when(request).thenRefuses('BACKTEST_EXISTS');
  });
});

describe('backtest runs: outcomes', () => {
  const complete: BacktestCommand = { type: 'CompleteBacktest', backtestId, summary };
  const fail: BacktestCommand = {
    type: 'FailBacktest',
    backtestId,
    reason: 'NO_MARKET_DATA: symbol=BTCUSDT',
  };

  it('completes a requested run with its summary, and folds it', () => {
    given(backtests, [requested]).when(complete).then([completed]);
    expect(given(backtests, [requested, completed]).state).toMatchObject({
      status: 'completed',
      summary,
      failureReason: null,
      symbol: 'BTCUSDT',
    });
  });

  it('fails a requested run with its reason, and folds it', () => {
    given(backtests, [requested]).when(fail).then([failed]);
    expect(given(backtests, [requested, failed]).state).toMatchObject({
      status: 'failed',
      summary: null,
      failureReason: 'NO_MARKET_DATA: symbol=BTCUSDT',
    });
  });

  it('is idempotent: the same outcome again writes nothing, even with other figures', () => {
    given(backtests, [requested, completed]).when(complete).then([]);
    given(backtests, [requested, completed])
      .when({ type: 'CompleteBacktest', backtestId, summary: { ...summary, durationMs: 99 } })
      .then([]);
    given(backtests, [requested, failed]).when(fail).then([]);
  });

  it('refuses the other outcome once one is recorded, and outcomes of unknown runs', () => {
    given(backtests, [requested, completed])
      .when(fail)
      .thenRefuses('BACKTEST_NOT_PENDING', /completed already/);
    given(backtests, [requested, failed]).when(complete).thenRefuses('BACKTEST_NOT_PENDING');
    given(backtests, []).when(complete).thenRefuses('BACKTEST_NOT_FOUND');
    given(backtests, []).when(fail).thenRefuses('BACKTEST_NOT_FOUND');
  });

  it('refuses stored events it does not know', () => {
    expect(() => backtests.parseEvent({ type: 'BacktestExploded', data: {} })).toThrow();
    expect(() =>
      backtests.parseEvent({ type: 'BacktestFailed', data: { backtestId, reason: 7 } }),
    ).toThrow();
  });
});

describe('running a backtest', () => {
  const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT')!;
  const from = Date.parse(spec.from);
  const to = Date.parse(spec.to);
  const candles = [
    ...generateCandles({
      seed: 11,
      from: from - 86_400_000,
      to: to + 86_400_000,
      instruments: [instrument],
      timeframe: '15m',
    }),
  ];

  it('is the pure backtest over the range, with one book trading all the equity', () => {
    const output = runBacktest(backtestId, spec, instrument, candles);
    const config = backtestConfig(backtestId, spec, instrument);
    expect(config.books).toEqual([
      {
        strategyId: backtestId,
        symbol: 'BTCUSDT',
        kind: 'sma_crossover',
        parameters: spec.parameters,
        allocation: 1,
      },
    ]);
    const direct = backtest(config, candles, { from, to });
    expect(output.summary).toEqual({
      statistics: direct.statistics,
      trades: direct.trades.length,
      finalEquity: direct.statistics.finalEquity,
      bars: 7 * 96,
      firstBar: spec.from,
      lastBar: '2025-03-07T23:45:00.000Z',
      equityDays: 7,
      durationMs: 0,
    });
    expect(output.trades).toEqual(direct.trades);
    expect(output.equity).toEqual(direct.equity);
    expect(output.trades.length).toBeGreaterThan(0);
    expect(output.equity.map((e) => e.date)).toEqual([
      '2025-03-01',
      '2025-03-02',
      '2025-03-03',
      '2025-03-04',
      '2025-03-05',
      '2025-03-06',
      '2025-03-07',
    ]);
  });

  it('is deterministic, and the costs of the request are the ones charged', () => {
    const first = runBacktest(backtestId, spec, instrument, candles);
    const again = runBacktest(backtestId, structuredClone(spec), instrument, [...candles]);
    expect(JSON.stringify(again)).toBe(JSON.stringify(first));
    const free = runBacktest(
      backtestId,
      { ...spec, costs: { slippageBps: 0, makerFeeBps: 0, takerFeeBps: 0, maxVolumeShare: null } },
      instrument,
      candles,
    );
    expect(first.trades.every((t) => t.fees > 0)).toBe(true);
    expect(free.trades.every((t) => t.fees === 0)).toBe(true);
  });

  it('refuses an instrument of another symbol', () => {
    const eth = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'ETHUSDT')!;
    expect(() => runBacktest(backtestId, spec, eth, candles)).toThrow(/ETHUSDT/);
  });

  it('writes failure reasons as CODE: key=value', () => {
    expect(noMarketData(spec)).toBe(
      'NO_MARKET_DATA: symbol=BTCUSDT, timeframe=15m, from=2025-03-01T00:00:00.000Z, to=2025-03-08T00:00:00.000Z',
    );
    expect(failureOf(new QcatError('INVALID_TRADING_CONFIG', 'no instrument X, or Y'))).toBe(
      'INVALID_TRADING_CONFIG: detail=no instrument X; or Y',
    );
  });
});
