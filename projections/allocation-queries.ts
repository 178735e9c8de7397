import type pg from 'pg';
import type { AllocationSource, AppliedAllocation } from '../core/engine/allocation.js';
import type { Valuation } from '../core/portfolio/events.js';
import { policySchema, type AllocationPolicy } from '../core/portfolio/policy.js';

/**
 * The queries over the allocations read model (projections/allocations.ts): what the API, the CLI,
 * the rebalancing process manager and the paper engine read. All SQL lives here.
 */

const READ = 'qcat_read';

export type PortfolioRow = {
  portfolioId: string;
  policy: AllocationPolicy;
  policyVersion: number;
  members: string[];
  setBy: string;
  updatedAt: string;
};

export type ProposalRow = {
  portfolioId: string;
  proposalId: string;
  status: string;
  trigger: { type: string; detail: string; figures: Record<string, unknown> };
  method: string;
  members: string[];
  weights: Record<string, number>;
  previousWeights: Record<string, number>;
  maxChange: number;
  inputs: Record<string, unknown>;
  valuation: Record<string, unknown>;
  requestId: string | null;
  authority: string | null;
  failure: { code: string | null; reason: string } | null;
  proposedBy: string;
  proposedAt: string;
  decidedAt: string | null;
  position: string;
};

export type CurrentRow = {
  portfolioId: string;
  proposalId: string;
  weights: Record<string, number>;
  targets: Record<string, number>;
  valuation: Valuation;
  appliedAt: string;
};

/** Per member: the weight in force, the weight the portfolio holds now, and their difference. */
export type DriftRow = {
  strategyId: string;
  target: number;
  actual: number;
  drift: number;
  targetExposure: number;
};

type DailyPnl = { strategy_id: string; day: string; net_pnl: number; equity: number };

export class AllocationQueries implements AllocationSource {
  constructor(private readonly pool: pg.Pool) {}

  async portfolios(): Promise<PortfolioRow[]> {
    const { rows } = await this.pool.query<{
      portfolio_id: string;
      policy: unknown;
      version: number;
      members: string[];
      set_by: string;
      updated_at: Date;
    }>(`SELECT * FROM ${READ}.portfolio_policies ORDER BY portfolio_id`);
    return rows.map((row) => ({
      portfolioId: row.portfolio_id,
      policy: policySchema.parse(row.policy),
      policyVersion: row.version,
      members: row.members,
      setBy: row.set_by,
      updatedAt: row.updated_at.toISOString(),
    }));
  }

  async portfolio(portfolioId: string): Promise<PortfolioRow | undefined> {
    return (await this.portfolios()).find((p) => p.portfolioId === portfolioId);
  }

  async current(portfolioId: string): Promise<AppliedAllocation | undefined> {
    try {
      return await this.currentOrThrow(portfolioId);
    } catch (error) {
      // Before the read model's first generation exists (a fresh start): no allocation yet.
      if (error instanceof Error && 'code' in error && error.code === '42P01') return undefined;
      throw error;
    }
  }

  private async currentOrThrow(portfolioId: string): Promise<AppliedAllocation | undefined> {
    const { rows } = await this.pool.query<{
      proposal_id: string;
      weights: Record<string, number>;
      policy: unknown;
    }>(
      `SELECT c.proposal_id, c.weights, p.policy FROM ${READ}.allocation_current c
         JOIN ${READ}.portfolio_policies p USING (portfolio_id) WHERE c.portfolio_id = $1`,
      [portfolioId],
    );
    const row = rows[0];
    if (!row) return undefined;
    const policy = policySchema.parse(row.policy);
    // Members only: a strategy removed since the allocation was applied gets no capital.
    const members = new Set((await this.portfolio(portfolioId))?.members ?? []);
    const weights = Object.fromEntries(
      Object.entries(row.weights).filter(([id]) => members.has(id)),
    );
    return { proposalId: row.proposal_id, weights, sizing: policy.sizing };
  }

  async applied(portfolioId: string): Promise<CurrentRow | undefined> {
    const { rows } = await this.pool.query<{
      proposal_id: string;
      weights: Record<string, number>;
      targets: Record<string, number>;
      valuation: Valuation;
      applied_at: Date;
    }>(`SELECT * FROM ${READ}.allocation_current WHERE portfolio_id = $1`, [portfolioId]);
    const row = rows[0];
    return row
      ? {
          portfolioId,
          proposalId: row.proposal_id,
          weights: row.weights,
          targets: row.targets,
          valuation: row.valuation,
          appliedAt: row.applied_at.toISOString(),
        }
      : undefined;
  }

  /** Proposals newest first (failed and rejected ones too), before `beforePosition` when given. */
  async proposals(
    portfolioId: string,
    limit: number,
    beforePosition?: bigint,
  ): Promise<ProposalRow[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT * FROM ${READ}.allocation_proposals
        WHERE portfolio_id = $1 AND ($2::bigint IS NULL OR position < $2)
        ORDER BY position DESC LIMIT $3`,
      [portfolioId, beforePosition?.toString() ?? null, limit],
    );
    return rows.map(proposalOf);
  }

  async proposal(portfolioId: string, proposalId: string): Promise<ProposalRow | undefined> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT * FROM ${READ}.allocation_proposals WHERE portfolio_id = $1 AND proposal_id = $2`,
      [portfolioId, proposalId],
    );
    return rows[0] ? proposalOf(rows[0]) : undefined;
  }

  /** The portfolio's latest valuation: equity and each strategy's net PnL. */
  async valuation(portfolioId: string): Promise<Valuation | undefined> {
    const { rows } = await this.pool.query<{
      strategy_id: string;
      net_pnl: number;
      equity: number;
      valued_at: Date;
    }>(
      `SELECT DISTINCT ON (strategy_id) strategy_id, net_pnl, equity, valued_at
         FROM ${READ}.allocation_strategy_pnl WHERE portfolio_id = $1
        ORDER BY strategy_id, day DESC`,
      [portfolioId],
    );
    const { rows: equity } = await this.pool.query<{
      equity: number | null;
      valued_at: Date | null;
    }>(`SELECT equity, valued_at FROM ${READ}.portfolios WHERE portfolio_id = $1`, [portfolioId]);
    const latest = equity[0];
    if (!latest?.equity || !latest.valued_at) return undefined;
    return {
      equity: latest.equity,
      pnl: Object.fromEntries(rows.map((row) => [row.strategy_id, row.net_pnl])),
      at: latest.valued_at.toISOString(),
    };
  }

  /**
   * Daily returns of `members` over the last `days` UTC days up to `until` (aligned; a day without
   * a valuation of a strategy carries its last PnL). A strategy's return on a day is its PnL change
   * over its capital base: its target exposure in force, or the portfolio's equity / members.
   */
  async dailyReturns(
    portfolioId: string,
    members: readonly string[],
    days: number,
    until: Date,
    bases: Readonly<Record<string, number>>,
  ): Promise<{ from: string | null; to: string | null; series: number[][] }> {
    const from = new Date(until.getTime() - days * 86_400_000).toISOString().slice(0, 10);
    const { rows } = await this.pool.query<DailyPnl>(
      `SELECT strategy_id, to_char(day, 'YYYY-MM-DD') AS day, net_pnl, equity
         FROM ${READ}.allocation_strategy_pnl
        WHERE portfolio_id = $1 AND strategy_id = ANY($2) AND day >= $3 AND day <= $4
        ORDER BY day`,
      [portfolioId, members, from, until.toISOString().slice(0, 10)],
    );
    const allDays = [...new Set(rows.map((row) => row.day))].sort();
    if (allDays.length < 2)
      return {
        from: allDays[0] ?? null,
        to: allDays.at(-1) ?? null,
        series: members.map(() => []),
      };
    const pnlBy = new Map(rows.map((row) => [`${row.strategy_id}|${row.day}`, row.net_pnl]));
    const equityBy = new Map(rows.map((row) => [row.day, row.equity]));
    const series = members.map((id) => {
      let last = 0;
      const levels = allDays.map((d) => (last = pnlBy.get(`${id}|${d}`) ?? last));
      return levels.slice(1).map((level, i) => {
        const base =
          bases[id] ?? (equityBy.get(allDays[i] ?? '') ?? 0) / Math.max(1, members.length);
        return base > 0 ? (level - (levels[i] ?? 0)) / base : 0;
      });
    });
    return { from: allDays[0] ?? null, to: allDays.at(-1) ?? null, series };
  }

  /** Target against actual per member, from the allocation in force and the latest valuation. */
  async drift(portfolioId: string): Promise<DriftRow[]> {
    const [applied, valuation, portfolio] = await Promise.all([
      this.applied(portfolioId),
      this.valuation(portfolioId),
      this.portfolio(portfolioId),
    ]);
    if (!applied || !valuation || !portfolio) return [];
    return portfolio.members.map((strategyId) => {
      const target = applied.weights[strategyId] ?? 0;
      const actual = actualWeight(target, applied.valuation, valuation, strategyId);
      return {
        strategyId,
        target,
        actual,
        drift: actual - target,
        targetExposure: target * valuation.equity,
      };
    });
  }
}

/**
 * The share of equity a member holds now: its capital at the allocation (weight × equity then)
 * plus its PnL since, over the equity now.
 */
export const actualWeight = (
  weight: number,
  then: Valuation,
  now: Valuation,
  strategyId: string,
): number =>
  (weight * then.equity + (now.pnl[strategyId] ?? 0) - (then.pnl[strategyId] ?? 0)) / now.equity;

function proposalOf(row: Record<string, unknown>): ProposalRow {
  const date = (value: unknown): string | null =>
    value instanceof Date ? value.toISOString() : null;
  return {
    portfolioId: String(row['portfolio_id']),
    proposalId: String(row['proposal_id']),
    status: String(row['status']),
    trigger: row['trigger'] as ProposalRow['trigger'],
    method: String(row['method']),
    members: row['members'] as string[],
    weights: row['weights'] as Record<string, number>,
    previousWeights: row['previous_weights'] as Record<string, number>,
    maxChange: Number(row['max_change']),
    inputs: row['inputs'] as Record<string, unknown>,
    valuation: row['valuation'] as Record<string, unknown>,
    requestId: (row['request_id'] as string | null) ?? null,
    authority: (row['authority'] as string | null) ?? null,
    failure:
      row['failure_reason'] === null || row['failure_reason'] === undefined
        ? null
        : {
            code: (row['failure_code'] as string | null) ?? null,
            reason: row['failure_reason'] as string,
          },
    proposedBy: String(row['proposed_by']),
    proposedAt: date(row['proposed_at']) ?? '',
    decidedAt: date(row['decided_at']),
    position: String(row['position']),
  };
}
