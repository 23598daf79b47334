/**
 * One error type for everything wrong with market data or load options, so callers (CLI, server) can
 * tell a user's data problem from a bug. The message always says where (file, then line or date) and
 * what was expected; the structured fields repeat that for programs.
 */
export interface DataErrorWhere {
  /** The file (as the caller named it), or a label such as "window" for option errors. */
  file?: string;
  /** 1-based line number in a CSV file, counting the header as line 1. */
  line?: number;
  /** The date key (JSON) or the row's date, when known. */
  date?: string;
}

export class DataError extends Error {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly date: string | undefined;

  constructor(where: DataErrorWhere, problem: string) {
    super(`${describeWhere(where)}${problem}`);
    this.name = 'DataError';
    this.file = where.file;
    this.line = where.line;
    this.date = where.date;
  }
}

/** "file.csv, line 12 (2020-01-03): " / "file.json, date 2020-01-03: " / "file.csv: " / "". */
export function describeWhere(where: DataErrorWhere): string {
  const parts: string[] = [];
  if (where.file !== undefined) parts.push(where.file);
  if (where.line !== undefined) parts.push(`line ${where.line}${where.date !== undefined ? ` (${where.date})` : ''}`);
  else if (where.date !== undefined) parts.push(`date ${where.date}`);
  return parts.length > 0 ? `${parts.join(', ')}: ` : '';
}

/** Quote a value for an error message, cut to a readable length. */
export function quote(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return `'${s.length > 40 ? `${s.slice(0, 37)}...` : s}'`;
}
