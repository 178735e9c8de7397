import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ENGINE_ACTOR, valuationStream } from '../core/engine/engine.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { qcatNodeArgs } from '../test/support/qcat-build.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { until } from '../test/support/until.js';
import { DRIFT_EXIT_CODE, parseWeights } from './portfolio-commands.js';

const root = new URL('..', import.meta.url).pathname;
const P = 'paper-4h';
const DAY = 86_400_000;
const D0 = Math.floor(Date.now() / DAY) * DAY - 5 * DAY;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `qcat portfolio …` as an operator runs it: real processes against the database of a running
 * QCAT server, which keeps the read models and runs the rebalancing process manager.
 */
describe('qcat portfolio', () => {
  let qcat: TestServer;
  let dir: string;

  const cli = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: qcat.database.url,
        LOG_LEVEL: 'warn',
      };
      delete env['REDIS_URL'];
      execFile(
        process.execPath,
        qcatNodeArgs('portfolio', ...args),
        { cwd: root, env, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  const noStack = (run: Run): void => {
    expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  };
  /** The engine's valuation of day `i`, with each strategy's net PnL. */
  const valued = async (i: number, pnl: Record<string, number>): Promise<bigint> => {
    const net = Object.values(pnl).reduce((a, b) => a + b, 0);
    const data: JsonObject = {
      portfolioId: P,
      currency: 'USDT',
      time: D0 + i * DAY,
      cycle: i,
      cash: 100_000 + net,
      equity: 100_000 + net,
      feesPaid: 0,
      realizedPnl: net,
      unrealizedPnl: 0,
      positions: Object.entries(pnl).map(([strategyId, realizedPnl]) => ({
        strategyId,
        symbol: 'BTCUSDT',
        quantity: 0,
        averageEntryPrice: 0,
        markPrice: 100,
        unrealizedPnl: 0,
        realizedPnl,
        feesPaid: 0,
      })),
    };
    const written = await qcat.server.runtime.eventStore.appendToStream(valuationStream(P), [
      { type: 'PortfolioValued', data, metadata: { actor: ENGINE_ACTOR } },
    ]);
    expect(
      await qcat.server.runtime.projections.waitFor('allocations', written.position, 10_000),
    ).toBe(true);
    return written.position;
  };
  const show = async () => {
    const run = await cli('show', P, '--json');
    expect(run.code, run.stderr).toBe(0);
    return z
      .object({
        allocation: z.object({ proposalId: z.string() }).nullable(),
        strategies: z.array(
          z.object({ strategyId: z.string(), target: z.number(), drift: z.number() }),
        ),
        outsideBand: z.array(z.string()),
      })
      .parse(JSON.parse(run.stdout));
  };

  beforeAll(async () => {
    qcat = await startTestServer('portfolio_cli');
    dir = mkdtempSync(join(tmpdir(), 'qcat-portfolio-'));
  }, 60_000);
  afterAll(async () => {
    await qcat.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets a policy from a file, proposes fixed weights, shows target against actual, checks drift', async () => {
    const policy = join(dir, 'policy.json');
    // Quiet automatic triggers: only the person's proposal, and the drift band to check.
    writeFileSync(
      policy,
      JSON.stringify({
        method: 'equal_weight',
        constraints: { maxWeight: 0.4 },
        rebalance: {
          everyMs: null,
          equityMove: null,
          onMembershipChange: false,
          driftBand: 0.05,
          approvalThreshold: 1,
        },
      }),
    );
    const set = await cli('set-policy', P, '--file', policy);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(new RegExp(`^policy of ${P} set at position \\d+`));
    for (const strategyId of ['s1', 's2']) {
      const response = await qcat.request('POST', `/api/v1/portfolios/${P}/members`, {
        token: qcat.tokens.risk_officer,
        body: { strategyId },
      });
      expect(response.status, await response.text()).toBe(200);
    }
    await valued(0, { s1: 0, s2: 0 });
    // The trading read model gives the valuation's equity; the proposal needs it.
    await until(
      async () => (await cli('show', P)).stdout,
      (out) => out.includes('no allocation applied yet'),
      10_000,
    );

    const proposed = await cli('propose', P, '--weights', 's1=0.3,s2=0.3', '--reason', 'desk');
    expect(proposed.code, proposed.stderr).toBe(0);
    const proposalId = /^proposed (manual-\S+) for/.exec(proposed.stdout)?.[1];
    expect(proposalId).toBeDefined();
    const applied = await until(show, (s) => s.allocation !== null, 10_000);
    expect(applied.allocation?.proposalId).toBe(proposalId);
    expect(applied.strategies.map((s) => [s.strategyId, s.target, s.drift])).toEqual([
      ['s1', 0.3, 0],
      ['s2', 0.3, 0],
    ]);
    const listed = await cli('proposals', P, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject([
      {
        proposalId,
        status: 'applied',
        method: 'manual',
        trigger: { type: 'manual', detail: 'desk' },
      },
    ]);
    const table = await cli('proposals', P);
    expect(table.stdout).toContain('manual: desk');

    const inBand = await cli('show', P, '--check-drift');
    expect(inBand.code, inBand.stderr).toBe(0);
    expect(inBand.stdout).toMatch(/'s1'\s*│\s*'30\.00%'\s*│\s*'30\.00%'/);

    // s1 earns 12,000: its weight is now (30,000 + 12,000) / 112,000 = 37.5%, 7.5 pp over.
    await valued(1, { s1: 12_000, s2: 0 });
    const drifted = await until(show, (s) => s.outsideBand.length > 0, 10_000);
    expect(drifted.outsideBand).toEqual(['s1']);
    expect(drifted.strategies[0]?.drift).toBeCloseTo(42_000 / 112_000 - 0.3, 12);
    const check = await cli('show', P, '--check-drift');
    expect(check.code).toBe(DRIFT_EXIT_CODE);
    expect(check.stderr).toMatch(/^qcat: s1 7\.50% outside the drift band 5\.00%/);
  });

  it('with --idempotency-key, a re-run (after a timeout) proposes nothing new and reports the first proposal', async () => {
    const args = ['propose', P, '--weights', 's1=0.35,s2=0.35', '--idempotency-key', 'rerun-0001'];
    const first = await cli(...args);
    expect(first.code, first.stderr).toBe(0);
    const proposalId = /^proposed (manual-\S+) for/.exec(first.stdout)?.[1];
    expect(proposalId).toMatch(/^manual-[0-9a-f-]{36}$/);
    const head = await qcat.server.runtime.eventStore.headPosition();
    const again = await cli(...args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      new RegExp(
        `^proposal ${proposalId ?? ''} for ${P} was already made with this idempotency key`,
      ),
    );
    expect(await qcat.server.runtime.eventStore.headPosition()).toBe(head);
    // The same key with other options is a different command: refused, nothing written.
    const other = await cli(
      'propose',
      P,
      '--weights',
      's1=0.2,s2=0.2',
      '--idempotency-key',
      'rerun-0001',
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/IDEMPOTENCY_KEY_REUSED/);
    noStack(other);
    expect(await qcat.server.runtime.eventStore.headPosition()).toBe(head);
    const listed = await until(
      async () =>
        z
          .array(z.object({ proposalId: z.string() }))
          .parse(JSON.parse((await cli('proposals', P, '--json')).stdout)),
      (rows) => rows.some((r) => r.proposalId === proposalId),
      10_000,
    );
    expect(listed.filter((r) => r.proposalId === proposalId)).toHaveLength(1);
  });

  it('refuses bad calls with a message and exit code 1, never a stack trace, and writes nothing', async () => {
    const bad = join(dir, 'bad-policy.json');
    writeFileSync(bad, JSON.stringify({ method: 'volatility_target', targetVolatility: 0 }));
    const head = await qcat.server.runtime.eventStore.headPosition();
    const cases: [string[], RegExp][] = [
      [['show', 'nowhere'], /^qcat: portfolio nowhere has no allocation policy/],
      [['show', 'bad id!'], /is not a portfolio id/],
      [['proposals', P, '--limit', '0'], /--limit '0': expected a whole number from 1 to 200/],
      [['propose', P, '--weights', 's1=2'], /--weights: s1: weight 2 is not from 0 to 1/],
      [
        ['propose', P, '--weights', 's1=0.1,s2=0.1,s3=0.1'],
        /weights\.s3.*\(STRATEGY_NOT_IN_PORTFOLIO\)/,
      ],
      [['propose', P, '--weights', 's1=0.5,s2=0.1'], /weights\.s1: exceeds maxWeight 0\.4/],
      [['set-policy', P, '--file', bad], /policy\.targetVolatility.*INVALID_ALLOCATION_POLICY/],
      [['set-policy', P, '--file', join(dir, 'missing.json')], /missing\.json: ENOENT/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(...args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(1);
      expect(run.stderr).toMatch(message);
      noStack(run);
    }
    expect(await qcat.server.runtime.eventStore.headPosition()).toBe(head);
  });

  it('parses weights as strategyId=weight pairs', () => {
    expect(parseWeights('s1=0.2, s2=.15')).toEqual({ s1: 0.2, s2: 0.15 });
    expect(parseWeights('s1=0.2,s1=0.1')).toBe('s1 is given twice');
    expect(parseWeights('=0.2')).toBe("'=0.2' is not strategyId=weight (e.g. s1=0.2)");
  });
});
