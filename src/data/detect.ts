/**
 * Which loader reads a file (`format: 'auto'`): a .json name (before any .gz) or content starting with
 * `{` is INVESTOR-BENCH JSON; otherwise the first line is read as a CSV header: a `ticker` column means
 * the long format, a `Date` column with `Adj Close` or `Close` means Yahoo. Anything else is an error
 * that asks for an explicit format.
 */
import { parse as parseCsvSync } from 'csv-parse/sync';
import { DataError, quote } from './errors.js';
import { readHeadText } from './file-source.js';
import { normalizeColumnName } from './columns.js';

export type DataFormat = 'yahoo' | 'long' | 'investorbench';

export async function detectFormat(path: string): Promise<DataFormat> {
  const name = path.replace(/\.gz$/i, '');
  if (/\.json$/i.test(name)) return 'investorbench';
  const head = await readHeadText(path);
  const body = head.trimStart();
  if (body === '') throw new DataError({ file: path }, 'the file is empty; cannot tell its format');
  if (body.startsWith('{')) return 'investorbench';
  const firstLine = body.split(/\r\n|\r|\n/, 1)[0]!; // LF, CRLF or CR-only (classic Mac OS) line breaks
  let names: string[];
  try {
    names = firstLine.includes('"') ? (parseCsvSync(firstLine) as string[][])[0] ?? [] : firstLine.split(',');
  } catch {
    names = firstLine.split(',');
  }
  const cols = new Set(names.map(normalizeColumnName));
  if (cols.has('ticker')) return 'long';
  if (cols.has('date') && (cols.has('adj_close') || cols.has('close'))) return 'yahoo';
  throw new DataError(
    { file: path },
    `cannot tell the format from the first line ${quote(firstLine)}: expected a CSV header with a ticker column (long format), ` +
      "or Date and Adj Close columns (Yahoo format), or a .json file (INVESTOR-BENCH); pass format explicitly",
  );
}
