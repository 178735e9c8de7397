import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from '../../core/market/synthetic.js';
import { optimizationStream } from '../../core/optimization/optimization.js';
import { qcatNodeArgs } from '../../test/support/qcat-build.js';
import { startTestServer, type TestServer } from '../../test/support/test-server.js';
import { until } from '../../test/support/until.js';
import { TrialResultStore } from '../../core/adapters/postgres/trial-result-store.js';
import type { PendingTrial } from '../../core/optimization/search.js';
import type { TrialSetup } from '../../core/optimization/trial.js';
import { TrialQueue, trialJobId } from './trial-queue.js';
import { LocalTrials, QueuedTrials } from './trial-runners.js';

const DAY = 86_400_000;
const ORIGIN = Date.UTC(2025, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();
type Json = Record<string, unknown>;
const root = new URL('../..', import.meta.url).pathname;

interface Worker {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** `qcat worker` as a real process (the run's build), one thread, on the server's database. */
function startWorker(databaseUrl: string, onLine?: (line: string, child: ChildProcess) => void) {
  const child = spawn(process.execPath, qcatNodeArgs('worker', '--threads', '1'), {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, QCAT_TRIAL_EXPIRE_SECONDS: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine?.(line, child);
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const worker: Worker = { child, output: () => output, exited };
  return worker;
}

/**
 * Trials spread over `qcat worker` processes through the pg-boss queue (ADR 029), against the
 * single-process run: with no worker the leader runs every trial on its own threads and never
 * touches the queue; with two workers, one killed with SIGKILL in the middle of a trial, the other
 * runs that trial again, each trial is recorded once, and the result is the same, bit for bit.
 */
describe('distributed optimization trials: qcat worker, kill -9', () => {
  let api: TestServer;
  const workers: Worker[] = [];
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens.analyst,
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
  };
  // One-minute candles over 100 days: each trial is tens of milliseconds of backtest, long
  // enough for the kill to land inside one.
  const request = {
    kind: 'sma_crossover',
    symbol: 'BTCUSDT',
    timeframe: '1m',
    from: iso(ORIGIN),
    to: iso(ORIGIN + 100 * DAY),
    space: {
      fastPeriod: { type: 'int', low: 5, high: 120 },
      slowPeriod: { type: 'int', low: 150, high: 1500 },
    },
    method: 'random',
    seed: 29,
    objective: { name: 'sharpe', minTrades: 1 },
    walkForward: { scheme: 'rolling', folds: 3, inSampleBlocks: 2 },
    budget: { trials: 12 },
    batchSize: 4,
  };
  const optimize = async (): Promise<{ id: string; run: Json }> => {
    const accepted = await call('POST', '/optimizations', request);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const id = String(accepted.body['optimizationId']);
    const run = await until(
      async () => (await call('GET', `/optimizations/${id}`)).body,
      (body) => ['completed', 'failed', 'cancelled'].includes(String(body['status'])),
      240_000,
    );
    expect(run['status'], JSON.stringify(run['failureReason'])).toBe('completed');
    return { id, run };
  };
  const trialsOf = async (id: string) =>
    (await call('GET', `/optimizations/${id}/trials?sort=trial&limit=500`)).body['trials'];
  const withoutDuration = (run: Json): string => {
    const { durationMs: _d, ...outcome } = run['outcome'] as Json;
    return JSON.stringify(outcome);
  };
  const sql = async <T extends Json>(text: string, values: unknown[] = []): Promise<T[]> =>
    (await api.server.runtime.pool.query<T>(text, values)).rows;

  beforeAll(async () => {
    api = await startTestServer('workers', { QCAT_TRIAL_EXPIRE_SECONDS: '3' });
    const market = new MarketDataStore(api.server.runtime.pool);
    await market.upsertInstruments(DEFAULT_INSTRUMENTS);
    await market.insertCandles([
      ...generateCandles({
        seed: 3,
        from: ORIGIN,
        to: ORIGIN + 100 * DAY,
        instruments: DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT'),
        timeframe: '1m',
      }),
    ]);
  }, 120_000);
  afterAll(async () => {
    for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((worker) => worker.exited));
    await api.stop(); // drops its database too
  });

  it('gives the single-process result, bit for bit, after a worker dies mid-trial', async () => {
    // No worker: the leader's own threads, as in a single process; the queue is never opened.
    const single = await optimize();
    const [queueSchema] = await sql<{ found: boolean }>(
      "SELECT to_regnamespace('pgboss') IS NOT NULL AS found",
    );
    expect(queueSchema?.found).toBe(false);

    const databaseUrl = api.server.runtime.databaseUrl;
    let killed: { trial: number } | null = null;
    const doomed = startWorker(databaseUrl, (line, child) => {
      const started = /trial [0-9a-f-]+#(\d+) started/.exec(line);
      if (started && !killed) {
        child.kill('SIGKILL'); // kill -9: no shutdown code runs
        killed = { trial: Number(started[1]) };
      }
    });
    const survivor = startWorker(databaseUrl);
    workers.push(doomed, survivor);
    const ready = (worker: Worker) =>
      until(
        () => Promise.resolve(worker.output()),
        (text) => text.includes('waiting for trials') || worker.child.exitCode !== null,
        60_000,
      );
    expect(await ready(doomed)).toContain('waiting for trials');
    expect(await ready(survivor)).toContain('waiting for trials');

    const distributed = await optimize();
    expect(await doomed.exited).toBeNull(); // ended by a signal, not an exit code
    expect(doomed.child.signalCode).toBe('SIGKILL');
    const lost = (killed as { trial: number } | null)?.trial ?? -1;
    expect(lost).toBeGreaterThanOrEqual(0);
    const tag = `${distributed.id}#${lost}`;
    // Killed inside the trial: it started there and was never stored there…
    expect(doomed.output()).toContain(`trial ${tag} started`);
    expect(doomed.output()).not.toContain(`trial ${tag} stored`);
    // …and the other worker ran it again once its job expired.
    expect(survivor.output()).toContain(`trial ${tag} stored`);
    const [job] = await sql<{ retry_count: number; state: string }>(
      'SELECT retry_count, state FROM pgboss.job WHERE id = $1',
      [trialJobId(distributed.id, lost)],
    );
    expect(job?.retry_count).toBeGreaterThanOrEqual(1);
    expect(job?.state).toBe('completed');

    // Each trial recorded once, in the batch events.
    const recorded: number[] = [];
    for (const event of await api.server.runtime.eventStore.readStream(
      optimizationStream(distributed.id),
    ))
      if (event.type === 'OptimizationProgressed')
        for (const trial of (event.data as { trials: { trial: number }[] }).trials)
          recorded.push(trial.trial);
    expect(recorded).toEqual(Array.from({ length: 12 }, (_, i) => i));

    // The same result as the single process, bit for bit (JSON keeps every double exactly).
    expect(withoutDuration(distributed.run)).toBe(withoutDuration(single.run));
    expect(JSON.stringify(await trialsOf(distributed.id))).toBe(
      JSON.stringify(await trialsOf(single.id)),
    );
    // The leader forgot the results it no longer needs.
    expect(await sql('SELECT 1 FROM qcat_optimization_trials')).toEqual([]);

    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    expect(survivor.output()).toMatch(/worker: stopped after \d+ trials/);
    const [left] = await sql<{ n: string }>('SELECT count(*) AS n FROM qcat_optimization_workers');
    // The survivor left; the killed worker's row stays until it is stale (it never said goodbye).
    expect(Number(left?.n)).toBe(1);
  });

  it('runs a batch itself when its workers are gone, with the runs of its own threads', async () => {
    const pool = api.server.runtime.pool;
    const store = new TrialResultStore(pool);
    const queue = await TrialQueue.open({
      connectionString: api.server.runtime.databaseUrl,
      expireInSeconds: 3,
    });
    const instrument = DEFAULT_INSTRUMENTS.find((i) => i.symbol === 'BTCUSDT');
    if (!instrument) throw new Error('no BTCUSDT');
    const candles = [
      ...generateCandles({
        seed: 4,
        from: ORIGIN,
        to: ORIGIN + 30 * DAY,
        instruments: [instrument],
        timeframe: '1h',
      }),
    ];
    const setup: TrialSetup = {
      kind: 'sma_crossover',
      symbol: 'BTCUSDT',
      timeframe: '1h',
      instrument,
      initialCash: 100_000,
      costs: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
      from: ORIGIN,
      to: ORIGIN + 30 * DAY,
    };
    const batch: PendingTrial[] = [0, 1, 2].map((trial) => ({
      trial,
      point: {},
      parameters: { fastPeriod: 5 + trial, slowPeriod: 30, positionFraction: 0.5 },
      note: null,
    }));
    const runner = new QueuedTrials(
      { pool, queue: () => Promise.resolve(queue), liveWithinSeconds: 2, pollMs: 100 },
      'ghost-run',
      setup,
      candles,
      1,
      undefined,
    );
    // A worker says it is alive until the batch is on the queue, then falls silent (takes nothing).
    const ghost = { worker: 'ghost', host: 'nowhere', pid: 1, threads: 1 };
    await store.beat(ghost);
    const beating = setInterval(() => void store.beat(ghost), 200);
    const running = runner.runBatch(batch);
    const queued = await until(
      () => queue.depth(),
      (depth) => depth === 3,
      30_000,
    ).finally(() => {
      clearInterval(beating);
    });
    expect(queued).toBe(3);
    const runs = await running;
    // Nobody took the trials: the leader ran them itself once the worker was silent.
    expect(await queue.depth()).toBe(3);
    const local = new LocalTrials(setup, candles, 1);
    const expected = await local.runBatch(batch);
    await local.close();
    expect(runs).toEqual(expected);
    await runner.close(true);
    expect(await queue.depth()).toBe(0); // its jobs are cancelled once the run is over
    await queue.close();
  });
});
