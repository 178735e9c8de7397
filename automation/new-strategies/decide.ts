import type { ParameterSpace } from '../../core/optimization/space.js';
import { candidateKey, type NewStrategiesState } from '../../core/strategies/new-strategies.js';

/**
 * Capability 8, the decisions (pure; given/when/then in decide.unit.spec.ts).
 *  - Which symbols it may use: those on the tradable list at the tick's instant (a risk officer
 *    approved them, four eyes, and their `tradableUntil` is later), best score first; raw rankings,
 *    pending, rejected and expired proposals never.
 *  - Which templates to try this week: every template × approved hot symbol not tried yet, in
 *    the symbols' order (best first), at most what the caps leave (`perWeek` less this week's
 *    creations, `total` less all creations).
 *  - Whether a completed optimization creates a strategy: it was one of these candidates, its
 *    result passed the walk-forward gate, and the caps leave room (the ledger enforces them too).
 */

/** The existing kinds with the parameter ranges automation searches (within the kinds' bounds). */
export const TEMPLATES: Readonly<Record<string, ParameterSpace>> = {
  sma_crossover: {
    fastPeriod: { type: 'int', low: 5, high: 40, step: 5 },
    slowPeriod: { type: 'int', low: 50, high: 200, step: 25 },
  },
  rsi_mean_reversion: {
    period: { type: 'int', low: 7, high: 28, step: 7 },
    oversold: { type: 'int', low: 20, high: 35, step: 5 },
    overbought: { type: 'int', low: 65, high: 80, step: 5 },
  },
  donchian_breakout: {
    entryPeriod: { type: 'int', low: 20, high: 100, step: 20 },
    exitPeriod: { type: 'int', low: 5, high: 20, step: 5 },
  },
};

export type Caps = { perWeek: number; total: number };

/** One symbol's row of the tradable list (projections/hot-symbol-list.ts). */
export type ListedSymbol = {
  symbol: string;
  /** Approved until this instant (epoch ms); null while never approved (pending, rejected). */
  tradableUntil: number | null;
  /** Its score in the ranking it was proposed from (null: not scored). */
  score: number | null;
};

/**
 * The symbols capability 8 may try at `now`: approved and not expired (`now < tradableUntil`, as
 * the list's `tradable` status), best score first, ties and unscored ones by name.
 */
export function approvedSymbols(list: readonly ListedSymbol[], now: number): string[] {
  return list
    .filter((row) => row.tradableUntil !== null && now < row.tradableUntil)
    .sort(
      (a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.symbol.localeCompare(b.symbol),
    )
    .map((row) => row.symbol);
}

/** The Monday (UTC) of `now`'s week, `YYYY-MM-DD`: the slot and the cap's week. */
export function weekOf(now: Date): string {
  const day = (now.getUTCDay() + 6) % 7;
  const monday = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - day);
  return new Date(monday).toISOString().slice(0, 10);
}

/** What the caps leave this week. */
export function room(ledger: NewStrategiesState, caps: Caps, week: string): number {
  const thisWeek = ledger.created.filter((c) => c.week === week).length;
  return Math.max(0, Math.min(caps.perWeek - thisWeek, caps.total - ledger.created.length));
}

export function candidates(input: {
  symbols: readonly string[];
  templates: readonly string[];
  ledger: NewStrategiesState;
  caps: Caps;
  week: string;
}): { template: string; symbol: string }[] {
  const { symbols, templates, ledger, caps, week } = input;
  const left = room(ledger, caps, week);
  const out: { template: string; symbol: string }[] = [];
  for (const symbol of symbols)
    for (const template of templates) {
      if (out.length >= left) return out;
      if (ledger.tried[candidateKey(template, symbol)] === undefined)
        out.push({ template, symbol });
    }
  return out;
}

/** Why a completed candidate optimization creates nothing, or null when it creates a strategy. */
export function creationRefusal(input: {
  passed: boolean;
  reasons: readonly string[];
  hasParameters: boolean;
}): string | null {
  if (!input.passed) return `the walk-forward gate refused it: ${input.reasons.join('; ')}`;
  if (!input.hasParameters) return 'the optimization found no parameters';
  return null;
}
