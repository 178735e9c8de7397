import type pg from 'pg';
import { approvalStream, approvals } from '../../core/approvals/approval.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { ApprovalQueries } from '../../projections/approval-queries.js';
import { APPROVAL_FLOW_ACTOR } from './decision.js';

/** Due approval requests, expired; safe to run in every process (expiring twice writes once). */
export async function expireDueApprovals(
  pool: pg.Pool,
  commands: CommandHandler,
  now: Date,
): Promise<number> {
  let expired = 0;
  for (const requestId of await new ApprovalQueries(pool).due(now, 500)) {
    const result = await commands.handle(
      approvals,
      approvalStream(requestId),
      { type: 'ExpireApproval', requestId, now: now.toISOString() },
      { actor: APPROVAL_FLOW_ACTOR },
    );
    expired += result.eventCount > 0 ? 1 : 0;
  }
  return expired;
}
