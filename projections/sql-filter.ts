/**
 * WHERE conditions with numbered parameters for list queries: `add('status = ?', value)` for each
 * filter given, then `where` and `values` for the query; `param(value)` numbers one more value
 * (a LIMIT, say) and answers its placeholder.
 */
export class SqlFilter {
  readonly values: unknown[] = [];
  private readonly conditions: string[] = [];

  param(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length.toString()}`;
  }

  add(sql: string, value: unknown): this {
    this.conditions.push(sql.replace('?', this.param(value)));
    return this;
  }

  /**
   * A page in `column` order after the cursor `page.after`, one row more than `page.limit` (so the
   * caller knows whether there is a next page): adds the cursor's condition and answers the
   * `ORDER BY … LIMIT …` clause. Call it after the other conditions, before `where`.
   */
  pageAfter(column: string, page: { after?: string | undefined; limit: number }): string {
    if (page.after) this.add(`${column} > ?`, page.after);
    return `ORDER BY ${column} LIMIT ${this.param(page.limit + 1)}`;
  }

  /** `WHERE a AND b`, or nothing without conditions. */
  get where(): string {
    return this.conditions.length > 0 ? `WHERE ${this.conditions.join(' AND ')}` : '';
  }
}

/** A half-open time range of a list query, already checked (from before to) by its caller. */
export interface TimeRange {
  from?: Date | undefined;
  to?: Date | undefined;
}

/** `column` within `range.from` (inclusive) and `range.to` (exclusive). */
export function addTimeRange(filter: SqlFilter, column: string, range: TimeRange): void {
  if (range.from) filter.add(`${column} >= ?`, range.from);
  if (range.to) filter.add(`${column} < ?`, range.to);
}
