/**
 * `qcat optimize start|watch|list`: request an optimization from a JSON file (the body of
 * POST /api/v1/optimizations, with kind, symbol and timeframe), follow its progress with a
 * progress bar, list runs. Watching and listing read the read model a running `qcat serve` keeps.
 */
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { z } from 'zod';
import { optimizationRequestBody } from '../api/routes/optimization-schemas.js';
import { MarketDataStore } from '../core/adapters/postgres/market-data-store.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { optimizations, optimizationStream } from '../core/optimization/optimization.js';
import { OptimizationQueries } from '../projections/optimization-queries.js';
import type { Runtime } from './runtime.js';

export interface OptimizeCliParts {
  withRuntime: <T>(work: (runtime: Runtime) => Promise<T>) => Promise<T>;
  fail: (message: string) => Error;
  actor: () => string;
}

const FINISHED = ['completed', 'failed', 'cancelled'];

/** `[#########...........]  120/256 trials  best 1.234` */
export function progressBar(done: number, total: number, best: number | null, width = 30): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  const score = best === null ? '' : `  best ${best.toFixed(3)}`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} trials${score}`;
}

async function watch(runtime: Runtime, optimizationId: string, fail: (m: string) => Error) {
  const queries = new OptimizationQueries(runtime.pool);
  for (;;) {
    const row = await queries.get(optimizationId);
    if (!row)
      throw fail(
        `optimization ${optimizationId} is not in the read model (is qcat serve running?)`,
      );
    const s = row.state;
    process.stderr.write(
      `\r${progressBar(s.trialsDone, s.budget.trials, s.bestScore)} ${s.status}   `,
    );
    if (FINISHED.includes(s.status)) {
      process.stderr.write('\n');
      const verdict = s.outcome?.verdict;
      console.log(
        JSON.stringify(
          {
            optimizationId,
            status: s.status,
            bestParameters: s.outcome?.bestParameters ?? null,
            outOfSampleSharpe: s.outcome?.outOfSample?.sharpe ?? null,
            dsr: s.outcome?.deflatedSharpe?.dsr ?? null,
            pbo: s.outcome?.pbo?.pbo ?? null,
            verdict: verdict ?? null,
            failureReason: s.failureReason,
          },
          null,
          2,
        ),
      );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export function registerOptimizeCommands(program: Command, parts: OptimizeCliParts): void {
  const optimize = program
    .command('optimize')
    .description('parameter optimizations: start one, watch its progress, list them');

  registerStart(optimize, parts);
  registerWatch(optimize, parts);
  registerList(optimize, parts);
}

/** `qcat optimize start`. */
function registerStart(optimize: Command, parts: OptimizeCliParts): void {
  optimize
    .command('start')
    .description('request an optimization described by a JSON file (see docs/optimization.md)')
    .requiredOption('--file <path>', 'the request: kind, symbol, timeframe, from, to, space, …')
    .option('--watch', 'follow its progress until it finishes')
    .action(async (options: { file: string; watch?: boolean }) => {
      let json: unknown;
      try {
        json = JSON.parse(await readFile(options.file, 'utf8'));
      } catch (error) {
        throw parts.fail(
          `${options.file}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      const parsed = optimizationRequestBody.safeParse(json);
      if (!parsed.success)
        throw parts.fail(
          `${options.file}: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
        );
      const body = parsed.data;
      const { kind, symbol, timeframe } = body;
      if (!kind || !symbol || !timeframe)
        throw parts.fail(`${options.file}: kind, symbol and timeframe are required here`);
      await parts.withRuntime(async (runtime) => {
        const sample = await new MarketDataStore(runtime.pool).candlePage({
          symbol,
          timeframe,
          from: Date.parse(body.from),
          to: Date.parse(body.to),
          limit: 1,
        });
        const optimizationId = randomUUID();
        const { strategyId: _s, ...rest } = body;
        await runtime.commands.handle(
          optimizations,
          optimizationStream(optimizationId),
          {
            type: 'RequestOptimization',
            optimizationId,
            requestedBy: { id: parts.actor(), role: 'admin' },
            ...rest,
            kind,
            symbol,
            timeframe,
            baseParameters: (body.baseParameters ?? {}) as JsonObject,
            trigger: { type: 'manual' },
            candlesInWindow: sample.length,
          },
          { actor: parts.actor() },
        );
        console.log(`requested optimization ${optimizationId}`);
        if (options.watch) await watch(runtime, optimizationId, parts.fail);
      });
    });
}

/** `qcat optimize watch`. */
function registerWatch(optimize: Command, parts: OptimizeCliParts): void {
  optimize
    .command('watch')
    .description('show the progress of an optimization until it finishes')
    .argument('<optimizationId>')
    .action(async (optimizationId: string) => {
      if (!z.uuid().safeParse(optimizationId).success)
        throw parts.fail(`'${optimizationId}' is not an optimization id (a uuid)`);
      await parts.withRuntime((runtime) => watch(runtime, optimizationId, parts.fail));
    });
}

/** `qcat optimize list`. */
function registerList(optimize: Command, parts: OptimizeCliParts): void {
  optimize
    .command('list')
    .description('the latest optimizations')
    .action(async () => {
      const rows = await parts.withRuntime((runtime) =>
        new OptimizationQueries(runtime.pool).list({ limit: 50 }),
      );
      console.table(
        rows.slice(0, 50).map((row) => ({
          optimizationId: row.optimization_id,
          status: row.state.status,
          method: row.state.method,
          trials: `${row.state.trialsDone}/${row.state.budget.trials}`,
          passed: row.state.outcome?.verdict.passed ?? null,
          requestedAt: row.requested_at.toISOString(),
        })),
      );
    });
}
