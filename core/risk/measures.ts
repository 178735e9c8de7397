/**
 * The two equity measures the breakers, the risk API and the business metrics report (docs/risk.md):
 * one definition, used by all three (ADR 025).
 *
 * - Daily loss = max(0, (opening − equity) / opening), where the opening equity is the last equity
 *   before the UTC day (the day's first on a portfolio's first day), or the equity at an approved
 *   reset made that day.
 * - Drawdown = max(0, (high-water mark − equity) / high-water mark), where the mark is the highest
 *   equity since the last approved reset (since the start without one).
 *
 * The engine follows both measures bar by bar (core/risk/breakers.ts); the read side resolves the
 * opening equity and the mark from the valuations (projections/risk-queries.ts); each then takes the
 * ratio here. Null when a figure is missing or the reference is not positive.
 */

/** The loss of `equity` from a positive `reference`, as a share of it; 0 on a gain. */
export function lossFrom(reference: number | null, equity: number | null): number | null {
  if (reference === null || equity === null || !(reference > 0)) return null;
  return Math.max(0, (reference - equity) / reference);
}

/** Daily loss: the loss from the day's opening equity. */
export const dailyLossOf = (openingEquity: number | null, equity: number | null): number | null =>
  lossFrom(openingEquity, equity);

/** Drawdown: the loss from the high-water mark. */
export const drawdownOf = (highWaterMark: number | null, equity: number | null): number | null =>
  lossFrom(highWaterMark, equity);

export interface EquityMeasures {
  equity: number | null;
  openingEquity: number | null;
  highWaterMark: number | null;
}

/** Both measures of one scope. */
export function riskMeasures(m: EquityMeasures): {
  dailyLoss: number | null;
  drawdown: number | null;
} {
  return {
    dailyLoss: dailyLossOf(m.openingEquity, m.equity),
    drawdown: drawdownOf(m.highWaterMark, m.equity),
  };
}
