/**
 * `qcat portfolio show|proposals|propose|set-policy` (docs/portfolio.md): the allocation in force
 * with target against actual per strategy, the proposals with their triggers and figures, a
 * proposal (computed, or fixed weights), and the policy from a JSON file. Reading needs the read
 * model a running `qcat serve` keeps; approving a proposal that waits for four eyes stays with
 * the approvals API (a second person's key, not the operator's shell).
 *
 * Exit codes: 0 done; 1 a mistake in the call, an unknown portfolio or a refused command (the
 * message says which); 2 `show --check-drift` found a member outside the policy's drift band.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  manualProposal,
  PortfolioNotFound,
  PortfolioNotValued,
} from '../automation/allocation/propose.js';
import type { Party } from '../core/approvals/approval.js';
import { derivedId, IDEMPOTENCY_KEY } from '../core/commands/derived-id.js';
import type { JsonObject } from '../core/eventstore/event-store.js';
import { portfolioStream } from '../core/portfolio/events.js';
import { portfolios } from '../core/portfolio/portfolio.js';
import {
  AllocationQueries,
  type CurrentRow,
  type DriftRow,
  type PortfolioRow,
  type ProposalRow,
} from '../projections/allocation-queries.js';
import type { Runtime } from './runtime.js';

export interface PortfolioCliParts {
  withRuntime: <T>(work: (runtime: Runtime) => Promise<T>) => Promise<T>;
  fail: (message: string) => Error;
  actor: () => string;
}

/** Exit code of `show --check-drift` when a member is outside the band. */
export const DRIFT_EXIT_CODE = 2;

const PORTFOLIO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const pct = (value: unknown): string =>
  typeof value === 'number' ? `${(value * 100).toFixed(2)}%` : 'n/a';

/** `s1=0.2,s2=0.15` → { s1: 0.2, s2: 0.15 }. */
export function parseWeights(text: string): Record<string, number> | string {
  const weights: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]{0,99})=([0-9]*\.?[0-9]+)$/.exec(part);
    if (!match?.[1] || match[2] === undefined)
      return `'${part}' is not strategyId=weight (e.g. s1=0.2)`;
    const weight = Number(match[2]);
    if (!(weight >= 0 && weight <= 1)) return `${match[1]}: weight ${match[2]} is not from 0 to 1`;
    if (Object.hasOwn(weights, match[1])) return `${match[1]} is given twice`;
    weights[match[1]] = weight;
  }
  return weights;
}

interface ProposeOptions {
  weights?: string;
  reason: string;
  idempotencyKey?: string;
}

export function registerPortfolioCommands(program: Command, parts: PortfolioCliParts): void {
  const portfolio = program
    .command('portfolio')
    .description(
      'capital allocation across strategies: show, proposals, propose, set-policy (exit codes: 0 done, 1 bad call or refused, 2 drift beyond the band with --check-drift)',
    );
  registerShow(portfolio, parts);
  registerProposals(portfolio, parts);
  registerPropose(portfolio, parts);
  registerSetPolicy(portfolio, parts);
}

const checked = (portfolioId: string, fail: PortfolioCliParts['fail']): string => {
  if (!PORTFOLIO_ID.test(portfolioId))
    throw fail(`'${portfolioId}' is not a portfolio id (letters, digits, ., _ or -)`);
  return portfolioId;
};
const partyOf = (parts: PortfolioCliParts): Party => ({ id: parts.actor(), role: 'admin' });
const json = (value: unknown): void => {
  console.log(JSON.stringify(value, null, 2));
};

/** `qcat portfolio show`. */
function registerShow(portfolio: Command, parts: PortfolioCliParts): void {
  const { fail } = parts;
  portfolio
    .command('show')
    .description('the policy, members and allocation in force: target against actual per strategy')
    .argument('<portfolioId>', 'e.g. paper-1h')
    .option('--json', 'print JSON instead of tables')
    .option('--check-drift', `exit ${DRIFT_EXIT_CODE} when a member is outside the drift band`)
    .action(async (portfolioId: string, options: { json?: boolean; checkDrift?: boolean }) => {
      checked(portfolioId, fail);
      const shown = await parts.withRuntime(async (runtime) => {
        const queries = new AllocationQueries(runtime.pool);
        const row = await queries.portfolio(portfolioId);
        if (!row)
          throw fail(
            `portfolio ${portfolioId} has no allocation policy (or the read model of a running qcat serve has not seen it yet)`,
          );
        const applied = await queries.applied(portfolioId);
        const proposal = applied
          ? await queries.proposal(portfolioId, applied.proposalId)
          : undefined;
        return { row, applied, proposal, drift: await queries.drift(portfolioId) };
      });
      const band = shown.row.policy.rebalance.driftBand;
      const outside = shown.drift.filter((d) => band !== null && Math.abs(d.drift) > band);
      if (options.json) printShownJson(portfolioId, shown, outside);
      else printShown(portfolioId, shown, outside);
      if (options.checkDrift && outside.length > 0) {
        console.error(
          `qcat: ${outside.map((d) => `${d.strategyId} ${pct(d.drift)}`).join(', ')} outside the drift band ${pct(band)}`,
        );
        process.exitCode = DRIFT_EXIT_CODE;
      }
    });
}

/** What `qcat portfolio show` reads: the portfolio, the allocation in force and its proposal, the drift. */
interface Shown {
  row: PortfolioRow;
  applied: CurrentRow | undefined;
  proposal: ProposalRow | undefined;
  drift: DriftRow[];
}

function printShownJson(portfolioId: string, shown: Shown, outside: readonly DriftRow[]): void {
  const { row, applied, proposal, drift } = shown;
  json({
    portfolioId,
    policy: row.policy,
    policyVersion: row.policyVersion,
    members: row.members,
    allocation: applied ?? null,
    strategies: drift,
    expectedVolatility: proposal?.inputs['expectedVolatility'] ?? null,
    riskContributions: proposal?.inputs['riskContributions'] ?? null,
    outsideBand: outside.map((d) => d.strategyId),
  });
}

function printShown(portfolioId: string, shown: Shown, outside: readonly DriftRow[]): void {
  const { row, applied, proposal, drift } = shown;
  const band = row.policy.rebalance.driftBand;
  console.log(
    `portfolio ${portfolioId}: method ${row.policy.method} (policy v${row.policyVersion}), ${row.members.length} member(s), drift band ${band === null ? 'off' : pct(band)}`,
  );
  console.log(
    applied
      ? `allocation ${applied.proposalId} applied ${applied.appliedAt} at equity ${applied.valuation.equity.toFixed(2)}; expected volatility ${pct(proposal?.inputs['expectedVolatility'])}`
      : 'no allocation applied yet',
  );
  if (drift.length > 0)
    console.table(
      drift.map((d) => ({
        strategy: d.strategyId,
        target: pct(d.target),
        actual: pct(d.actual),
        drift: pct(d.drift),
        targetExposure: d.targetExposure.toFixed(2),
        outsideBand: outside.includes(d),
      })),
    );
}

/** `qcat portfolio proposals`. */
function registerProposals(portfolio: Command, parts: PortfolioCliParts): void {
  const { fail } = parts;
  portfolio
    .command('proposals')
    .description('proposals newest first: trigger, method, weights, status (failed ones too)')
    .argument('<portfolioId>')
    .option('--limit <n>', 'how many (1 to 200)', '20')
    .option('--json', 'print JSON with every figure')
    .action(async (portfolioId: string, options: { limit: string; json?: boolean }) => {
      checked(portfolioId, fail);
      const limit = Number(options.limit);
      if (!/^\d+$/.test(options.limit) || limit < 1 || limit > 200)
        throw fail(`--limit '${options.limit}': expected a whole number from 1 to 200`);
      const rows = await parts.withRuntime((runtime) =>
        new AllocationQueries(runtime.pool).proposals(portfolioId, limit),
      );
      if (options.json) {
        json(rows);
        return;
      }
      console.table(
        rows.map((p) => ({
          proposal: p.proposalId,
          status: p.status,
          trigger: `${p.trigger.type}: ${p.trigger.detail}`,
          method: p.method,
          weights: Object.entries(p.weights)
            .map(([id, w]) => `${id} ${pct(w)}`)
            .join(', '),
          request: p.requestId ?? '',
          failure: p.failure ? `${p.failure.code ?? ''} ${p.failure.reason}` : '',
          proposedAt: p.proposedAt,
        })),
      );
    });
}

/** A checked `qcat portfolio propose`: its id, fixed weights if given, and why. */
interface Proposing {
  portfolioId: string;
  proposalId: string;
  key: string | undefined;
  weights: Record<string, number> | undefined;
  reason: string;
}

/** `qcat portfolio propose`. */
function registerPropose(portfolio: Command, parts: PortfolioCliParts): void {
  const { fail } = parts;
  portfolio
    .command('propose')
    .description(
      "propose an allocation: computed with the policy's method, or the weights given; above the policy's threshold it waits for a second person (approvals API)",
    )
    .argument('<portfolioId>')
    .option('--weights <list>', 'fixed weights, every member: s1=0.2,s2=0.15')
    .option('--reason <text>', 'why, for the audit trail', 'asked from the command line')
    .option(
      '--idempotency-key <key>',
      'the same key proposes once: a re-run (after a timeout) reports the proposal it made (8 to 128 letters, digits or _.:-)',
    )
    .action(async (portfolioId: string, options: ProposeOptions) => {
      checked(portfolioId, fail);
      const key = options.idempotencyKey;
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
        throw fail(`--idempotency-key '${key}': expected 8 to 128 letters, digits or _.:-`);
      let weights: Record<string, number> | undefined;
      if (options.weights !== undefined) {
        const parsed = parseWeights(options.weights);
        if (typeof parsed === 'string') throw fail(`--weights: ${parsed}`);
        weights = parsed;
      }
      const reason = options.reason.trim();
      if (reason === '' || reason.length > 500) throw fail('--reason must be 1 to 500 characters');
      // The API's derivation (POST …/allocation/proposals with Idempotency-Key), with the CLI's actor.
      const proposalId = `manual-${key === undefined ? randomUUID() : derivedId(partyOf(parts).id, 'allocation', key)}`;
      const proposing = { portfolioId, proposalId, key, weights, reason };
      await parts.withRuntime((runtime) => propose(runtime, proposing, parts));
    });
}

/** Makes the proposal and issues it; a re-run with the same key reports the first one. */
async function propose(
  runtime: Runtime,
  { portfolioId, proposalId, key, weights, reason }: Proposing,
  parts: PortfolioCliParts,
): Promise<void> {
  const { state } = await runtime.commands.load(portfolios, portfolioStream(portfolioId));
  let proposal;
  try {
    proposal = await manualProposal(new AllocationQueries(runtime.pool), state, {
      portfolioId,
      proposalId,
      weights,
      reason,
      by: partyOf(parts),
      now: new Date(),
    });
  } catch (error) {
    if (error instanceof PortfolioNotFound || error instanceof PortfolioNotValued)
      throw parts.fail(error.message);
    throw error;
  }
  // With a key, a re-run is the same command: the handler answers the first result (the
  // same key with other options is refused), and the decider writes nothing for an id it
  // has seen.
  const result = await proposal.issue(runtime.commands, {
    actor: parts.actor(),
    ...(key === undefined
      ? {}
      : {
          idempotencyKey: key,
          clientInput: {
            command: 'portfolio propose',
            portfolioId,
            weights: weights ?? null,
            reason,
          },
        }),
  });
  const see = `see \`qcat portfolio proposals ${portfolioId}\``;
  console.log(
    result.replayed === true || result.eventCount === 0
      ? `proposal ${proposalId} for ${portfolioId} was already made with this idempotency key: nothing new; ${see}`
      : `proposed ${proposalId} for ${portfolioId} at position ${result.position.toString()}; ${see}`,
  );
}

/** `qcat portfolio set-policy`. */
function registerSetPolicy(portfolio: Command, parts: PortfolioCliParts): void {
  const { fail } = parts;
  portfolio
    .command('set-policy')
    .description(
      'set the allocation policy from a JSON file (method, constraints, rebalance, sizing); defaults fill the rest',
    )
    .argument('<portfolioId>')
    .requiredOption('--file <path>', 'the policy, as the body of PUT …/allocation/policy')
    .action(async (portfolioId: string, options: { file: string }) => {
      checked(portfolioId, fail);
      let text: unknown;
      try {
        text = JSON.parse(await readFile(options.file, 'utf8'));
      } catch (error) {
        throw fail(`${options.file}: ${error instanceof Error ? error.message : String(error)}`);
      }
      const parsed = z.record(z.string(), z.json()).safeParse(text);
      if (!parsed.success) throw fail(`${options.file}: expected a JSON object`);
      const policy: JsonObject = parsed.data;
      await parts.withRuntime(async (runtime) => {
        const result = await runtime.commands.handle(
          portfolios,
          portfolioStream(portfolioId),
          {
            type: 'SetPolicy',
            portfolioId,
            policy,
            by: partyOf(parts),
            at: new Date().toISOString(),
          },
          { actor: parts.actor() },
        );
        console.log(`policy of ${portfolioId} set at position ${result.position.toString()}`);
      });
    });
}
