/**
 * ISO calendar dates (YYYY-MM-DD) as used by every series. Dates are compared as strings (ISO order is
 * lexicographic order) and converted to UTC day numbers only for calendar arithmetic.
 */
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since 1970-01-01 (UTC) of a valid ISO date, or null when the string is not one (e.g. 2021-02-30). */
export function dayNumber(date: string): number | null {
  const m = ISO_DATE.exec(date);
  if (!m) return null;
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0..99 as 1900..1999, which made 0099-01-02 "not a date".
  const back = new Date(0);
  back.setUTCFullYear(y, mo - 1, d);
  // Out-of-range parts roll over (2021-02-30 becomes March 2); a round trip catches that.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  return back.getTime() / 86_400_000;
}

export function isIsoDate(date: string): boolean {
  return dayNumber(date) !== null;
}

/** The ISO date of a UTC day number. */
export function dateOfDayNumber(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

/** 0 = Sunday .. 6 = Saturday. */
export function weekdayOfDayNumber(day: number): number {
  // 1970-01-01 was a Thursday (4).
  return (((day + 4) % 7) + 7) % 7;
}
