import type { JsonObject } from '../eventstore/event-store.js';
import { reason } from '../trading/orders.js';
import type { Statistics } from '../trading/statistics.js';
import type { DeflatedSharpe, Pbo } from './overfitting.js';

/**
 * The adoption gate: what an optimization's result must show before its parameters may be
 * proposed for a strategy. Risk officers set it (core/optimization/policy.ts); these are the
 * defaults of the user's design.
 */
export interface AdoptionGate extends JsonObject {
  /** Annualized Sharpe ratio of the stitched out-of-sample equity. */
  minOutOfSampleSharpe: number;
  minDeflatedSharpe: number;
  maxPbo: number;
  /** Closed trades out-of-sample. */
  minTrades: number;
}

export const DEFAULT_GATE: AdoptionGate = {
  minOutOfSampleSharpe: 0.5,
  minDeflatedSharpe: 0.95,
  maxPbo: 0.5,
  minTrades: 30,
};

export interface Verdict extends JsonObject {
  passed: boolean;
  /** One coded reason per check that failed (`CODE: key=value, …`); empty when it passed. */
  reasons: string[];
  gate: AdoptionGate;
}

export interface GateInput {
  bestParameters: JsonObject | null;
  outOfSample: Statistics | null;
  deflatedSharpe: DeflatedSharpe | null;
  pbo: Pbo | null;
}

const fixed = (value: number): number => Math.round(value * 10_000) / 10_000;

export function verdictOf(result: GateInput, gate: AdoptionGate): Verdict {
  const reasons: string[] = [];
  if (result.bestParameters === null) reasons.push(reason('NO_SCORED_TRIAL'));
  const sharpe = result.outOfSample?.sharpe ?? null;
  if (sharpe === null || sharpe < gate.minOutOfSampleSharpe)
    reasons.push(
      reason('OOS_SHARPE_BELOW_GATE', {
        sharpe: sharpe === null ? 'none' : fixed(sharpe),
        min: gate.minOutOfSampleSharpe,
      }),
    );
  const dsr = result.deflatedSharpe?.dsr ?? null;
  if (dsr === null || dsr < gate.minDeflatedSharpe)
    reasons.push(
      reason('DSR_BELOW_GATE', {
        dsr: dsr === null ? 'none' : fixed(dsr),
        min: gate.minDeflatedSharpe,
      }),
    );
  const pbo = result.pbo?.pbo ?? null;
  if (pbo === null || pbo > gate.maxPbo)
    reasons.push(
      reason('PBO_ABOVE_GATE', { pbo: pbo === null ? 'none' : fixed(pbo), max: gate.maxPbo }),
    );
  const trades = result.outOfSample?.trades ?? 0;
  if (trades < gate.minTrades)
    reasons.push(reason('TOO_FEW_TRADES', { trades, min: gate.minTrades }));
  return { passed: reasons.length === 0, reasons, gate };
}
