import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import {
  DEFAULT_INSTRUMENTS,
  DEFAULT_PROFILES,
  aggregateCandles,
  generateCandles,
  stepRounder,
} from './synthetic.js';
import type { Candle, Instrument } from './types.js';

const DAY = 86_400_000;
const FROM = Date.UTC(2025, 0, 1);

const instrument = (symbol: string): Instrument => {
  const found = DEFAULT_INSTRUMENTS.find((i) => i.symbol === symbol);
  if (!found) throw new Error(`no default instrument ${symbol}`);
  return found;
};

/** Candles of each symbol, in time order. */
const bySymbol = (candles: Iterable<Candle>): Map<string, Candle[]> => {
  const map = new Map<string, Candle[]>();
  for (const candle of candles) {
    let list = map.get(candle.symbol);
    if (!list) map.set(candle.symbol, (list = []));
    list.push(candle);
  }
  return map;
};

const logReturns = (candles: readonly Candle[]): number[] =>
  candles.map((c) => Math.log(c.close / c.open));

const correlation = (a: readonly number[], b: readonly number[]): number => {
  const n = Math.min(a.length, b.length);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i]! - ma;
    const y = b[i]! - mb;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
};

const autocorrelation = (series: readonly number[], lag: number): number =>
  correlation(series.slice(lag), series.slice(0, -lag));

/** A bar that moves more than 2.5 % away from its open and is back within 1.5 % ten bars on. */
const flashMoves = (candles: readonly Candle[]): number[] => {
  const found: number[] = [];
  for (let i = 0; i + 10 < candles.length; i++) {
    const bar = candles[i]!;
    const away = Math.max((bar.open - bar.low) / bar.open, (bar.high - bar.open) / bar.open);
    if (away > 0.025 && Math.abs(candles[i + 10]!.close / bar.open - 1) < 0.015) {
      found.push(bar.openTime);
      i += 10;
    }
  }
  return found;
};

describe('synthetic market: determinism', () => {
  const options = {
    seed: 42,
    from: FROM,
    to: FROM + DAY,
    instruments: ['BTCUSDT', 'ETHUSDT', 'DOGEUSDT'].map(instrument),
  };

  it('gives identical candles for the same seed', () => {
    const first = [...generateCandles(options)];
    const second = [...generateCandles(options)];
    expect(first).toHaveLength(3 * 1440);
    expect(second).toEqual(first);
  });

  it('gives different candles for another seed', () => {
    const first = [...generateCandles(options)];
    const other = [...generateCandles({ ...options, seed: 43 })];
    expect(other).toHaveLength(first.length);
    const same = other.filter((c, i) => c.close === first[i]!.close).length;
    expect(same).toBeLessThan(first.length / 10);
  });

  it('gives a symbol the same candles whichever other symbols are generated beside it', () => {
    const alone = [...generateCandles({ ...options, instruments: [instrument('ETHUSDT')] })];
    const among = bySymbol(generateCandles({ ...options, instruments: DEFAULT_INSTRUMENTS }));
    expect(among.get('ETHUSDT')).toEqual(alone);
  });

  it('interleaves symbols by time, in the order given, from `from` up to but excluding `to`', () => {
    const candles = [...generateCandles({ ...options, to: FROM + 3 * 60_000 })];
    expect(candles.map((c) => [c.symbol, c.openTime - FROM])).toEqual([
      ['BTCUSDT', 0],
      ['ETHUSDT', 0],
      ['DOGEUSDT', 0],
      ['BTCUSDT', 60_000],
      ['ETHUSDT', 60_000],
      ['DOGEUSDT', 60_000],
      ['BTCUSDT', 120_000],
      ['ETHUSDT', 120_000],
      ['DOGEUSDT', 120_000],
    ]);
    expect(candles[0]!.open).toBe(DEFAULT_PROFILES['BTCUSDT']!.startPrice);
  });

  it('refuses options it cannot honour', () => {
    const bad = [
      { ...options, seed: 1.5 },
      { ...options, from: FROM + 1 },
      { ...options, to: FROM - 60_000 },
      { ...options, instruments: [] },
      { ...options, instruments: [instrument('BTCUSDT'), instrument('BTCUSDT')] },
      { ...options, timeframe: '1h' as const, from: FROM + 60_000 },
      { ...options, profiles: { BTCUSDT: { startPrice: -1 } } },
    ];
    for (const options of bad) {
      expect(() => generateCandles(options)).toThrow(ValidationError);
    }
  });
});

describe('synthetic market: statistics of 10 days of the default universe', () => {
  const candles = [...generateCandles({ seed: 7, from: FROM, to: FROM + 10 * DAY })];
  const symbols = bySymbol(candles);
  const btc = logReturns(symbols.get('BTCUSDT')!);

  it('has at least ten USDT pairs with sensible instrument rules', () => {
    expect(DEFAULT_INSTRUMENTS.length).toBeGreaterThanOrEqual(10);
    expect(symbols.size).toBe(DEFAULT_INSTRUMENTS.length);
    for (const i of DEFAULT_INSTRUMENTS) {
      expect(i.symbol).toBe(`${i.base}${i.quote}`);
      expect(i.quote).toBe('USDT');
      expect(i.tickSize).toBeGreaterThan(0);
      expect(i.lotSize).toBeGreaterThan(0);
      expect(i.minNotional).toBeGreaterThan(0);
      // A tick is a small fraction of the price.
      expect(i.tickSize / DEFAULT_PROFILES[i.symbol]!.startPrice).toBeLessThan(0.001);
    }
  });

  it('keeps every bar consistent: low ≤ open, close ≤ high; on the tick and lot grid; continuous', () => {
    const problems: string[] = [];
    for (const [symbol, list] of symbols) {
      const { tickSize, lotSize } = instrument(symbol);
      const onGrid = (value: number, step: number): boolean =>
        Math.abs(value / step - Math.round(value / step)) < 1e-6;
      list.forEach((c, i) => {
        const where = `${symbol} #${i}`;
        if (!(c.low <= Math.min(c.open, c.close))) problems.push(`${where}: low above open/close`);
        if (!(c.high >= Math.max(c.open, c.close)))
          problems.push(`${where}: high below open/close`);
        if (!(c.low >= tickSize)) problems.push(`${where}: low ${c.low} below one tick`);
        for (const price of [c.open, c.high, c.low, c.close])
          if (!onGrid(price, tickSize)) problems.push(`${where}: ${price} off the tick`);
        if (!(c.volume >= lotSize) || !onGrid(c.volume, lotSize))
          problems.push(`${where}: volume ${c.volume}`);
        if (c.timeframe !== '1m' || c.openTime !== FROM + i * 60_000)
          problems.push(`${where}: open time ${c.openTime}`);
        if (i > 0 && c.open !== list[i - 1]!.close) problems.push(`${where}: open ≠ last close`);
      });
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(candles).toHaveLength(DEFAULT_INSTRUMENTS.length * 10 * 1440);
  });

  it('correlates every alt with BTC (1m log returns, correlation > 0.3)', () => {
    const correlations = Object.fromEntries(
      [...symbols]
        .filter(([symbol]) => symbol !== 'BTCUSDT')
        .map(([symbol, list]) => [symbol, correlation(logReturns(list), btc)]),
    );
    for (const [symbol, value] of Object.entries(correlations))
      expect(value, `${symbol} vs BTC`).toBeGreaterThan(0.3);
  });

  it('clusters volatility: absolute returns are clearly autocorrelated, unlike shuffled ones', () => {
    for (const symbol of ['BTCUSDT', 'SOLUSDT', 'DOGEUSDT']) {
      const absolute = logReturns(symbols.get(symbol)!).map(Math.abs);
      expect(autocorrelation(absolute, 1), symbol).toBeGreaterThan(0.1);
      expect(autocorrelation(absolute, 30), symbol).toBeGreaterThan(0.05);
      // The same values in a scrambled order (a fixed permutation): no memory left.
      const scrambled = absolute.map((_, i) => absolute[(i * 7919) % absolute.length]!);
      expect(Math.abs(autocorrelation(scrambled, 1)), symbol).toBeLessThan(0.03);
    }
  });

  it('trades more when prices move more: volume correlates with |return|', () => {
    for (const [symbol, list] of symbols) {
      const absolute = logReturns(list).map(Math.abs);
      expect(
        correlation(
          list.map((c) => c.volume * c.close),
          absolute,
        ),
        symbol,
      ).toBeGreaterThan(0.3);
    }
  });
});

describe('synthetic market: flash moves', () => {
  it('produces sharp moves that mostly revert within a few bars in a long run', () => {
    const found = bySymbol(
      generateCandles({
        seed: 3,
        from: FROM,
        to: FROM + 60 * DAY,
        instruments: ['ETHUSDT', 'SOLUSDT', 'XRPUSDT'].map(instrument),
      }),
    );
    const flashes = [...found.values()].flatMap((list) => flashMoves(list));
    expect(flashes.length).toBeGreaterThanOrEqual(1);
    // Rare: a handful per symbol and month, not a feature of ordinary bars.
    expect(flashes.length).toBeLessThan(3 * 20);
  });
});

describe('aggregateCandles', () => {
  const minutes = [
    ...generateCandles({
      seed: 11,
      from: FROM,
      to: FROM + 2 * DAY,
      instruments: ['BTCUSDT', 'ADAUSDT'].map(instrument),
    }),
  ];

  it('rolls 1m into UTC-aligned bars: first open, highest high, lowest low, last close, summed volume', () => {
    const btc = minutes.filter((c) => c.symbol === 'BTCUSDT');
    for (const timeframe of ['5m', '15m', '1h', '4h', '1d'] as const) {
      const bars = [...aggregateCandles(btc, timeframe)];
      const size = { '5m': 5, '15m': 15, '1h': 60, '4h': 240, '1d': 1440 }[timeframe];
      expect(bars).toHaveLength((2 * 1440) / size);
      bars.forEach((bar, k) => {
        const part = btc.slice(k * size, (k + 1) * size);
        expect(bar).toEqual({
          symbol: 'BTCUSDT',
          timeframe,
          openTime: FROM + k * size * 60_000,
          open: part[0]!.open,
          high: Math.max(...part.map((c) => c.high)),
          low: Math.min(...part.map((c) => c.low)),
          close: part.at(-1)!.close,
          volume: expect.closeTo(
            part.reduce((sum, c) => sum + c.volume, 0),
            6,
          ) as number,
        });
      });
    }
  });

  it('keeps interleaved symbols apart, and matches generateCandles with a longer timeframe', () => {
    const hourly = [...aggregateCandles(minutes, '1h')];
    expect(hourly).toHaveLength(2 * 48);
    expect(hourly.slice(0, 4).map((c) => [c.symbol, c.openTime - FROM])).toEqual([
      ['BTCUSDT', 0],
      ['ADAUSDT', 0],
      ['BTCUSDT', 3_600_000],
      ['ADAUSDT', 3_600_000],
    ]);
    const direct = [
      ...generateCandles({
        seed: 11,
        from: FROM,
        to: FROM + 2 * DAY,
        instruments: ['BTCUSDT', 'ADAUSDT'].map(instrument),
        timeframe: '1h',
      }),
    ];
    expect(direct).toEqual(hourly);
  });

  it('sums volumes without binary noise', () => {
    const bar = (minute: number, volume: number): Candle => ({
      symbol: 'X',
      timeframe: '1m',
      openTime: FROM + minute * 60_000,
      open: 1,
      high: 1,
      low: 1,
      close: 1,
      volume,
    });
    const [sum] = [...aggregateCandles([bar(0, 0.1), bar(1, 0.2)], '5m')];
    expect(sum?.volume).toBe(0.3);
  });

  it('drops incomplete buckets when asked, keeps them otherwise', () => {
    const offset = minutes.filter((c) => c.symbol === 'BTCUSDT').slice(30, 30 + 120); // 00:30 – 02:30
    expect([...aggregateCandles(offset, '1h')].map((c) => c.openTime - FROM)).toEqual([
      0, 3_600_000, 7_200_000,
    ]);
    expect(
      [...aggregateCandles(offset, '1h', { complete: true })].map((c) => c.openTime - FROM),
    ).toEqual([3_600_000]);
  });

  it('refuses candles out of order, of a longer timeframe, or of mixed timeframes', () => {
    const btc = minutes.filter((c) => c.symbol === 'BTCUSDT');
    expect(() => [...aggregateCandles([btc[1]!, btc[0]!], '1h')]).toThrow(/not after/);
    const hour = [...aggregateCandles(btc.slice(0, 60), '1h')];
    expect(() => [...aggregateCandles(hour, '5m')]).toThrow(/cannot aggregate 1h/);
    expect(() => [...aggregateCandles([hour[0]!, btc[60]!], '1d')]).toThrow(/1m candle among 1h/);
  });
});

describe('stepRounder', () => {
  it('rounds to the step without binary noise', () => {
    expect(stepRounder(0.01)(0.1 + 0.2)).toBe(0.3);
    expect(stepRounder(0.00001)(0.123456789)).toBe(0.12346);
    expect(stepRounder(0.5)(10.26)).toBe(10.5);
    expect(stepRounder(5)(12.4)).toBe(10);
  });
});
