/**
 * Rounding of prices and quantities to an instrument's tick and lot sizes, and the one way
 * quantities are summed (so the venue, the order decider and the accounting agree to the last bit).
 */

/** Digits after the decimal point of a step such as `0.001` (3) or `1e-8` (8). */
export function decimalsOf(step: number): number {
  if (!(step > 0) || !Number.isFinite(step)) throw new RangeError(`step must be > 0, got ${step}`);
  const text = String(step);
  const exponent = /e-(\d+)$/.exec(text);
  if (exponent) {
    const mantissa = text.slice(0, exponent.index);
    const dot = mantissa.indexOf('.');
    return Number(exponent[1]) + (dot === -1 ? 0 : mantissa.length - dot - 1);
  }
  const dot = text.indexOf('.');
  return dot === -1 ? 0 : text.length - dot - 1;
}

/** How many whole steps fit in `value`, counting a value within float noise of a step as on it. */
function steps(value: number, step: number, mode: 'floor' | 'ceil' | 'round'): number {
  const n = value / step;
  const nearest = Math.round(n);
  if (Math.abs(n - nearest) <= 1e-9 * Math.max(1, Math.abs(n))) return nearest;
  return mode === 'floor' ? Math.floor(n) : mode === 'ceil' ? Math.ceil(n) : nearest;
}

/**
 * `count` steps as the double nearest the decimal value (no `0.30000000000000004`): an integer
 * numerator over an exact power of ten, which IEEE division rounds correctly. No strings: this is
 * on the backtest's path.
 */
function multiple(count: number, step: number, decimals: number): number {
  if (decimals > 22) return Number((count * step).toFixed(Math.min(decimals, 100)));
  const scale = 10 ** decimals;
  const numerator = count * Math.round(step * scale);
  return Number.isSafeInteger(numerator) ? numerator / scale : count * step;
}

/** The largest multiple of `step` not above `value` (within float noise). */
export const floorToStep = (value: number, step: number, decimals = decimalsOf(step)): number =>
  multiple(steps(value, step, 'floor'), step, decimals);

/** The smallest multiple of `step` not below `value` (within float noise). */
export const ceilToStep = (value: number, step: number, decimals = decimalsOf(step)): number =>
  multiple(steps(value, step, 'ceil'), step, decimals);

/** The nearest multiple of `step`. */
export const roundToStep = (value: number, step: number, decimals = decimalsOf(step)): number =>
  multiple(steps(value, step, 'round'), step, decimals);

/**
 * A sum or difference of quantities cleaned of float noise: 12 significant digits, and anything
 * below 1e-12 is 0. Quantities are lot multiples, so this only removes the noise of binary floats.
 */
export function cleanQuantity(value: number): number {
  const size = Math.abs(value);
  if (size < 1e-12) return 0;
  // 10^(11 − exponent) puts 12 significant digits before the point (as toPrecision(12) would).
  const digits = 11 - Math.floor(Math.log10(size));
  if (digits <= 0 || digits > 22) return Number(value.toPrecision(12));
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
