import { errorFunction, probit, sampleKurtosis, sampleSkewness, variance } from 'simple-statistics';

/**
 * Overfitting statistics of a search: the deflated Sharpe ratio (Bailey & López de Prado, 2014)
 * and the probability of backtest overfitting by combinatorially symmetric cross-validation
 * (Bailey, Borwein, López de Prado & Zhu, 2015). Sharpe ratios here are per period (daily), not
 * annualized, as the papers' formulas want them.
 */

const EULER_MASCHERONI = 0.5772156649015329;

/** Φ(x), the standard normal CDF (erf to about 1e-7). */
export const normalCdf = (x: number): number => 0.5 * (1 + errorFunction(x / Math.SQRT2));

/**
 * Φ⁻¹(p). simple-statistics' probit is a closed-form approximation good to about 3 decimals;
 * three Newton steps on its erf-based CDF bring it to the CDF's own accuracy.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  let x = probit(p);
  for (let i = 0; i < 3; i++) {
    const density = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    x -= (normalCdf(x) - p) / density;
  }
  return x;
}

/** Per-period Sharpe ratio: mean / sample standard deviation; 0 without variation. */
export function periodSharpe(returns: ArrayLike<number>): number {
  const n = returns.length;
  if (n < 2) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += returns[i] ?? 0;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += ((returns[i] ?? 0) - mean) ** 2;
  const std = Math.sqrt(squares / (n - 1));
  return std > 0 ? mean / std : 0;
}

/**
 * E[max SR] of N independent trials whose Sharpe ratios have variance V, under the null of no
 * skill: √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))), γ the Euler–Mascheroni constant.
 */
export function expectedMaxSharpe(trials: number, sharpeVariance: number): number {
  if (trials <= 1) return 0;
  return (
    Math.sqrt(sharpeVariance) *
    ((1 - EULER_MASCHERONI) * normalQuantile(1 - 1 / trials) +
      EULER_MASCHERONI * normalQuantile(1 - 1 / (trials * Math.E)))
  );
}

/**
 * Probabilistic Sharpe ratio: P(true SR > benchmark) given the estimate over T returns with
 * skewness γ3 and (raw, not excess) kurtosis γ4:
 * Φ((SR − SR*) √(T − 1) / √(1 − γ3 SR + (γ4 − 1)/4 SR²)).
 */
export function probabilisticSharpe(
  sharpe: number,
  benchmark: number,
  observations: number,
  skewness: number,
  kurtosis: number,
): number {
  const denominator = 1 - skewness * sharpe + ((kurtosis - 1) / 4) * sharpe * sharpe;
  if (!(denominator > 0) || observations < 2) return 0;
  return normalCdf(((sharpe - benchmark) * Math.sqrt(observations - 1)) / Math.sqrt(denominator));
}

export type DeflatedSharpe = {
  /** P(the selected strategy's true Sharpe ratio > the best one expected from luck). */
  dsr: number;
  /** Per-period Sharpe ratio of the selected strategy. */
  sharpe: number;
  /** E[max SR] of the trials under no skill (the benchmark). */
  expectedMax: number;
  trials: number;
  observations: number;
  skewness: number;
  kurtosis: number;
};

/**
 * The deflated Sharpe ratio of the selected strategy's returns, the selection having been made
 * among trials whose per-period Sharpe ratios are `trialSharpes` (its own included).
 */
export function deflatedSharpe(
  selected: ArrayLike<number>,
  trialSharpes: readonly number[],
): DeflatedSharpe | null {
  const returns = Array.from(selected);
  if (returns.length < 4 || trialSharpes.length === 0) return null;
  const sharpe = periodSharpe(returns);
  const spread = variance(returns);
  const skewness = spread > 0 ? sampleSkewness(returns) : 0;
  const kurtosis = spread > 0 ? sampleKurtosis(returns) + 3 : 3;
  const trials = trialSharpes.length;
  const expectedMax = trials > 1 ? expectedMaxSharpe(trials, sampleVariance(trialSharpes)) : 0;
  return {
    dsr: probabilisticSharpe(sharpe, expectedMax, returns.length, skewness, kurtosis),
    sharpe,
    expectedMax,
    trials,
    observations: returns.length,
    skewness,
    kurtosis,
  };
}

const sampleVariance = (values: readonly number[]): number => {
  const n = values.length;
  if (n < 2) return 0;
  return (variance(values) * n) / (n - 1);
};

export type Pbo = {
  /** Share of the C(S, S/2) splits whose in-sample best ranks in the lower half out-of-sample. */
  pbo: number;
  /** S: the blocks the returns were cut into; C(S, S/2) splits were tried. */
  blocks: number;
  splits: number;
  /** Mean logit λ over the splits (negative: the in-sample winner tends to lose out-of-sample). */
  meanLogit: number;
};

/** Per-trial block sums of returns and of squared returns. */
function blockMoments(columns: readonly ArrayLike<number>[], blocks: number, skip: number) {
  const length = Math.floor(((columns[0]?.length ?? 0) - skip) / blocks);
  return columns.map((column) => {
    const sums = new Float64Array(blocks);
    const squares = new Float64Array(blocks);
    for (let b = 0; b < blocks; b++)
      for (let t = skip + b * length; t < skip + (b + 1) * length; t++) {
        const r = column[t] ?? 0;
        sums[b] = (sums[b] ?? 0) + r;
        squares[b] = (squares[b] ?? 0) + r * r;
      }
    return { sums, squares, length };
  });
}

/**
 * PBO by CSCV over a T × N matrix given as N columns of T returns each (one column per trial).
 * T is cut into S blocks of equal length (the earliest T mod S returns are left out); every way
 * of picking S/2 blocks as in-sample (the rest out-of-sample) selects the in-sample best by
 * Sharpe ratio and ranks it out-of-sample: ω = rank / (N + 1) (ties share their mean rank),
 * λ = ln(ω / (1 − ω)); PBO = the share of splits with λ ≤ 0. Null with fewer than 2 trials or too
 * few returns for S blocks of 2.
 */
export function probabilityOfOverfitting(
  columns: readonly ArrayLike<number>[],
  blocks = 16,
): Pbo | null {
  const n = columns.length;
  const t = columns[0]?.length ?? 0;
  if (n < 2 || blocks < 2 || blocks % 2 !== 0 || blocks > 20 || t < 2 * blocks) return null;
  const moments = blockMoments(columns, blocks, t % blocks);
  const half = blocks / 2;
  const sharpeOf = (m: (typeof moments)[number], mask: number, inside: boolean): number => {
    let sum = 0;
    let squares = 0;
    let count = 0;
    for (let b = 0; b < blocks; b++) {
      if ((((mask >> b) & 1) === 1) !== inside) continue;
      sum += m.sums[b] ?? 0;
      squares += m.squares[b] ?? 0;
      count += m.length;
    }
    const mean = sum / count;
    const varianceOf = (squares - count * mean * mean) / (count - 1);
    return varianceOf > 1e-24 ? mean / Math.sqrt(varianceOf) : 0;
  };
  let splits = 0;
  let overfit = 0;
  let logits = 0;
  const outside = new Float64Array(n);
  for (let mask = 0; mask < 1 << blocks; mask++) {
    if (popcount(mask) !== half) continue;
    let best = 0;
    let bestInside = -Infinity;
    for (let i = 0; i < n; i++) {
      const m = moments[i] as (typeof moments)[number];
      const inside = sharpeOf(m, mask, true);
      if (inside > bestInside) {
        bestInside = inside;
        best = i;
      }
      outside[i] = sharpeOf(m, mask, false);
    }
    const chosen = outside[best] ?? 0;
    let below = 0;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      const value = outside[i] ?? 0;
      if (value < chosen) below++;
      else if (value === chosen) ties++;
    }
    const rank = below + (ties + 1) / 2;
    const omega = rank / (n + 1);
    const logit = Math.log(omega / (1 - omega));
    splits++;
    logits += logit;
    if (logit <= 0) overfit++;
  }
  return { pbo: overfit / splits, blocks, splits, meanLogit: logits / splits };
}

function popcount(value: number): number {
  let v = value;
  let count = 0;
  while (v !== 0) {
    v &= v - 1;
    count++;
  }
  return count;
}
