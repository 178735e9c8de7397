import { workerData } from 'piscina';
import type { JsonObject } from '../../core/eventstore/event-store.js';
import { runTrial, unpackCandles, type TrialSetup } from '../../core/optimization/trial.js';
import type { TrialRun } from '../../core/optimization/walk-forward.js';

/**
 * A worker thread of the trial pool: the candles arrive once, as a SharedArrayBuffer in the pool's
 * workerData, and are unpacked once per thread; each task is one trial (a parameter set).
 */
interface PoolData {
  setup: TrialSetup;
  candles: SharedArrayBuffer;
}

const data = workerData as PoolData;
const candles = unpackCandles(data.candles, data.setup.symbol, data.setup.timeframe);

export default function trial(parameters: JsonObject): TrialRun {
  return runTrial(data.setup, parameters, candles);
}
