import type pg from 'pg';
import type { ApprovalKind, ApprovalState, Subject } from '../core/approvals/approval.js';
import { SqlFilter } from './sql-filter.js';

/** The SQL that reads the approvals read model and the approval flow's outcomes. */

export type OpenApproval = Exclude<ApprovalState, { status: 'none' }>;

export interface ApprovalRow {
  request_id: string;
  state: OpenApproval;
  reason: string;
  decided_by: string | null;
  decision_reason: string | null;
  requested_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  revision: string;
  requested_position: string;
}

/** What the approval flow did after a decision (qcat_process_outcomes). */
export interface FlowEffectRow {
  stream_id: string;
  command: string;
  outcome: 'applied' | 'unchanged' | 'refused';
  detail: string | null;
  result_revision: string | null;
  result_position: string | null;
}

const COLUMNS = `request_id, state, reason, decided_by, decision_reason, requested_at, expires_at,
                 decided_at, revision, requested_position`;

export class ApprovalQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** Requests in request order, filtered; one more than `limit` when there is a next page. */
  async list(q: {
    status?: string | undefined;
    kind?: string | undefined;
    subjectType?: string | undefined;
    subjectId?: string | undefined;
    role?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<ApprovalRow[]> {
    const filter = new SqlFilter();
    if (q.status) filter.add('status = ?', q.status);
    if (q.kind) filter.add('kind = ?', q.kind);
    if (q.subjectType) filter.add('subject_type = ?', q.subjectType);
    if (q.subjectId) filter.add('subject_id = ?', q.subjectId);
    if (q.role) filter.add('? = ANY (eligible_roles)', q.role);
    const page = filter.pageAfter('requested_position', q);
    const { rows } = await this.pool.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM qcat_read.approvals ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  /** Pending, unexpired requests a role may approve and a party did not make. */
  async queue(q: {
    role: string;
    partyId: string;
    after?: string | undefined;
    limit: number;
  }): Promise<ApprovalRow[]> {
    const { rows } = await this.pool.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM qcat_read.approvals
        WHERE status = 'pending' AND $1 = ANY (eligible_roles) AND requester_id <> $2
          AND expires_at > now() AND requested_position > $3
        ORDER BY requested_position LIMIT $4`,
      [q.role, q.partyId, q.after ?? '0', q.limit + 1],
    );
    return rows;
  }

  async get(requestId: string): Promise<ApprovalRow | undefined> {
    const { rows } = await this.pool.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM qcat_read.approvals WHERE request_id = $1`,
      [requestId],
    );
    return rows[0];
  }

  /** The oldest pending request of a kind on a subject, other than `exceptRequestId`. */
  async pendingOn(
    kind: ApprovalKind,
    subject: Subject,
    exceptRequestId: string,
  ): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ request_id: string }>(
      `SELECT request_id FROM qcat_read.approvals
        WHERE status = 'pending' AND kind = $1 AND subject_type = $2 AND subject_id = $3
          AND request_id <> $4
        ORDER BY requested_position LIMIT 1`,
      [kind, subject.type, subject.id, exceptRequestId],
    );
    return rows[0]?.request_id;
  }

  /** Pending requests past their expiry at `now`, soonest first. */
  async due(now: Date, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ request_id: string }>(
      `SELECT request_id FROM qcat_read.approvals WHERE status = 'pending' AND expires_at <= $1
        ORDER BY expires_at LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => row.request_id);
  }

  /**
   * The first step the approval flow (automation/approval-flow, ADR 027) took for the decision at
   * `position`, from the process managers' outcomes: an issued command that wrote events is
   * `applied`, one that wrote none `unchanged`.
   */
  async flowEffect(position: bigint): Promise<FlowEffectRow | undefined> {
    const { rows } = await this.pool.query<FlowEffectRow>(
      `SELECT stream_id, command,
              CASE WHEN result = 'refused' THEN 'refused'
                   WHEN events > 0 THEN 'applied' ELSE 'unchanged' END AS outcome,
              CASE WHEN result = 'refused' THEN detail END AS detail,
              CASE WHEN events > 0 THEN revision::text END AS result_revision,
              CASE WHEN events > 0 THEN position::text END AS result_position
         FROM qcat_process_outcomes
        WHERE manager = 'approval-flow' AND cause_position = $1 AND result IN ('acted', 'refused')
        ORDER BY key COLLATE "C" LIMIT 1`,
      [position],
    );
    return rows[0];
  }
}
