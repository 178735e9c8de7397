import type { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { CAPABILITIES } from '../../core/capabilities/capabilities.js';
import type { Thresholds } from '../../core/capabilities/capabilities.js';
import type { HotSymbolsCommand } from '../../core/hot-symbols/ranking.js';
import { recommend, scoreHotSymbols, type Weights } from '../../core/hot-symbols/score.js';

const HOUR = 3_600_000;
/** 30 days of history and the recent day, plus a day of slack for late bars. */
const HISTORY_HOURS = 32 * 24;

/**
 * Scores every instrument's stored hourly candles, open interest and funding rates up to `at`
 * with the policy's thresholds. A symbol without an open-interest or funding series (a spot-only
 * market, or nothing imported) gets that dimension marked missing, not zero.
 */
export async function rankingCommand(
  market: MarketDataStore,
  at: number,
  thresholds: Thresholds,
  trigger: HotSymbolsCommand['trigger'],
): Promise<HotSymbolsCommand> {
  const settings = CAPABILITIES.hot_symbols.thresholds.parse(thresholds);
  const weights: Weights = {
    volumeJump: settings.volumeJump,
    turnover: settings.turnover,
    openInterest: settings.openInterest,
    funding: settings.funding,
    regime: settings.regime,
  };
  const series = [];
  const derivatives = market.derivatives();
  const from = at - HISTORY_HOURS * HOUR;
  for (const { symbol } of await market.listInstruments()) {
    const candles = [];
    for await (const candle of market.readCandles({
      symbol,
      timeframe: '1h',
      from: at - HISTORY_HOURS * HOUR,
      to: at,
    }))
      candles.push(candle);
    if (candles.length === 0) continue;
    const openInterest = await derivatives.hourlyOpenInterest(symbol, from, at);
    const funding = await derivatives.funding(symbol, from, at);
    series.push({
      symbol,
      candles,
      ...(openInterest.length > 0 ? { openInterest } : {}),
      ...(funding.length > 0 ? { funding } : {}),
    });
  }
  const scores = scoreHotSymbols(series, { at, weights });
  return {
    type: 'RecordHotSymbolsRanking',
    at,
    trigger,
    weights,
    topN: settings.topN,
    minScore: settings.minScore,
    scores,
    recommended: recommend(scores, settings.topN, settings.minScore).map((s) => s.symbol),
  };
}
