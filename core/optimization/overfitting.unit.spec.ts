import { describe, expect, it } from 'vitest';
import { Random } from '../market/random.js';
import {
  deflatedSharpe,
  expectedMaxSharpe,
  normalQuantile,
  probabilisticSharpe,
  probabilityOfOverfitting,
} from './overfitting.js';

describe('deflated Sharpe ratio (Bailey & López de Prado 2014)', () => {
  it('has an accurate normal quantile (scipy: 1.959964, 3.090232)', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(1 - 1 / 1000)).toBeCloseTo(3.090232, 5);
  });

  it("reproduces the paper's example: N = 100, V = ½/250, SR = 2.5/√250, T = 1250, γ3 = −3, γ4 = 10", () => {
    const expectedMax = expectedMaxSharpe(100, 0.5 / 250);
    expect(expectedMax).toBeCloseTo(0.1132, 4);
    expect(probabilisticSharpe(2.5 / Math.sqrt(250), expectedMax, 1250, -3, 10)).toBeCloseTo(
      0.9004,
      3,
    );
  });

  it('deflates a small sample as scipy computes it (values worked with scipy.stats)', () => {
    const returns = [0.01, -0.02, 0.015, 0.003, -0.004, 0.02, 0.007, -0.011, 0.012, 0.005];
    const own = 0.3018690391479308;
    const result = deflatedSharpe(returns, [own, 0.1, -0.05, 0.2, 0]);
    expect(result?.sharpe).toBeCloseTo(own, 10);
    expect(result?.skewness).toBeCloseTo(-0.777775, 5);
    expect(result?.kurtosis).toBeCloseTo(3.099707, 5);
    expect(result?.expectedMax).toBeCloseTo(0.171494, 5);
    expect(result?.dsr).toBeCloseTo(0.635086, 4);
  });

  it('with one trial there is nothing to deflate: DSR = PSR against 0', () => {
    const returns = [0.01, -0.02, 0.015, 0.003, -0.004, 0.02];
    const result = deflatedSharpe(returns, [0.3]);
    expect(result?.expectedMax).toBe(0);
    expect(result?.dsr).toBeGreaterThan(0.5);
  });
});

describe('probability of backtest overfitting by CSCV', () => {
  it('is 1 when each half picks the strategy that loses the other half (worked by hand, S = 2)', () => {
    // Block 0: A has SR √2 > B's 0; block 1: B has SR 3/√2 > A's 0. Each split picks the
    // in-sample winner, which ranks 1 of 2 out-of-sample: ω = 1/3, λ < 0.
    const a = [0.01, 0.03, -0.01, 0.01];
    const b = [-0.01, 0.01, 0.02, 0.04];
    expect(probabilityOfOverfitting([a, b], 2)).toMatchObject({ pbo: 1, splits: 2 });
  });

  it('is 0 when the same strategy wins in every half', () => {
    const a = [0.01, 0.03, 0.02, 0.04];
    const b = [-0.01, 0.01, -0.02, 0.0];
    expect(probabilityOfOverfitting([a, b], 2)).toMatchObject({ pbo: 0, splits: 2 });
  });

  it('is near ½ for N = 100 strategies of pure noise (T = 1000, S = 8, as the paper tests)', () => {
    const random = new Random('pbo-noise');
    const columns = Array.from({ length: 100 }, () =>
      Float64Array.from({ length: 1000 }, () => random.normal() * 0.01),
    );
    const result = probabilityOfOverfitting(columns, 8);
    expect(result?.splits).toBe(70);
    expect(result?.pbo).toBeGreaterThan(0.2);
    expect(result?.pbo).toBeLessThan(0.8);
  });

  it('is near 0 when strategies differ by a real edge much larger than the noise', () => {
    const random = new Random('pbo-edge');
    const columns = Array.from({ length: 20 }, (_, i) =>
      Float64Array.from({ length: 1000 }, () => 0.001 * i + random.normal() * 0.002),
    );
    expect(probabilityOfOverfitting(columns, 16)?.pbo).toBe(0);
  });

  it('needs at least two trials and an even S', () => {
    expect(probabilityOfOverfitting([[0.1, 0.2, 0.3, 0.4]], 2)).toBeNull();
    expect(
      probabilityOfOverfitting(
        [
          [0.1, 0.2, 0.3],
          [0.1, 0.2, 0.3],
        ],
        3,
      ),
    ).toBeNull();
  });
});
