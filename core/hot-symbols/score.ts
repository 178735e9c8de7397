import { mean, median, medianAbsoluteDeviation, quantileRank } from 'simple-statistics';
import type { Candle } from '../market/types.js';

/**
 * Hot-symbol scores (capability 10, docs/hot-symbols.md): five dimensions of the user's system,
 * each a robust z-score of the symbol against its own recent history — which puts every symbol on
 * one scale — centred on the median across symbols (a market-wide move makes no symbol hot),
 * combined with the policy's weights. A dimension without data is marked missing and
 * left out (the weights of the others are renormalised), never counted as a silent zero.
 */
export const DIMENSIONS = ['volumeJump', 'turnover', 'openInterest', 'funding', 'regime'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export type Weights = Record<Dimension, number>;

export const DEFAULT_WEIGHTS: Weights = {
  volumeJump: 0.25,
  turnover: 0.2,
  openInterest: 0.2,
  funding: 0.15,
  regime: 0.2,
};

export interface SymbolSeries {
  symbol: string;
  /** 1-hour candles, oldest first, covering at least the look-back and the recent window. */
  candles: readonly Candle[];
  /** Open interest (base units) by hour; absent when the symbol has no futures market. */
  openInterest?: readonly { time: number; value: number }[];
  /** Funding rate per period (e.g. 0.0001 per 8 h). */
  funding?: readonly { time: number; rate: number }[];
}

export interface ScoreOptions {
  /** Scores describe the market up to this instant (epoch ms, exclusive). */
  at: number;
  weights?: Weights;
  recentHours?: number;
  lookbackDays?: number;
}

export interface DimensionScore {
  /**
   * Robust z-score against the symbol's own history, less the median of the symbols' (clipped to
   * ±CLIP); null when missing.
   */
  z: number | null;
  /** Share of the other symbols with a lower z in this dimension (0..1); null when missing. */
  rank: number | null;
  /** Why it is missing. */
  missing?: string;
}

export interface SymbolScore {
  symbol: string;
  /** Σ weight × z over the dimensions present / Σ their weights; null with none present. */
  score: number | null;
  dimensions: Record<Dimension, DimensionScore>;
}

const CLIP = 6;
const HOUR = 3_600_000;
/** MAD × 1.4826 estimates σ for normal data. */
const MAD_TO_SIGMA = 1.4826;

const clip = (value: number): number => Math.max(-CLIP, Math.min(CLIP, value));

/** (value − median) / robust σ of `history`; 0 when the history does not vary. */
export function robustZ(value: number, history: readonly number[]): number {
  if (history.length === 0) return 0;
  const center = median([...history]);
  const spread = medianAbsoluteDeviation([...history]) * MAD_TO_SIGMA;
  if (spread > 0) return clip((value - center) / spread);
  const deviation = Math.sqrt(mean(history.map((v) => (v - center) ** 2)));
  return deviation > 0 ? clip((value - center) / deviation) : 0;
}

const std = (values: readonly number[]): number => {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1));
};

/** Candles split into consecutive windows of `hours` ending at `at`, oldest first. */
function windows(candles: readonly Candle[], at: number, hours: number, count: number): Candle[][] {
  const span = hours * HOUR;
  const out: Candle[][] = Array.from({ length: count }, () => []);
  for (const candle of candles) {
    const index = count - 1 - Math.floor((at - 1 - candle.openTime) / span);
    if (candle.openTime < at && index >= 0 && index < count) out[index]?.push(candle);
  }
  return out;
}

const quoteVolume = (candles: readonly Candle[]): number =>
  candles.reduce((sum, c) => sum + c.close * c.volume, 0);

const logReturns = (candles: readonly Candle[]): number[] =>
  candles.slice(1).map((c, i) => Math.log(c.close / (candles[i]?.close ?? c.close)));

type Raw = Record<Dimension, number | null> & { missing: Partial<Record<Dimension, string>> };

/** Value of a series at or before `time` (the last point not after it). */
function valueAt<T extends { time: number }>(series: readonly T[], time: number): T | undefined {
  let found: T | undefined;
  for (const point of series) if (point.time <= time) found = point;
  return found;
}

function openInterestZ(
  series: SymbolSeries['openInterest'],
  at: number,
  recent: number,
  days: number,
): number | string {
  if (!series || series.length === 0) return 'no open-interest series';
  const step = recent * HOUR;
  const changes: number[] = [];
  for (let end = at - step; end - step >= at - (days + 1) * step; end -= step) {
    const now = valueAt(series, end - 1);
    const before = valueAt(series, end - step - 1);
    if (now && before && now.value > 0 && before.value > 0)
      changes.push(Math.log(now.value / before.value));
  }
  const now = valueAt(series, at - 1);
  const before = valueAt(series, at - step - 1);
  if (!now || !before || now.value <= 0 || before.value <= 0 || changes.length < 5)
    return 'too little open-interest history';
  return robustZ(Math.log(now.value / before.value), changes);
}

function fundingZ(
  series: SymbolSeries['funding'],
  at: number,
  recent: number,
  days: number,
): number | string {
  if (!series || series.length === 0) return 'no funding-rate series';
  const from = at - (days * 24 + recent) * HOUR;
  const history = series
    .filter((p) => p.time >= from && p.time < at - recent * HOUR)
    .map((p) => p.rate);
  const latest = valueAt(
    series.filter((p) => p.time >= at - recent * HOUR),
    at - 1,
  );
  if (!latest || history.length < 5) return 'too little funding-rate history';
  // Extremes either way are hot: a crowded long or a crowded short.
  return Math.abs(robustZ(latest.rate, history));
}

/** One symbol's raw dimensions (before the cross-symbol turnover adjustment). */
function rawDimensions(
  series: SymbolSeries,
  at: number,
  recent: number,
  days: number,
): Raw & { turnoverLog: number | null; turnoverSpread: number } {
  const days24 = windows(series.candles, at, recent, days + 1);
  const past = days24.slice(0, -1).filter((w) => w.length > 0);
  const now = days24.at(-1) ?? [];
  const missing: Raw['missing'] = {};
  let volumeJump: number | null = null;
  let regime: number | null = null;
  let turnoverLog: number | null = null;
  let turnoverSpread = 0;
  if (past.length < 5 || now.length === 0) {
    for (const d of ['volumeJump', 'turnover', 'regime'] as const)
      missing[d] = 'too little candle history';
  } else {
    const pastLogQv = past.map((w) => Math.log(Math.max(quoteVolume(w), 1e-12)));
    const nowLogQv = Math.log(Math.max(quoteVolume(now), 1e-12));
    volumeJump = robustZ(nowLogQv, pastLogQv);
    turnoverLog = nowLogQv - median(pastLogQv);
    turnoverSpread = medianAbsoluteDeviation(pastLogQv) * MAD_TO_SIGMA || std(pastLogQv);
    // Regime: today's realised volatility against the past days', or a close beyond their range.
    const pastVols = past.map((w) => std(logReturns(w))).filter((v) => v > 0);
    const nowVol = std(logReturns(now));
    const volZ =
      nowVol > 0 && pastVols.length >= 5
        ? Math.abs(robustZ(Math.log(nowVol), pastVols.map(Math.log)))
        : 0;
    const high = Math.max(...past.flat().map((c) => c.high));
    const low = Math.min(...past.flat().map((c) => c.low));
    const close = now.at(-1)?.close ?? 0;
    const dailySigma = std(past.map((w) => Math.log((w.at(-1)?.close ?? 1) / (w[0]?.open ?? 1))));
    const beyond = Math.max(0, Math.log(close / high), Math.log(low / close));
    const breakout = dailySigma > 0 ? clip(beyond / dailySigma) : 0;
    regime = Math.max(volZ, breakout);
  }
  const oi = openInterestZ(series.openInterest, at, recent, days);
  const funding = fundingZ(series.funding, at, recent, days);
  if (typeof oi === 'string') missing.openInterest = oi;
  if (typeof funding === 'string') missing.funding = funding;
  return {
    volumeJump,
    turnover: null,
    openInterest: typeof oi === 'number' ? oi : null,
    funding: typeof funding === 'number' ? funding : null,
    regime,
    missing,
    turnoverLog,
    turnoverSpread,
  };
}

/**
 * Scores every symbol at `at`, best first (symbols without any dimension last, by name). Pure:
 * the same series and options give the same scores.
 */
export function scoreHotSymbols(
  all: readonly SymbolSeries[],
  options: ScoreOptions,
): SymbolScore[] {
  const weights = options.weights ?? DEFAULT_WEIGHTS;
  const recent = options.recentHours ?? 24;
  const days = options.lookbackDays ?? 30;
  const raws = all.map((series) => ({
    symbol: series.symbol,
    ...rawDimensions(series, options.at, recent, days),
  }));
  // Turnover: the symbol's traded value against its usual, beyond the whole market's move.
  const marketMove = raws.flatMap((r) => (r.turnoverLog === null ? [] : [r.turnoverLog]));
  const marketCenter = marketMove.length > 0 ? median(marketMove) : 0;
  for (const raw of raws)
    raw.turnover =
      raw.turnoverLog === null
        ? null
        : raw.turnoverSpread > 0
          ? clip((raw.turnoverLog - marketCenter) / raw.turnoverSpread)
          : 0;
  // Across symbols: what the whole market does (a busy day, a market-wide volatility regime) is
  // not what makes one symbol hot; each dimension is centred on the symbols' median.
  for (const dimension of DIMENSIONS) {
    const present = raws.flatMap((r) => (r[dimension] === null ? [] : [r[dimension]]));
    if (present.length < 3) continue;
    const center = median(present);
    for (const raw of raws) {
      const value = raw[dimension];
      if (value !== null) raw[dimension] = clip(value - center);
    }
  }
  const scores = raws.map((raw): SymbolScore => {
    let weighted = 0;
    let weightSum = 0;
    const dimensions = {} as Record<Dimension, DimensionScore>;
    for (const dimension of DIMENSIONS) {
      const z = raw[dimension];
      const peers = raws.flatMap((r) => (r[dimension] === null || r === raw ? [] : [r[dimension]]));
      if (z === null) {
        dimensions[dimension] = {
          z: null,
          rank: null,
          missing: raw.missing[dimension] ?? 'no data',
        };
        continue;
      }
      dimensions[dimension] = { z, rank: peers.length > 0 ? quantileRank(peers, z - 1e-12) : null };
      weighted += weights[dimension] * z;
      weightSum += weights[dimension];
    }
    return { symbol: raw.symbol, score: weightSum > 0 ? weighted / weightSum : null, dimensions };
  });
  return scores.sort(
    (a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.symbol.localeCompare(b.symbol),
  );
}

/** The top `topN` scores at or above `minScore`: what is worth an analyst's look. */
export const recommend = (
  scores: readonly SymbolScore[],
  topN: number,
  minScore: number,
): SymbolScore[] => scores.filter((s) => s.score !== null && s.score >= minScore).slice(0, topN);
