/**
 * `qcat worker`: join the optimizations of a QCAT that runs on several machines (ADR 029). It
 * connects to the PostgreSQL of DATABASE_URL (the one `qcat serve` uses), takes trials from the
 * job queue, runs them on this machine's cores and stores their results; the leader records them.
 * SIGINT/SIGTERM: finish the trials in hand, then leave. Killed outright, its trials run again
 * elsewhere once they expire (QCAT_TRIAL_EXPIRE_SECONDS).
 */
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { createPool } from '../core/adapters/postgres/pool.js';
import { toError } from '../core/errors.js';
import { TrialConsumer } from '../automation/optimization/trial-consumer.js';
import { defaultThreads } from '../automation/optimization/trial-pool.js';
import { TrialQueue } from '../automation/optimization/trial-queue.js';
import { ConfigurationError, loadConfig, redact } from './config.js';

export function registerWorkerCommand(program: Command, fail: (message: string) => Error): void {
  program
    .command('worker')
    .description(
      'run optimization trials for the QCAT whose PostgreSQL is DATABASE_URL, on this machine’s cores, until stopped (see docs/optimization.md)',
    )
    .option('--threads <n>', 'worker threads (default: every core)')
    .action(async (options: { threads?: string }) => {
      const config = loadConfig();
      if (!config.DATABASE_URL)
        throw new ConfigurationError(
          'DATABASE_URL (unset): `qcat worker` joins the PostgreSQL that `qcat serve` uses',
        );
      let threads = defaultThreads();
      if (options.threads !== undefined) {
        threads = Number(options.threads);
        if (!Number.isInteger(threads) || threads < 1 || threads > 256)
          throw fail(
            `--threads: expected a whole number from 1 to 256, got ${JSON.stringify(options.threads)}`,
          );
      }
      const log = (message: string): void => {
        console.log(`${new Date().toISOString()} ${message}`);
      };
      const pool = createPool({ connectionString: config.DATABASE_URL, max: 2 });
      let queue: TrialQueue | null = null;
      const stop = new AbortController();
      const onSignal = (signal: string): void => {
        log(`worker: ${signal}: finishing the trials in hand`);
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await migrate(pool);
        queue = await TrialQueue.open({
          connectionString: config.DATABASE_URL,
          expireInSeconds: config.QCAT_TRIAL_EXPIRE_SECONDS,
          log,
        });
        const consumer = new TrialConsumer({ pool, queue, threads, log });
        log(
          `worker ${consumer.workerId} on ${hostname()}: ${threads} threads, PostgreSQL ${redact(config.DATABASE_URL)}; waiting for trials`,
        );
        await consumer.run(stop.signal);
        log(`worker: stopped after ${consumer.trialsRun} trials`);
      } catch (error) {
        throw fail(`worker: ${toError(error).message}`);
      } finally {
        await queue?.close().catch(() => undefined);
        await pool.end().catch(() => undefined);
      }
    });
}
