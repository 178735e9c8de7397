import { CAPABILITIES, type Thresholds } from '../capabilities/capabilities.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { reason } from '../trading/orders.js';
import type { Statistics } from '../trading/statistics.js';
import type { DeflatedSharpe, Pbo } from './overfitting.js';

/**
 * The adoption gate: what an optimization's result must show before its parameters may be
 * proposed for a strategy. Its thresholds are those of capability 2 (`adopt_parameters`) in the
 * automation policy, which risk officers set (PUT /api/v1/automation/adopt_parameters): one source.
 */
export interface AdoptionGate extends JsonObject {
  /** Annualized Sharpe ratio of the stitched out-of-sample equity. */
  minOutOfSampleSharpe: number;
  minDeflatedSharpe: number;
  maxPbo: number;
  /** Closed trades out-of-sample. */
  minTrades: number;
}

/** The gate of the automation policy's `adopt_parameters` thresholds (defaults fill any gap). */
export function gateOf(thresholds: Thresholds): AdoptionGate {
  const t = CAPABILITIES.adopt_parameters.thresholds.parse(thresholds);
  return {
    minOutOfSampleSharpe: t.minOutOfSampleSharpe,
    minDeflatedSharpe: t.minDeflatedSharpe,
    maxPbo: t.maxOverfitProbability,
    minTrades: t.minTrades,
  };
}

/** The defaults of the user's design: OOS Sharpe ≥ 0.5, DSR ≥ 0.95, PBO ≤ 0.5, 30 trades. */
export const DEFAULT_GATE: AdoptionGate = gateOf({});

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
