import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { CandleChart, type Candle, type Mark } from '../charts.js';
import { ErrorNote, Loading, Panel, useLoad } from '../components.js';
import { useApp } from '../main.js';
import { may } from '../session.js';

const MINUTES = { '1m': 1, '5m': 5, '15m': 15, '1h': 60, '4h': 240, '1d': 1440 } as const;
type Timeframe = keyof typeof MINUTES;
const TIMEFRAMES = Object.keys(MINUTES) as Timeframe[];

interface Fill {
  fillId: string;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
  time: string;
}

/** Candles per symbol and timeframe, with the fills of the market (or of one strategy) marked. */
export function Markets() {
  const { session } = useApp();
  const instruments = useLoad(() => get<{ instruments: { symbol: string }[] }>('/instruments'));
  const [symbol, setSymbol] = useState<string | undefined>(undefined);
  const [timeframe, setTimeframe] = useState<Timeframe>('1m');
  const [strategyId, setStrategyId] = useState('');
  const chosen = symbol ?? instruments.data?.instruments[0]?.symbol;
  const candles = useLoad(
    async () =>
      chosen === undefined
        ? []
        : (
            await get<{ candles: Candle[] }>(
              `/candles${query({ symbol: chosen, timeframe, latest: 'true', limit: 1000 })}`,
            )
          ).candles,
    [chosen, timeframe],
  );
  // The fills within the chart: from its first bar on (the market's clock is the candles', which
  // a demo plays behind the wall clock).
  const since = candles.data?.[0]?.openTime;
  const fills = useLoad(
    async () =>
      chosen === undefined || since === undefined || !may(session, 'trading:read')
        ? []
        : (
            await get<{ fills: Fill[] }>(
              `/fills${query({ symbol: chosen, strategyId, from: since, limit: 1000 })}`,
            )
          ).fills,
    [chosen, strategyId, since],
  );
  const marks: Mark[] = (fills.data ?? []).map((f) => ({
    time: f.time,
    side: f.side,
    text: `${f.side} ${f.quantity}`,
  }));
  return (
    <Panel title="Candles">
      <div class="controls">
        <label>
          Symbol{' '}
          <select
            value={chosen}
            onChange={(e) => {
              setSymbol(e.currentTarget.value);
            }}
          >
            {(instruments.data?.instruments ?? []).map((i) => (
              <option key={i.symbol} value={i.symbol}>
                {i.symbol}
              </option>
            ))}
          </select>
        </label>
        <label>
          Timeframe{' '}
          <select
            value={timeframe}
            onChange={(e) => {
              const picked = TIMEFRAMES.find((t) => t === e.currentTarget.value);
              if (picked) setTimeframe(picked);
            }}
          >
            {TIMEFRAMES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Strategy id (fills of one strategy){' '}
          <input
            value={strategyId}
            onChange={(e) => {
              setStrategyId(e.currentTarget.value.trim());
            }}
          />
        </label>
      </div>
      <ErrorNote error={instruments.error ?? candles.error ?? fills.error} />
      {candles.data === undefined ? (
        <Loading what="candles" />
      ) : candles.data.length === 0 ? (
        <p class="muted">
          No candle stored for {chosen ?? 'this market'} at {timeframe}.
        </p>
      ) : (
        <CandleChart candles={candles.data} marks={marks} label={`${chosen ?? ''} ${timeframe}`} />
      )}
    </Panel>
  );
}
