/** How figures and times read on every page. */

const money = new Intl.NumberFormat('en-US', {
  maximumFractionDigits: 2,
  minimumFractionDigits: 2,
});
const quantity = new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 });
const percent = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 2 });

export const fmtMoney = (value: number | null | undefined): string =>
  value === null || value === undefined ? '—' : money.format(value);
export const fmtQty = (value: number | null | undefined): string =>
  value === null || value === undefined ? '—' : quantity.format(value);
export const fmtPct = (value: number | null | undefined): string =>
  value === null || value === undefined ? '—' : percent.format(value);

/** UTC, to the second: what the log records. */
export const fmtTime = (iso: string | null | undefined): string =>
  iso === null || iso === undefined || iso === ''
    ? '—'
    : `${new Date(iso).toISOString().replace('T', ' ').slice(0, 19)} UTC`;

/** A sign class for gains and losses. */
export const signClass = (value: number | null | undefined): string =>
  value === null || value === undefined || value === 0 ? '' : value > 0 ? 'gain' : 'loss';
