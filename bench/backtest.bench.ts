/**
 * Backtest engine throughput: one year of 1-minute candles (525,600 bars) for one symbol, an SMA
 * crossover (the kind's defaults: 20/50, half the capital) through the full step function —
 * signal, order sizing, risk hook, paper venue (next-open fills, slippage, volume cap, fees) and
 * accounting — with every event kept, as `backtest()` runs it. Against it, in the same run, a plain
 * loop computing the same SMA signal over the same candle array (ring buffers, running sums, the
 * same re-sum at each wrap) and nothing else: the ratio is what the engine costs on top of the bare
 * signal.
 *
 *   npm run bench:backtest
 *   npm run bench:backtest -- --bars=525600 --rounds=7 --seed=42
 *
 * The candles come from a seeded random walk in this file (prices on a 0.01 tick, volumes on a
 * 0.001 lot), generated before timing. Each contender runs once to warm up, then `--rounds` times;
 * best and median wall-clock times are printed, with the process CPU time of each round (on a busy
 * machine wall-clock rates fall with the share of a core the process gets; the load average is
 * printed before and after). The target (≥ 1,000,000 bars/s) is checked on the median wall-clock
 * round. No database is used. The last line of output is one JSON object.
 */
import { cpus, loadavg } from 'node:os';
import type { Candle, Instrument } from '../core/market/types.js';
import { backtest, type BacktestResult } from '../core/trading/backtest.js';
import type { StepperConfig } from '../core/trading/stepper.js';
import {
  checkTarget,
  formatInt,
  formatRatio,
  numberOption,
  printTable,
  printTargets,
  round,
  type Target,
} from './support.js';

const TARGET_BARS_PER_SEC = 1_000_000;
const FAST = 20;
const SLOW = 50;
const FRACTION = 0.5;

const bars = numberOption('bars', 525_600);
const rounds = numberOption('rounds', 7);
const seed = numberOption('seed', 42);

const INSTRUMENT: Instrument = {
  symbol: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  tickSize: 0.01,
  lotSize: 0.001,
  minNotional: 10,
};

const config: StepperConfig = {
  portfolioId: 'bench',
  currency: 'USDT',
  initialCash: 100_000,
  timeframe: '1m',
  instruments: [INSTRUMENT],
  books: [
    {
      strategyId: 'sma',
      symbol: INSTRUMENT.symbol,
      kind: 'sma_crossover',
      parameters: { fastPeriod: FAST, slowPeriod: SLOW, positionFraction: FRACTION },
      allocation: 1,
    },
  ],
  venue: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
};

/** mulberry32. */
function seeded(value: number): () => number {
  let a = value | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random walk of 1-minute bars from 2024-01-01 UTC: ±0.15% a minute, wicks up to 0.05%. */
function randomWalk(count: number): Candle[] {
  const random = seeded(seed);
  const tick = (value: number): number => Math.round(value * 100) / 100;
  const start = Date.UTC(2024, 0, 1);
  const candles: Candle[] = new Array<Candle>(count);
  let price = 30_000;
  for (let i = 0; i < count; i++) {
    const open = price;
    const close = tick(open * (1 + (random() - 0.5) * 0.003));
    candles[i] = {
      symbol: INSTRUMENT.symbol,
      timeframe: '1m',
      openTime: start + i * 60_000,
      open,
      high: tick(Math.max(open, close) * (1 + random() * 0.0005)),
      low: tick(Math.min(open, close) * (1 - random() * 0.0005)),
      close,
      volume: Math.round((1 + 30 * random() * random()) * 1000) / 1000,
    };
    price = close;
  }
  return candles;
}

/**
 * The bare signal: SMA(fast) > SMA(slow) over the closes, computed as core/trading/signals.ts
 * does (ring buffer, running sum, exact re-sum at each wrap). Returns how often the target changed.
 */
function plainSma(candles: readonly Candle[]): number {
  const fast = new Float64Array(FAST);
  const slow = new Float64Array(SLOW);
  let fastSum = 0;
  let slowSum = 0;
  let fastNext = 0;
  let slowNext = 0;
  let count = 0;
  let target = 0;
  let changes = 0;
  for (let i = 0; i < candles.length; i++) {
    const close = candles[i]!.close;
    fastSum += count < FAST ? close : close - fast[fastNext]!;
    slowSum += count < SLOW ? close : close - slow[slowNext]!;
    fast[fastNext] = close;
    slow[slowNext] = close;
    count++;
    if (++fastNext === FAST) {
      fastNext = 0;
      fastSum = 0;
      for (let j = 0; j < FAST; j++) fastSum += fast[j]!;
    }
    if (++slowNext === SLOW) {
      slowNext = 0;
      slowSum = 0;
      for (let j = 0; j < SLOW; j++) slowSum += slow[j]!;
    }
    const next = count < SLOW ? 0 : fastSum / FAST > slowSum / SLOW ? FRACTION : 0;
    if (next !== target) {
      target = next;
      changes++;
    }
  }
  return changes;
}

interface Timing {
  ms: number[];
  cpuMs: number[];
}

function time<T>(label: string, fn: () => T): { result: T; timing: Timing } {
  let result = fn(); // warm-up
  const timing: Timing = { ms: [], cpuMs: [] };
  for (let r = 0; r < rounds; r++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    result = fn();
    timing.ms.push(performance.now() - started);
    const used = process.cpuUsage(cpu);
    timing.cpuMs.push((used.user + used.system) / 1000);
  }
  console.log(`  ${label}: ${timing.ms.map((ms) => ms.toFixed(1)).join(', ')} ms`);
  return { result, timing };
}

const best = (values: readonly number[]): number => Math.min(...values);
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const perSec = (ms: number): number => (bars / ms) * 1000;

function main(): Record<string, unknown> {
  const loadBefore = loadavg()[0]!;
  console.log(
    `bench:backtest — ${formatInt(bars)} 1-minute bars of ${INSTRUMENT.symbol}, SMA ${FAST}/${SLOW} crossover, ${rounds} rounds after a warm-up, Node ${process.version}, ${cpus().length} CPUs, load average ${loadBefore.toFixed(2)}`,
  );
  const generatedAt = performance.now();
  const candles = randomWalk(bars);
  console.log(
    `  candles generated in ${(performance.now() - generatedAt).toFixed(0)} ms (seed ${seed}); ${candles[0]!.close} → ${candles[candles.length - 1]!.close}`,
  );

  const plain = time('plain SMA loop', () => plainSma(candles));
  const engine = time('engine (backtest)', () => backtest(config, candles));
  const run: BacktestResult = engine.result;

  const counts: Record<string, number> = {};
  for (const event of run.events) counts[event.type] = (counts[event.type] ?? 0) + 1;
  const orders = counts['OrderSubmitted'] ?? 0;
  const signalsMatch = orders === plain.result;

  const engineBest = best(engine.timing.ms);
  const engineMedian = median(engine.timing.ms);
  const plainBest = best(plain.timing.ms);
  const plainMedian = median(plain.timing.ms);
  const ratio = perSec(plainMedian) / perSec(engineMedian);

  console.log('');
  printTable(
    [
      'contender',
      'best ms',
      'median ms',
      'bars/s (best)',
      'bars/s (median)',
      'CPU ms (median)',
      'bars/CPU-s (median)',
    ],
    [
      [
        'engine: signal + orders + venue + accounting',
        engineBest.toFixed(1),
        engineMedian.toFixed(1),
        formatInt(perSec(engineBest)),
        formatInt(perSec(engineMedian)),
        median(engine.timing.cpuMs).toFixed(1),
        formatInt(perSec(median(engine.timing.cpuMs))),
      ],
      [
        'plain loop: the same SMA signal',
        plainBest.toFixed(1),
        plainMedian.toFixed(1),
        formatInt(perSec(plainBest)),
        formatInt(perSec(plainMedian)),
        median(plain.timing.cpuMs).toFixed(1),
        formatInt(perSec(median(plain.timing.cpuMs))),
      ],
    ],
  );
  console.log(
    `\n  engine / plain loop (median): ${formatRatio(ratio)} the time; the engine does ${formatInt(run.events.length)} events (${Object.entries(
      counts,
    )
      .map(([type, n]) => `${type} ${formatInt(n)}`)
      .join(', ')})`,
  );
  console.log(
    `  signal changes: plain loop ${formatInt(plain.result)}, engine orders ${formatInt(orders)} — ${signalsMatch ? 'the same' : 'DIFFERENT'}`,
  );
  const s = run.statistics;
  const show = (value: number | null, digits = 3): string =>
    value === null ? 'n/a' : value.toFixed(digits);
  console.log(
    `  result: ${formatInt(run.trades.length)} trades, equity ${formatInt(s.initialEquity)} → ${formatInt(s.finalEquity)} over ${s.days} days; total return ${show(s.totalReturn)}, Sharpe ${show(s.sharpe)}, max drawdown ${show(s.maxDrawdown)}, win rate ${show(s.winRate)}, exposure ${show(s.exposure)}`,
  );

  const loadAfter = loadavg()[0]!;
  console.log(
    `  load average (1 min) before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)}`,
  );
  const targets: Target[] = [
    {
      label: 'backtest throughput, median round (bars/s)',
      actual: perSec(engineMedian),
      min: TARGET_BARS_PER_SEC,
      format: formatInt,
    },
  ];
  console.log('\nTargets');
  printTargets(targets);

  return {
    benchmark: 'backtest',
    node: process.version,
    cpus: cpus().length,
    loadAverage: [round(loadBefore, 2), round(loadAfter, 2)],
    bars,
    rounds,
    seed,
    strategy: {
      kind: 'sma_crossover',
      fastPeriod: FAST,
      slowPeriod: SLOW,
      positionFraction: FRACTION,
    },
    engine: {
      bestMs: round(engineBest, 1),
      medianMs: round(engineMedian, 1),
      medianCpuMs: round(median(engine.timing.cpuMs), 1),
      barsPerSecBest: round(perSec(engineBest), 0),
      barsPerSecMedian: round(perSec(engineMedian), 0),
      barsPerCpuSecMedian: round(perSec(median(engine.timing.cpuMs)), 0),
      events: run.events.length,
      orders,
      trades: run.trades.length,
    },
    plain: {
      bestMs: round(plainBest, 2),
      medianMs: round(plainMedian, 2),
      barsPerSecBest: round(perSec(plainBest), 0),
      barsPerSecMedian: round(perSec(plainMedian), 0),
      signalChanges: plain.result,
    },
    ratio: round(ratio, 1),
    signalsMatch,
    statistics: s,
    target: checkTarget(targets[0]!),
    met: targets.every((target) => target.actual >= target.min) && signalsMatch,
  };
}

let summary: Record<string, unknown> | undefined;
try {
  summary = main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
if (summary) console.log(`\n${JSON.stringify(summary)}`);
