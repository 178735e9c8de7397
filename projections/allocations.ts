import { domainEventOf } from '../core/eventstore/typed-events.js';
import type pg from 'pg';
import type { DomainEvent } from '../core/decider.js';
import { categoryOf } from '../core/eventstore/append-validation.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import type { PortfolioEvent } from '../core/portfolio/events.js';
import { portfolios } from '../core/portfolio/portfolio.js';
import {
  FIGURE_TABLES,
  figuresOnApplied,
  figuresOnValuation,
  figuresSetup,
  refreshFigures,
} from './allocation-figures.js';
import { eventTypes, type PostgresProjection } from './projection.js';
import { portfolioValuedEvent } from '../core/trading/accounting-events.js';

/**
 * Read model of portfolio allocations (docs/portfolio.md): each portfolio's policy and members,
 * every proposal with its trigger, figures and outcome, the allocation in force, and each member
 * strategy's net PnL at the end of every UTC day (from PortfolioValued), from which the
 * rebalancing process manager estimates volatilities and covariances. Queries:
 * projections/allocation-queries.ts.
 */

const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

// eslint-disable-next-line max-lines-per-function -- one switch over the portfolio event types
async function applyPortfolioEvent(
  client: pg.ClientBase,
  schema: string,
  event: RecordedEvent,
): Promise<void> {
  const parsed = portfolios.parseEvent(domainEventOf(event));
  const position = event.position;
  const at = event.recordedAt;
  switch (parsed.type) {
    case 'PortfolioPolicySet': {
      const d = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.portfolio_policies (portfolio_id, policy, version, members, set_by, updated_at, position)
         VALUES ($1, $2, $3, '{}', $4, $5, $6)
         ON CONFLICT (portfolio_id) DO UPDATE SET policy = $2, version = $3, set_by = $4,
           updated_at = $5, position = $6`,
        [d.portfolioId, d.policy, d.version, d.by.id, at, position],
      );
      await refreshFigures(client, schema, d.portfolioId);
      return;
    }
    case 'PortfolioMemberAdded':
    case 'PortfolioMemberRemoved': {
      const d = parsed.data;
      const change =
        parsed.type === 'PortfolioMemberAdded'
          ? 'array_append(array_remove(members, $2), $2)'
          : 'array_remove(members, $2)';
      await client.query(
        `UPDATE ${schema}.portfolio_policies SET members = ${change}, updated_at = $3, position = $4
          WHERE portfolio_id = $1`,
        [d.portfolioId, d.strategyId, at, position],
      );
      await refreshFigures(client, schema, d.portfolioId);
      return;
    }
    case 'AllocationProposed': {
      const d = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.allocation_proposals
           (portfolio_id, proposal_id, status, trigger_type, trigger, method, members, weights,
            previous_weights, max_change, inputs, valuation, request_id, proposed_by, proposed_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT DO NOTHING`,
        [
          d.portfolioId,
          d.proposalId,
          d.requiresApproval ? 'pending_approval' : 'proposed',
          d.trigger.type,
          d.trigger,
          d.method,
          d.members,
          d.weights,
          d.previousWeights,
          d.maxChange,
          d.inputs,
          d.valuation,
          d.requestId,
          d.proposedBy.id,
          at,
          position,
        ],
      );
      return;
    }
    case 'AllocationProposalFailed': {
      const d = parsed.data;
      await client.query(
        `INSERT INTO ${schema}.allocation_proposals
           (portfolio_id, proposal_id, status, trigger_type, trigger, method, members, weights,
            previous_weights, max_change, inputs, valuation, failure_code, failure_reason,
            proposed_by, proposed_at, decided_at, position)
         VALUES ($1, $2, 'failed', $3, $4, $5, '{}', '{}', '{}', 0, '{}', '{}', $6, $7, $8, $9, $9, $10)
         ON CONFLICT DO NOTHING`,
        [
          d.portfolioId,
          d.proposalId,
          d.trigger.type,
          d.trigger,
          d.method,
          d.code,
          d.reason,
          event.metadata.actor,
          at,
          position,
        ],
      );
      return;
    }
    case 'AllocationApproved': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.allocation_proposals SET authority = $3, approvers = $4
          WHERE portfolio_id = $1 AND proposal_id = $2`,
        [d.portfolioId, d.proposalId, d.authority, JSON.stringify(d.approvers)],
      );
      return;
    }
    case 'AllocationApplied': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.allocation_proposals SET status = 'applied', decided_at = $3
          WHERE portfolio_id = $1 AND proposal_id = $2`,
        [d.portfolioId, d.proposalId, at],
      );
      await client.query(
        `INSERT INTO ${schema}.allocation_current (portfolio_id, proposal_id, weights, targets, valuation, applied_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (portfolio_id) DO UPDATE SET proposal_id = $2, weights = $3, targets = $4,
           valuation = $5, applied_at = $6, position = $7`,
        [d.portfolioId, d.proposalId, d.weights, d.targets, d.valuation, at, position],
      );
      await figuresOnApplied(client, schema, d.portfolioId, d.proposalId, at);
      return;
    }
    case 'AllocationRejected': {
      const d = parsed.data;
      await client.query(
        `UPDATE ${schema}.allocation_proposals SET status = $3, failure_reason = $4, decided_at = $5
          WHERE portfolio_id = $1 AND proposal_id = $2`,
        [d.portfolioId, d.proposalId, d.outcome, d.reason, at],
      );
      return;
    }
  }
}

/** Each strategy's net PnL (realized − fees + unrealized) at the portfolio's valuation. */
async function applyValuation(client: pg.ClientBase, schema: string, event: RecordedEvent) {
  const d = portfolioValuedEvent.parse(event);
  const pnl = new Map<string, number>();
  for (const p of d.positions)
    pnl.set(
      p.strategyId,
      (pnl.get(p.strategyId) ?? 0) + p.realizedPnl - p.feesPaid + p.unrealizedPnl,
    );
  for (const [strategyId, net] of pnl)
    await client.query(
      `INSERT INTO ${schema}.allocation_strategy_pnl (portfolio_id, strategy_id, day, net_pnl, equity, valued_at, position)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (portfolio_id, strategy_id, day) DO UPDATE SET net_pnl = $4, equity = $5,
         valued_at = $6, position = $7`,
      [d.portfolioId, strategyId, day(d.time), net, d.equity, new Date(d.time), event.position],
    );
  const at = new Date(d.time).toISOString();
  await figuresOnValuation(client, schema, d.portfolioId, {
    equity: d.equity,
    pnl: Object.fromEntries(pnl),
    at,
  });
}

export const allocationsProjection: PostgresProjection = {
  kind: 'postgres',
  name: 'allocations',
  version: 2,
  // Every event of a portfolio stream (apply parses them all), and the engine's valuations.
  handles: [
    ...eventTypes<PortfolioEvent>()(
      'PortfolioPolicySet',
      'PortfolioMemberAdded',
      'PortfolioMemberRemoved',
      'AllocationProposed',
      'AllocationProposalFailed',
      'AllocationApproved',
      'AllocationApplied',
      'AllocationRejected',
    ),
    'PortfolioValued',
  ],
  tables: [
    'portfolio_policies',
    'allocation_proposals',
    'allocation_current',
    'allocation_strategy_pnl',
    ...FIGURE_TABLES,
  ],

  async setup(client, schema) {
    await client.query(`
      CREATE TABLE ${schema}.portfolio_policies (
        portfolio_id text        PRIMARY KEY,
        policy       jsonb       NOT NULL,
        version      integer     NOT NULL,
        members      text[]      NOT NULL,
        set_by       text        NOT NULL,
        updated_at   timestamptz NOT NULL,
        position     bigint      NOT NULL
      );
      CREATE TABLE ${schema}.allocation_proposals (
        portfolio_id     text             NOT NULL,
        proposal_id      text             NOT NULL,
        status           text             NOT NULL,
        trigger_type     text             NOT NULL,
        trigger          jsonb            NOT NULL,
        method           text             NOT NULL,
        members          text[]           NOT NULL,
        weights          jsonb            NOT NULL,
        previous_weights jsonb            NOT NULL,
        max_change       double precision NOT NULL,
        inputs           jsonb            NOT NULL,
        valuation        jsonb            NOT NULL,
        request_id       text,
        authority        text,
        approvers        jsonb,
        failure_code     text,
        failure_reason   text,
        proposed_by      text             NOT NULL,
        proposed_at      timestamptz      NOT NULL,
        decided_at       timestamptz,
        position         bigint           NOT NULL,
        PRIMARY KEY (portfolio_id, proposal_id)
      );
      CREATE TABLE ${schema}.allocation_current (
        portfolio_id text        PRIMARY KEY,
        proposal_id  text        NOT NULL,
        weights      jsonb       NOT NULL,
        targets      jsonb       NOT NULL,
        valuation    jsonb       NOT NULL,
        applied_at   timestamptz NOT NULL,
        position     bigint      NOT NULL
      );
      CREATE TABLE ${schema}.allocation_strategy_pnl (
        portfolio_id text             NOT NULL,
        strategy_id  text             NOT NULL,
        day          date             NOT NULL,
        net_pnl      double precision NOT NULL,
        equity       double precision NOT NULL,
        valued_at    timestamptz      NOT NULL,
        position     bigint           NOT NULL,
        PRIMARY KEY (portfolio_id, strategy_id, day)
      );
      ${figuresSetup(schema)}`);
  },

  async indexes(client, schema) {
    await client.query(
      `CREATE INDEX ON ${schema}.allocation_proposals (portfolio_id, position DESC)`,
    );
  },

  async apply(client, schema, events) {
    for (const event of events) {
      const category = categoryOf(event.streamId);
      if (category === 'portfolio') await applyPortfolioEvent(client, schema, event);
      else if (event.type === 'PortfolioValued') await applyValuation(client, schema, event);
    }
  },
};

/** The portfolio events this read model folds (for the WebSocket channel and tests). */
export const isAllocationEvent = (event: Pick<DomainEvent, 'type'> & { streamId: string }) =>
  categoryOf(event.streamId) === 'portfolio';
