import { limitsIn, strictestState, type RiskSnapshot } from './checks.js';
import type { RiskScope, TradingState } from './common.js';
import type { RiskLimits } from './limits.js';
import { riskMeasures, type EquityMeasures } from './measures.js';

/** The portfolio limits whose utilisation the risk overview reports. */
export const UTILISED = [
  'maxPositionNotional',
  'maxPositionShareOfEquity',
  'maxGrossExposure',
  'maxLeverage',
  'dailyLossLimit',
  'maxDrawdown',
] as const;

export interface PortfolioExposure {
  state: TradingState;
  exposure: {
    grossExposure: number;
    netExposure: number;
    leverage: number | null;
    largestPosition: { symbol: string; notional: number; shareOfEquity: number | null } | null;
    openingEquity: number | null;
    dailyLoss: number | null;
    highWaterMark: number | null;
    drawdown: number | null;
  };
  limits: RiskLimits;
  utilisation: {
    limit: (typeof UTILISED)[number];
    value: number | null;
    max: number | null;
    utilisation: number | null;
  }[];
}

/**
 * Exposure, drawdown, daily loss and the utilisation of each limit of one portfolio, from its open
 * books (signed quantity × mark) and its equity measures (core/risk/measures.ts).
 */
export function portfolioExposure(
  portfolioId: string,
  measures: EquityMeasures,
  books: readonly { symbol: string; quantity: number; mark: number }[],
  snapshot: RiskSnapshot,
  now: number,
): PortfolioExposure {
  const scope: RiskScope = { type: 'portfolio', id: portfolioId };
  const limits = limitsIn(snapshot, scope);
  const gross = books.reduce((sum, b) => sum + Math.abs(b.quantity) * b.mark, 0);
  const net = books.reduce((sum, b) => sum + b.quantity * b.mark, 0);
  const bySymbol = new Map<string, number>();
  for (const b of books)
    bySymbol.set(b.symbol, (bySymbol.get(b.symbol) ?? 0) + b.quantity * b.mark);
  let largest: { symbol: string; notional: number } | null = null;
  for (const [name, signed] of bySymbol)
    if (!largest || Math.abs(signed) > largest.notional)
      largest = { symbol: name, notional: Math.abs(signed) };
  const { equity } = measures;
  const share = (value: number): number | null =>
    equity === null ? null : equity > 0 ? value / equity : Infinity;
  const { dailyLoss, drawdown } = riskMeasures(measures);
  const leverage = share(gross);
  const largestShare = largest ? share(largest.notional) : null;
  const values: Record<(typeof UTILISED)[number], number | null> = {
    maxPositionNotional: largest?.notional ?? 0,
    maxPositionShareOfEquity: largest ? largestShare : 0,
    maxGrossExposure: gross,
    maxLeverage: leverage,
    dailyLossLimit: dailyLoss,
    maxDrawdown: drawdown,
  };
  return {
    state: strictestState(snapshot, [scope], now).state,
    exposure: {
      grossExposure: gross,
      netExposure: net,
      leverage,
      largestPosition: largest ? { ...largest, shareOfEquity: largestShare } : null,
      openingEquity: measures.openingEquity,
      dailyLoss,
      highWaterMark: measures.highWaterMark,
      drawdown,
    },
    limits,
    utilisation: UTILISED.map((name) => {
      const max = limits[name];
      const value = values[name];
      return {
        limit: name,
        value,
        max,
        utilisation: max !== null && value !== null && max > 0 ? value / max : null,
      };
    }),
  };
}
