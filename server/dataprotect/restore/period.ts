// The bounds of a period (undelete.mail), as the API and the command line take them.

import { InvalidInputError } from '../errors.js';

/** `2026-01-31` is that day's first instant for `from` and its last for `to` (UTC); a date-time is taken as is. */
export function periodBound(value: string | undefined, side: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const d = new Date(day ? `${value}T${side === 'from' ? '00:00:00.000' : '23:59:59.999'}Z` : value);
  if (Number.isNaN(d.getTime()) || (day && d.toISOString().slice(0, 10) !== value)) {
    throw new InvalidInputError(side, `${JSON.stringify(value)} is not a date: write YYYY-MM-DD or an ISO date-time with its offset`);
  }
  return d;
}
