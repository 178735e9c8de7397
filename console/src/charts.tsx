import {
  AreaSeries,
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  LineSeries,
  type IChartApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useEffect, useRef } from 'preact/hooks';

/**
 * Charts drawn by lightweight-charts on a canvas. Each figure's caption says in words what it
 * shows, and the tables beside it hold the figures. The chart keeps the library's attribution
 * link (a focusable element: the chart is therefore neither hidden from nor an image to
 * assistive technology).
 */

export const toTime = (iso: string): UTCTimestamp =>
  Math.floor(Date.parse(iso) / 1000) as UTCTimestamp;

/** Points sorted by time, one per second (the library refuses duplicates and disorder). */
function series<T extends { time: UTCTimestamp }>(points: readonly T[]): T[] {
  const byTime = new Map<number, T>();
  for (const point of points) byTime.set(point.time, point);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

function useChart(draw: (chart: IChartApi) => void, key: readonly unknown[], height = 260) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (element.current === null) return;
    const chart = createChart(element.current, {
      height,
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: '#ffffff' }, textColor: '#1f2933' },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    draw(chart);
    chart.timeScale().fitContent();
    return () => {
      chart.remove();
    };
  }, key);
  return element;
}

export interface EquityPoint {
  time: string;
  equity: number;
}

/** Equity as a line and the drawdown from its running peak as a red area below. */
export function EquityChart({ points, label }: { points: readonly EquityPoint[]; label: string }) {
  const element = useChart(
    (chart) => {
      const equity = chart.addSeries(LineSeries, { color: '#1d4ed8', lineWidth: 2 });
      equity.setData(series(points.map((p) => ({ time: toTime(p.time), value: p.equity }))));
      const drawdown = chart.addSeries(
        AreaSeries,
        {
          lineColor: '#b91c1c',
          topColor: 'rgba(185,28,28,0.05)',
          bottomColor: 'rgba(185,28,28,0.35)',
          priceFormat: { type: 'percent' },
        },
        1,
      );
      let peak = -Infinity;
      drawdown.setData(
        series(
          points.map((p) => {
            peak = Math.max(peak, p.equity);
            return { time: toTime(p.time), value: peak > 0 ? ((p.equity - peak) / peak) * 100 : 0 };
          }),
        ),
      );
    },
    [points],
    320,
  );
  const last = points.at(-1);
  return (
    <figure class="chart">
      <div ref={element} class="chart-canvas" />
      <figcaption>
        {label}: {points.length} points
        {last ? `, last ${last.equity.toFixed(2)} at ${last.time}` : ''}. Drawdown below, in %.
      </figcaption>
    </figure>
  );
}

export interface Candle {
  openTime: string;
  open: number;
  high: number;
  low: number;
  close: number;
}

export interface Mark {
  time: string;
  side: 'buy' | 'sell';
  text: string;
}

/** Candles with fills marked: buys below the bar, sells above. */
export function CandleChart(props: {
  candles: readonly Candle[];
  marks: readonly Mark[];
  label: string;
}) {
  const element = useChart(
    (chart) => {
      const candles = chart.addSeries(CandlestickSeries, {});
      candles.setData(
        series(
          props.candles.map((c) => ({
            time: toTime(c.openTime),
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
          })),
        ),
      );
      const markers: SeriesMarker<Time>[] = [...props.marks]
        .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
        .map((mark) => ({
          time: toTime(mark.time),
          position: mark.side === 'buy' ? 'belowBar' : 'aboveBar',
          color: mark.side === 'buy' ? '#15803d' : '#b91c1c',
          shape: mark.side === 'buy' ? 'arrowUp' : 'arrowDown',
          text: mark.text,
        }));
      createSeriesMarkers(candles, markers);
    },
    [props.candles, props.marks],
    360,
  );
  return (
    <figure class="chart">
      <div ref={element} class="chart-canvas" />
      <figcaption>
        {props.label}: {props.candles.length} candles, {props.marks.length} fills marked.
      </figcaption>
    </figure>
  );
}
