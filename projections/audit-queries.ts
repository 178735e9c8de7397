import type pg from 'pg';
import { SqlFilter } from './sql-filter.js';

/** The SQL that reads the audit trail read model (projections/audit-trail.ts). */

export interface AuditRow {
  position: string;
  recorded_at: Date;
  stream_id: string;
  category: string;
  revision: string;
  type: string;
  event_id: string;
  actor: string;
  correlation_id: string | null;
  causation_id: string | null;
}

/** The trail's filters; `from` inclusive, `to` inclusive (ISO instants). */
export interface TrailFilter {
  actor?: string | undefined;
  streamId?: string | undefined;
  category?: string | undefined;
  type?: string | undefined;
  correlationId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

const COLUMNS =
  'position, recorded_at, stream_id, category, revision, type, event_id, actor, correlation_id, causation_id';

function trailFilter(q: TrailFilter): SqlFilter {
  const filter = new SqlFilter();
  if (q.actor) filter.add('actor = ?', q.actor);
  if (q.streamId) filter.add('stream_id = ?', q.streamId);
  if (q.category) filter.add('category = ?', q.category);
  if (q.type) filter.add('type = ?', q.type);
  if (q.correlationId) filter.add('correlation_id = ?', q.correlationId);
  if (q.from) filter.add('recorded_at >= ?', q.from);
  if (q.to) filter.add('recorded_at <= ?', q.to);
  return filter;
}

export class AuditQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** Events after the `after` position, oldest first; one more than `limit` for a next page. */
  async list(q: TrailFilter & { after?: string | undefined; limit: number }): Promise<AuditRow[]> {
    const filter = trailFilter(q);
    const page = filter.pageAfter('position', q);
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT ${COLUMNS} FROM qcat_read.audit_trail ${filter.where}
        ${page}`,
      filter.values,
    );
    return rows;
  }

  /** The last position in the trail ('0' when empty). */
  async head(): Promise<string> {
    const { rows } = await this.pool.query<{ position: string }>(
      'SELECT coalesce(max(position), 0)::text AS position FROM qcat_read.audit_trail',
    );
    return rows[0]?.position ?? '0';
  }

  /**
   * Keyset batches of the filtered trail up to `upTo`: the answer reads `batchSize` events after
   * a position, as often as the caller asks.
   */
  exportBatches(
    q: TrailFilter,
    upTo: string,
    batchSize: number,
  ): (after: string) => Promise<AuditRow[]> {
    const filter = trailFilter(q).add('position <= ?', upTo).add('position > ?', '0');
    const afterIndex = filter.values.length - 1;
    const sql = `SELECT ${COLUMNS} FROM qcat_read.audit_trail ${filter.where}
                  ORDER BY position LIMIT ${filter.param(batchSize)}`;
    const { values } = filter;
    return async (after) => {
      values[afterIndex] = after;
      return (await this.pool.query<AuditRow>(sql, values)).rows;
    };
  }

  /** The events of one correlation, by position, at most `limit` + 1. */
  async correlation(correlationId: string, limit: number): Promise<AuditRow[]> {
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT ${COLUMNS} FROM qcat_read.audit_trail WHERE correlation_id = $1
        ORDER BY position LIMIT $2`,
      [correlationId, limit + 1],
    );
    return rows;
  }
}
