import { z } from 'zod';
import { ValidationError } from './errors.js';

/**
 * The domain's ranges (ADR 011): every instant QCAT accepts, from the API, the CLI, imports or a
 * process manager, lies in [MIN_INSTANT, MAX_INSTANT]; every number is finite. PostgreSQL's
 * timestamptz refuses year 0 and JavaScript writes years past 9999 as `+010000-…`, which no read
 * model parses back: an instant outside the range would be accepted by the write side and stop a
 * read model, so it is refused where it enters.
 */
export const MIN_INSTANT = '1970-01-01T00:00:00.000Z';
export const MAX_INSTANT = '9999-12-31T23:59:59.999Z';
export const MIN_INSTANT_MS = Date.parse(MIN_INSTANT);
export const MAX_INSTANT_MS = Date.parse(MAX_INSTANT);

/** Amounts (quantities, prices, cash) a person may give: above float dust, below any real book. */
export const MIN_AMOUNT = 1e-12;
export const MAX_AMOUNT = 1e12;

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
/** Strings that look like an instant, whatever their year: checked for the range. */
const INSTANT_LIKE =
  /^[+-]?\d{4,6}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
/** Event fields holding epoch milliseconds: `time`, `since`, `until`, `…At`. */
const INSTANT_KEY = /^(time|since|until|[a-z]\w*At)$/;

export const inInstantRange = (ms: number): boolean =>
  Number.isFinite(ms) && ms >= MIN_INSTANT_MS && ms <= MAX_INSTANT_MS;

export const RANGE_TEXT = `between ${MIN_INSTANT} and ${MAX_INSTANT}`;

/**
 * Why `value` is not an accepted instant (an ISO 8601 date-time with `Z` or an offset, in the
 * domain range), or null when it is one.
 */
export function instantProblem(value: string): string | null {
  const ms = ISO_INSTANT.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms))
    return `'${value}' is not an ISO instant with a time zone, such as 2025-01-01T00:00:00Z`;
  if (!inInstantRange(ms)) return `'${value}' is outside the accepted range: ${RANGE_TEXT}`;
  return null;
}

/** An accepted instant as epoch ms; a ValidationError naming `path` otherwise. */
export function instantMs(path: string, value: string, code = 'INVALID_INSTANT'): number {
  const problem = instantProblem(value);
  if (problem !== null)
    throw new ValidationError(code, `${path}: ${problem}`, {
      errors: [{ path, message: problem }],
    });
  return Date.parse(value);
}

/** The one schema of an instant in requests and commands: ISO 8601 with an offset, in range. */
export const instantSchema = z.iso.datetime({ offset: true }).superRefine((value, context) => {
  // Not ISO at all: zod's own format check has said so already.
  const problem = ISO_INSTANT.test(value) ? instantProblem(value) : null;
  if (problem !== null) context.addIssue({ code: 'custom', message: problem });
});

/** A positive amount in [MIN_AMOUNT, MAX_AMOUNT]. */
export const amountSchema = z.number().min(MIN_AMOUNT).max(MAX_AMOUNT);

/**
 * Where event data leaves the domain: a number that is not finite (JSON would write it as null), an
 * instant-like string outside the range, or epoch milliseconds under an instant's name (`time`,
 * `since`, `until`, `…At`) outside it. A backstop behind the checks at each boundary, run on
 * everything a command decides, so no command path (API, CLI, import, automation) can append what
 * a read model cannot apply. A loop over a stack: deep data must not overflow the call stack.
 */
export function outOfDomain(data: unknown, path = 'data'): string[] {
  const found: string[] = [];
  const pending: [unknown, string, string][] = [[data, path, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [value, at, key] = next;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) found.push(`${at} is not a finite number`);
      else if (INSTANT_KEY.test(key) && !inInstantRange(value))
        found.push(`${at} (epoch ms ${value.toString()}) is outside the range ${RANGE_TEXT}`);
    } else if (typeof value === 'string') {
      if (INSTANT_LIKE.test(value) && !inInstantRange(Date.parse(value)))
        found.push(`${at} '${value.slice(0, 40)}' is outside the range ${RANGE_TEXT}`);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => pending.push([item, `${at}[${index.toString()}]`, key]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [name, item] of Object.entries(value)) pending.push([item, `${at}.${name}`, name]);
    }
  }
  return found;
}

/** Refuses events whose data leaves the domain (see `outOfDomain`). */
export function assertInDomain(events: readonly { type: string; data: unknown }[]): void {
  const found = events.flatMap((event) => outOfDomain(event.data, event.type));
  if (found.length > 0)
    throw new ValidationError(
      'OUT_OF_DOMAIN',
      `the command leaves the domain: ${found.join('; ')}`,
      {
        errors: found.map((message) => ({ path: message.split(' ')[0] ?? '', message })),
      },
    );
}
